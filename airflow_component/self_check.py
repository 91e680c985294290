"""The self-check Job: what only the user's cluster can show, checked there after every update.

It runs `programs/self_check.py` (shipped in a ConfigMap) with the Needs of `SELF_CHECK`: a task
runner's ServiceAccount and the flows a task depends on, so the NetworkPolicies, DNS, the cloud
identity and the credentials it exercises are the ones tasks use. Its input is JSON data (written
by `json.dumps`, never pasted into code). The Job is named by a checksum of that input and of the
whole resolved config, so Pulumi replaces it, and so re-runs it, whenever the deployment changes;
Pulumi awaits it like the migration Job, and a failure fails `pulumi up`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from pulumi_kubernetes.batch.v1 import JobSpecArgsDict

from .airflow_env import AirflowRuntime
from .config.dags import ObjectStoreBundleConfig
from .jobs import airflow_job_spec
from .kube import checksum, plain_env, secret_env
from .naming import Naming
from .needs import (
    API_SERVER_PORT,
    HTTPS_PORT,
    REDIS_PORT,
    SELF_CHECK,
    git_endpoint,
    git_host,
    git_port,
)
from .programs.self_check import CONFIG_ENV, PASSWORD_ENV
from .resolve import ResolvedConfig
from .secrets import metadata_endpoint

# The endpoints an object-store bundle's SDK connects to (the global ones; regional endpoints
# share their address ranges and port).
OBJECT_STORE_HOSTS = {"s3": "s3.amazonaws.com", "gs": "storage.googleapis.com"}


def object_store_host(store: ObjectStoreBundleConfig) -> str:
    return OBJECT_STORE_HOSTS[store.scheme]


PROGRAM_FILE = "self_check.py"
MOUNT = "/opt/airflow/self-check"
VOLUME = "self-check"


def program_source() -> str:
    return resources.files("airflow_component.programs").joinpath(PROGRAM_FILE).read_text()


def _database_fix(config: ResolvedConfig) -> str:
    if config.database.mode == "external":
        return "database.external (host, port, user, sslmode, password) / networkPolicies"
    if config.pgbouncer.enabled:
        return "pgbouncer / database.inCluster / networkPolicies"
    return "database.inCluster / networkPolicies"


def self_check_input(
    config: ResolvedConfig, naming: Naming, execution_api_url: str
) -> dict[str, Any]:
    """What the program checks, as data."""
    database = metadata_endpoint(config, naming)
    endpoints: list[dict[str, str]] = [
        {
            "address": f"{database.host}:{database.port}",
            "flow": "metadata DB",
            "fix": _database_fix(config),
        },
        {
            "address": f"{naming.service_host('api-server')}:{API_SERVER_PORT}",
            "flow": "api-server",
            "fix": "apiServer / networkPolicies",
        },
    ]
    if config.celery is not None:
        endpoints.append(
            {
                "address": f"{naming.service_host('redis')}:{REDIS_PORT}",
                "flow": "Celery broker",
                "fix": "celery / networkPolicies",
            }
        )
    git = config.dags.git_sync if config.dags.delivery == "git-sync" else None
    if git is not None and (host := git_host(git.repo)) and (port := git_port(git.repo)):
        endpoints.append(
            {
                "address": f"{host}:{port}",
                "flow": "DAG source (git)",
                "fix": "dags.gitSync.repo / networkPolicies.dagSourceCidrs",
            }
        )
    for bundle in config.dags.fetched_bundles:
        if bundle.git is not None and (endpoint := git_endpoint(bundle.git.repo)) is not None:
            endpoints.append(
                {
                    "address": f"{endpoint[0]}:{endpoint[1]}",
                    "flow": f"DAG bundle {bundle.name} (git)",
                    "fix": f"{bundle.key}.git.repo / networkPolicies.dagSourceCidrs",
                }
            )
        if bundle.object_store is not None:
            endpoints.append(
                {
                    "address": f"{object_store_host(bundle.object_store)}:{HTTPS_PORT}",
                    "flow": f"DAG bundle {bundle.name} (object store)",
                    "fix": f"{bundle.key}.objectStore / networkPolicies.dagSourceCidrs",
                }
            )
    remote = config.logging.remote
    return {
        "endpoints": endpoints,
        "databaseFix": _database_fix(config),
        "brokerFix": "celery / networkPolicies" if config.celery is not None else None,
        "executionApiUrl": execution_api_url,
        "apiRoot": naming.api_server_url,
        # Without an admin user (SSO), there is no login to check.
        "adminUsername": config.auth.admin_username if config.auth.create_admin else None,
        "remoteLogs": (
            {"baseFolder": remote.base_folder, "connectionId": remote.connection_id}
            if remote is not None
            else None
        ),
    }


def self_check_job_name(runtime: AirflowRuntime) -> str:
    """Changes with anything in the deployment, so each changed `pulumi up` checks again."""
    document = json.dumps(
        {
            "input": self_check_input(runtime.config, runtime.naming, runtime.execution_api_url),
            "config": repr(runtime.config),
            "program": program_source(),
        },
        sort_keys=True,
    )
    return runtime.naming.object(f"{SELF_CHECK}-{checksum(document)[:8]}")


def self_check_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    document = json.dumps(
        self_check_input(runtime.config, runtime.naming, runtime.execution_api_url),
        sort_keys=True,
    )
    spec = airflow_job_spec(
        runtime,
        SELF_CHECK,
        ["python", f"{MOUNT}/{PROGRAM_FILE}"],
        extra_env=[
            # The image's entrypoint would wait for the DB and fail without naming the flow;
            # the program checks the DB path itself.
            plain_env("CONNECTION_CHECK_MAX_COUNT", "0"),
            plain_env(CONFIG_ENV, document),
            *(
                [secret_env(PASSWORD_ENV, runtime.secrets.admin_password)]
                if runtime.config.auth.create_admin
                else []
            ),
        ],
        extra_mounts=[{"name": VOLUME, "mount_path": MOUNT, "read_only": True}],
        extra_volumes=[{"name": VOLUME, "config_map": {"name": runtime.naming.object(SELF_CHECK)}}],
    )
    # One retry (a pod that lost a race with a rollout), then the update fails; never hangs.
    spec["backoff_limit"] = 1
    spec["active_deadline_seconds"] = 900
    container = spec["template"]["spec"]["containers"][0]
    # The failing line becomes the pod's termination message (kubectl describe, events).
    container["termination_message_policy"] = "FallbackToLogsOnError"
    return spec

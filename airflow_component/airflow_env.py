"""The one place that builds what Airflow containers share: env, mounts, security, pod spec.

Every Airflow container (Jobs, processes, CronJobs, the KubernetesExecutor task pod) is built
from `airflow_container` and `airflow_pod_spec`, so the settings that must agree across
processes (executor, Execution API URL, DB URL form, key names) cannot drift. Secrets are the
exception on purpose: a container gets exactly the secrets its `Needs` declare.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PodSpecArgsDict,
    ProbeArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from .config import RemoteLoggingConfig, Resources
from .config.airflow_options import env_name
from .config.security import WebserverConfigSource
from .dags import dag_mounts, dag_volumes, dags_folder, git_sync_init_containers, git_sync_sidecars
from .declarative import declared_env
from .fernet import fernet_env
from .kube import (
    container_security_context,
    literal,
    plain_env,
    pod_security_context,
    resource_requirements,
    secret_env,
)
from .metrics import metrics_env
from .naming import AIRFLOW_GID, AIRFLOW_HOME, AIRFLOW_UID, LOGS_FOLDER, Naming
from .needs import Needs, Secret
from .placement import team_containers, team_env, team_env_from, team_mounts, team_volumes
from .resolve import Bundle, ResolvedConfig
from .secrets import (
    URL_HEAD_ENV,
    URL_TAIL_ENV,
    SecretRefs,
    postgres_url_command,
    postgres_url_parts,
)

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SECRETS_MOUNT = f"{AIRFLOW_HOME}/secrets"
POD_TEMPLATE_PATH = f"{AIRFLOW_HOME}/pod_templates/pod_template_file.yaml"
# SimpleAuthManager opens its passwords file read-write ("a+"), so it gets a writable copy of
# the Secret, made by an init container; Secret volumes are always read-only.
SIMPLE_AUTH_SECRET_DIR = f"{SECRETS_MOUNT}/simple-auth"
SIMPLE_AUTH_DIR = f"{AIRFLOW_HOME}/simple-auth"
# FAB's webserver_config.py (auth.webserverConfig), where `[fab] config_file` points.
AUTH_CONFIG_DIR = f"{AIRFLOW_HOME}/auth-config"
WEBSERVER_CONFIG = "webserver_config.py"
SIMPLE_AUTH_PASSWORDS_PATH = f"{SIMPLE_AUTH_DIR}/passwords.json"
# Airflow writes a default airflow.cfg into AIRFLOW_HOME at start when there is none; with a
# read-only root filesystem that crashes every command. All settings come from env: the mounted
# file only has to exist.
AIRFLOW_CFG_PATH = f"{AIRFLOW_HOME}/airflow.cfg"
AIRFLOW_CFG = "# Settings come from AIRFLOW__* environment variables (airflow-k8s).\n"
AIRFLOW_CFG_COMPONENT = "airflow-cfg"
# Kubernetes expands $(VAR) in args from the container's env, so the password never lands
# in the manifest; only the reference does.
METADATA_PASSWORD_ENV = "AIRFLOW_METADATA_DB_PASSWORD"
LOCAL_DAG_REFRESH_SECONDS = 5


@dataclass(frozen=True)
class AirflowRuntime:
    """Everything the shared container builders need: resolved config, names, secret refs."""

    config: ResolvedConfig
    naming: Naming
    secrets: SecretRefs
    # Annotations on long-running Airflow pods: checksums of what they read once at start.
    pod_annotations: tuple[tuple[str, pulumi.Input[str]], ...] = field(default=())

    @property
    def base_url(self) -> str:
        config = self.config
        if config.base_url:
            return config.base_url.rstrip("/")
        if config.ingress.enabled and config.ingress.host:
            scheme = "https" if config.ingress.tls_secret_name else "http"
            return f"{scheme}://{config.ingress.host}{config.ingress.path.rstrip('/')}"
        service = config.api_server.service
        if service.type == "NodePort" and service.node_port:
            return f"http://localhost:{service.node_port}"
        return self.naming.api_server_url

    @property
    def execution_api_url(self) -> str:
        # In-cluster Service DNS, never the public URL: workers must not depend on the ingress.
        return f"{self.naming.api_server_url}/execution/"

    @property
    def auth_manager(self) -> str:
        return FAB_AUTH_MANAGER if self.config.auth.manager == "fab" else SIMPLE_AUTH_MANAGER


def simple_auth(runtime: AirflowRuntime, needs: Needs) -> bool:
    """SimpleAuthManager's passwords file: only where the admin password is needed."""
    return (
        runtime.config.auth.manager == "simple"
        and needs.authenticates_users
        and needs.needs(Secret.ADMIN_PASSWORD)
    )


def _metadata_password_env(secrets: SecretRefs) -> EnvVarArgsDict:
    assert secrets.metadata_password is not None
    return secret_env(METADATA_PASSWORD_ENV, secrets.metadata_password)


def metadata_connection_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    """The metadata DB connection: a URL from a Secret, or a command composing it at runtime."""
    secrets = runtime.secrets
    if secrets.metadata_connection is not None:
        return [secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", secrets.metadata_connection)]
    # The password lives in a Secret we do not own: Airflow's `_CMD` form of this sensitive
    # option builds the URL in the container, URL-encoding the password there.
    return [
        _metadata_password_env(secrets),
        *url_parts_env(runtime),
        plain_env(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD", postgres_url_command(METADATA_PASSWORD_ENV)
        ),
    ]


def url_parts_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    head, tail = postgres_url_parts(runtime.config, runtime.naming)
    return [plain_env(URL_HEAD_ENV, head), plain_env(URL_TAIL_ENV, tail)]


def result_backend_env(runtime: AirflowRuntime, needs: Needs) -> list[EnvVarArgsDict]:
    secrets = runtime.secrets
    if secrets.celery_result_backend is not None:
        return [secret_env("AIRFLOW__CELERY__RESULT_BACKEND", secrets.celery_result_backend)]
    env = (
        []
        if needs.needs(Secret.METADATA_DB)
        else [_metadata_password_env(secrets), *url_parts_env(runtime)]
    )
    command = postgres_url_command(METADATA_PASSWORD_ENV, scheme_prefix="db+")
    return [*env, plain_env("AIRFLOW__CELERY__RESULT_BACKEND_CMD", command)]


def secret_scoped_env(runtime: AirflowRuntime, needs: Needs) -> list[EnvVarArgsDict]:
    """The secrets this container needs, each as a secretKeyRef, and nothing else."""
    config, secrets = runtime.config, runtime.secrets
    env: list[EnvVarArgsDict] = []
    if needs.needs(Secret.METADATA_DB):
        env += metadata_connection_env(runtime)
    if needs.needs(Secret.FERNET_KEY):
        env += fernet_env(config.fernet.previous_keys, secrets.fernet_key)
    if needs.needs(Secret.JWT_SECRET):
        env.append(secret_env("AIRFLOW__API_AUTH__JWT_SECRET", secrets.jwt_secret))
    if needs.needs(Secret.API_SECRET_KEY):
        env.append(secret_env("AIRFLOW__API__SECRET_KEY", secrets.api_secret_key))
    if needs.needs(Secret.BROKER_URL) and secrets.celery_broker_url is not None:
        env.append(secret_env("AIRFLOW__CELERY__BROKER_URL", secrets.celery_broker_url))
    if needs.needs(Secret.RESULT_BACKEND) and config.celery is not None:
        env += result_backend_env(runtime, needs)
    if needs.needs(Secret.FLOWER_AUTH) and secrets.flower_basic_auth is not None:
        env.append(secret_env("AIRFLOW__CELERY__FLOWER_BASIC_AUTH", secrets.flower_basic_auth))
    if simple_auth(runtime, needs):
        env.append(
            plain_env(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", SIMPLE_AUTH_PASSWORDS_PATH
            )
        )
    if needs.needs(Secret.DECLARED):
        env += declared_env(config.connections, config.variables, runtime.naming)
    if needs.needs(Secret.BUNDLE_CONNECTIONS):
        env += [
            secret_env(connection_env_name(bundle), bundle.connection_secret)
            for bundle in config.dags.fetched_bundles
            if bundle.name in needs.fetches_bundles and bundle.connection_secret is not None
        ]
    remote = config.logging.remote
    if needs.needs(Secret.REMOTE_LOGS) and remote and remote.connection_secret:
        env.append(
            secret_env(f"AIRFLOW_CONN_{remote.connection_id.upper()}", remote.connection_secret)
        )
    elif needs.task_logs and remote:
        # No secret: the pod's cloud identity (IRSA, Workload Identity). The handler still
        # looks the connection up by id; one without credentials makes the SDK use its
        # default credential chain.
        env.append(
            plain_env(f"AIRFLOW_CONN_{remote.connection_id.upper()}", identity_connection(remote))
        )
    return env


def identity_connection(remote: RemoteLoggingConfig) -> str:
    """A connection URI with no credentials, for the store the base folder names."""
    return "aws://" if remote.base_folder.startswith("s3://") else "google-cloud-platform://"


def shared_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    """Settings that are the same in every Airflow container and hold no secret."""
    config = runtime.config
    env: list[EnvVarArgsDict] = [
        plain_env("AIRFLOW__CORE__EXECUTOR", config.executor_setting),
        plain_env("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", runtime.execution_api_url),
        plain_env("AIRFLOW__API__BASE_URL", runtime.base_url),
        plain_env("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
        plain_env("AIRFLOW__CORE__DAGS_FOLDER", dags_folder(config.dags)),
        plain_env("AIRFLOW__LOGGING__BASE_LOG_FOLDER", LOGS_FOLDER),
        plain_env("AIRFLOW__CORE__AUTH_MANAGER", runtime.auth_manager),
        plain_env("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "True"),
        # Task logs are served by the pod that ran the task; its IP is reachable in-cluster,
        # a Deployment pod's hostname is not.
        plain_env("AIRFLOW__CORE__HOSTNAME_CALLABLE", "airflow.utils.net.get_host_ip_address"),
    ]
    if config.auth.manager == "simple":
        env.append(
            plain_env(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{config.auth.admin_username}:admin"
            )
        )
    env.append(plain_env("AIRFLOW__CORE__PARALLELISM", str(config.parallelism)))
    if config.environment == "local":
        # The local loop: a saved DAG file shows up within seconds, not Airflow's 5 minutes
        # (new files) and 30 seconds (changed files).
        env += [
            plain_env("AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL", str(LOCAL_DAG_REFRESH_SECONDS)),
            plain_env(
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL", str(LOCAL_DAG_REFRESH_SECONDS)
            ),
        ]
    env += kubernetes_executor_env(runtime)
    env += metrics_env(config.metrics.enabled, runtime.naming)
    remote = config.logging.remote
    if remote is not None:
        env += [
            plain_env("AIRFLOW__LOGGING__REMOTE_LOGGING", "True"),
            plain_env("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", remote.base_folder),
            plain_env("AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", remote.connection_id),
            # Uploaded logs are read from the bucket: local copies would only fill the volume
            # (the default keeps them).
            plain_env("AIRFLOW__LOGGING__DELETE_LOCAL_LOGS", "True"),
        ]
    return env


# Options where this component's default differs from Airflow's; `airflowConfig` overrides each.
#
# The Task SDK retries an Execution API call `execution_api_retries` times in all, waiting a
# random time between `execution_api_retry_wait_min` and 1, 2, 4, 8... seconds (capped at
# `execution_api_retry_wait_max`) between attempts (tenacity's wait_random_exponential). With
# Airflow's 5 and 1 s a call gives up after 4 to 15 s, and the supervisor kills a task after
# three failed heartbeats: an api-server restart (a crash, an OOM kill, a drained node with one
# replica; 13-15 s to answer again in the suite, longer on a busy node) fails tasks that never
# noticed anything else. With 10 and 5 s every call keeps trying for at least 45 s (about three
# minutes on average), and a task survives an outage of more than two minutes.
DEFAULT_OPTIONS: dict[tuple[str, str], str] = {
    ("workers", "execution_api_retries"): "10",
    ("workers", "execution_api_retry_wait_min"): "5",
}


def default_option_env(set_by_team: set[str]) -> list[EnvVarArgsDict]:
    """DEFAULT_OPTIONS as env, leaving out the ones the team's `airflowConfig` sets."""
    env = []
    for (section, option), value in DEFAULT_OPTIONS.items():
        name = env_name(section, option)
        if name not in set_by_team:
            env.append(plain_env(name, value))
    return env


def airflow_env(runtime: AirflowRuntime, needs: Needs) -> list[EnvVarArgsDict]:
    """The environment of one Airflow container: shared settings, then its own secrets."""
    team = team_env(runtime.config, needs.component)
    env = [
        *shared_env(runtime),
        *default_option_env({item["name"] for item in team}),
        *bundle_env(runtime, needs),
        *secret_scoped_env(runtime, needs),
        *team,
    ]
    if runtime.config.auth.webserver_config is not None and needs.reads_auth_config:
        path = f"{AUTH_CONFIG_DIR}/{WEBSERVER_CONFIG}"
        env.append(plain_env("AIRFLOW__FAB__CONFIG_FILE", path))
    if not needs.needs(Secret.METADATA_DB):
        # The image's entrypoint runs `airflow db check` before any command unless this is 0;
        # without DB credentials that check hits a default SQLite file and the container exits.
        # (Pods that use the DB check it in their wait-for-migrations init container.)
        env.append(plain_env("CONNECTION_CHECK_MAX_COUNT", "0"))
    return env


GIT_BUNDLE_CLASS = "airflow.providers.git.bundles.git.GitDagBundle"
LOCAL_BUNDLE_CLASS = "airflow.dag_processing.bundles.local.LocalDagBundle"
# Object-store bundles: the Amazon and Google providers' classes and connection kwargs.
OBJECT_STORE_BUNDLES = {
    "s3": ("airflow.providers.amazon.aws.bundles.s3.S3DagBundle", "aws_conn_id", "aws://"),
    "gs": (
        "airflow.providers.google.cloud.bundles.gcs.GCSDagBundle",
        "gcp_conn_id",
        "google-cloud-platform://",
    ),
}
# Clones, downloads and per-version checkouts (an emptyDir of its own: not /tmp's).
BUNDLE_STORAGE_PATH = f"{AIRFLOW_HOME}/dag-bundles"
BUNDLE_STORAGE_SIZE = "4Gi"


def connection_env_name(bundle: Bundle) -> str:
    assert bundle.connection_id is not None
    return f"AIRFLOW_CONN_{bundle.connection_id.upper()}"


def bundle_entry(bundle: Bundle) -> dict[str, Any]:
    """One entry of `dag_bundle_config_list`, as the bundle's class takes its kwargs."""
    kwargs: dict[str, Any] = {}
    if bundle.git is not None:
        git = bundle.git
        classpath = GIT_BUNDLE_CLASS
        kwargs.update(repo_url=git.repo, tracking_ref=git.tracking_ref)
        if git.subdir:
            kwargs["subdir"] = git.subdir
        if bundle.connection_id:
            kwargs["git_conn_id"] = bundle.connection_id
        refresh = git.refresh_interval
    elif bundle.object_store is not None:
        store = bundle.object_store
        classpath, connection_kwarg, _ = OBJECT_STORE_BUNDLES[store.scheme]
        kwargs.update(bucket_name=store.bucket, prefix=store.prefix)
        kwargs[connection_kwarg] = bundle.connection_id
        refresh = store.refresh_interval
    else:
        # The DAG folder (AIRFLOW__CORE__DAGS_FOLDER), as Airflow's default list has it.
        return {"name": bundle.name, "classpath": LOCAL_BUNDLE_CLASS, "kwargs": {}}
    if refresh is not None:
        kwargs["refresh_interval"] = refresh
    return {"name": bundle.name, "classpath": classpath, "kwargs": kwargs}


def bundle_config_list(config: ResolvedConfig, names: Sequence[str]) -> str:
    """`[dag_processor] dag_bundle_config_list` for these bundles, written by the JSON
    serializer (user text never shapes it)."""
    entries = [bundle_entry(bundle) for bundle in config.dags.bundles if bundle.name in names]
    return json.dumps(entries, sort_keys=True)


def bundle_env(runtime: AirflowRuntime, needs: Needs) -> list[EnvVarArgsDict]:
    """The bundles this container initializes (only with `dags.bundles`; without it Airflow's
    default list, the DAG folder alone, applies everywhere), their storage, and the identity
    connection of object-store bundles without credentials (no secret in it)."""
    if not needs.fetches_bundles:
        return []
    env = [
        plain_env(
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
            bundle_config_list(runtime.config, needs.fetches_bundles),
        )
    ]
    if fetches_remote(runtime.config, needs):
        env.append(
            plain_env("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", BUNDLE_STORAGE_PATH)
        )
    for bundle in runtime.config.dags.fetched_bundles:
        store = bundle.object_store
        if bundle.name in needs.fetches_bundles and store and bundle.connection_secret is None:
            identity = OBJECT_STORE_BUNDLES[store.scheme][2]
            env.append(plain_env(connection_env_name(bundle), identity))
    return env


def fetches_remote(config: ResolvedConfig, needs: Needs) -> bool:
    """It fetches a Git or object-store bundle into local storage."""
    return any(bundle.name in needs.fetches_bundles for bundle in config.dags.fetched_bundles)


def kubernetes_executor_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    settings = runtime.config.kubernetes_executor
    if settings is None:
        return []
    return [
        plain_env("AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE", POD_TEMPLATE_PATH),
        plain_env("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", runtime.naming.namespace),
        plain_env(
            "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS", str(settings.delete_worker_pods)
        ),
        plain_env(
            "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE",
            str(settings.delete_worker_pods_on_failure),
        ),
    ]


def _writable_dir(name: str, size: str = "1Gi") -> VolumeArgsDict:
    return {"name": name, "empty_dir": {"size_limit": size}}


def logs_claim_name(naming: Naming) -> str:
    return naming.object("logs")


def airflow_cfg_config_map(naming: Naming) -> str:
    return naming.object(AIRFLOW_CFG_COMPONENT)


def airflow_volumes(runtime: AirflowRuntime, needs: Needs) -> list[VolumeArgsDict]:
    logs: VolumeArgsDict = (
        {
            "name": "logs",
            "persistent_volume_claim": {"claim_name": logs_claim_name(runtime.naming)},
        }
        if runtime.config.logging.volume is not None
        else _writable_dir("logs", runtime.config.logging.local_size_limit)
    )
    volumes: list[VolumeArgsDict] = [
        logs,
        _writable_dir("tmp"),
        {"name": "airflow-cfg", "config_map": {"name": airflow_cfg_config_map(runtime.naming)}},
    ]
    if fetches_remote(runtime.config, needs):
        volumes.append(_writable_dir("dag-bundles", BUNDLE_STORAGE_SIZE))
    source = runtime.config.auth.webserver_config
    if source is not None and needs.reads_auth_config:
        volumes.append(webserver_config_volume(source))
    if simple_auth(runtime, needs):
        ref = runtime.secrets.simple_auth_passwords
        volumes += [
            {
                "name": "simple-auth-secret",
                "secret": {
                    "secret_name": ref.name,
                    "items": [{"key": ref.key, "path": "passwords.json"}],
                    "default_mode": 0o440,
                },
            },
            {"name": "simple-auth", "empty_dir": {"size_limit": "1Mi"}},
        ]
    return volumes


def webserver_config_volume(source: WebserverConfigSource) -> VolumeArgsDict:
    """FAB's webserver_config.py, as the user keeps it (a Secret when it holds OAuth secrets)."""
    if source.secret is not None:
        return {
            "name": "webserver-config",
            "secret": {
                "secret_name": source.secret.name,
                "items": [{"key": source.secret.key, "path": WEBSERVER_CONFIG}],
                "default_mode": 0o440,
            },
        }
    assert source.config_map is not None
    return {
        "name": "webserver-config",
        "config_map": {
            "name": source.config_map.name,
            "items": [{"key": source.config_map.key, "path": WEBSERVER_CONFIG}],
        },
    }


def simple_auth_init_container(runtime: AirflowRuntime) -> ContainerArgsDict:
    """Copies the passwords file from its Secret into the writable emptyDir Airflow uses."""
    source = f"{SIMPLE_AUTH_SECRET_DIR}/passwords.json"
    return {
        "name": "simple-auth-passwords",
        "image": runtime.config.image.reference,
        "image_pull_policy": runtime.config.image.pull_policy,
        # `install` sets the mode; `cp` would keep the Secret's read-only 0440.
        "command": ["install", "-m", "0660", source, SIMPLE_AUTH_PASSWORDS_PATH],
        "volume_mounts": [
            {"name": "simple-auth-secret", "mount_path": SIMPLE_AUTH_SECRET_DIR, "read_only": True},
            {"name": "simple-auth", "mount_path": SIMPLE_AUTH_DIR},
        ],
        "resources": resource_requirements(runtime.config.job_resources),
        "security_context": container_security_context(),
    }


def airflow_volume_mounts(runtime: AirflowRuntime, needs: Needs) -> list[VolumeMountArgsDict]:
    mounts: list[VolumeMountArgsDict] = [
        {"name": "logs", "mount_path": LOGS_FOLDER},
        {"name": "tmp", "mount_path": "/tmp"},
        {
            "name": "airflow-cfg",
            "mount_path": AIRFLOW_CFG_PATH,
            "sub_path": "airflow.cfg",
            "read_only": True,
        },
    ]
    if fetches_remote(runtime.config, needs):
        mounts.append({"name": "dag-bundles", "mount_path": BUNDLE_STORAGE_PATH})
    if simple_auth(runtime, needs):
        mounts.append({"name": "simple-auth", "mount_path": SIMPLE_AUTH_DIR})
    if runtime.config.auth.webserver_config is not None and needs.reads_auth_config:
        mounts.append(
            {"name": "webserver-config", "mount_path": AUTH_CONFIG_DIR, "read_only": True}
        )
    return mounts


def airflow_container(
    runtime: AirflowRuntime,
    needs: Needs,
    name: str,
    args: Sequence[str],
    resources: Resources,
    *,
    extra: ContainerArgsDict | None = None,
    extra_env: Sequence[EnvVarArgsDict] = (),
    extra_mounts: Sequence[VolumeMountArgsDict] = (),
) -> ContainerArgsDict:
    """An Airflow container: the image entrypoint runs `airflow <args>`."""
    mounts = [
        *airflow_volume_mounts(runtime, needs),
        *team_mounts(runtime.config, needs.component),
    ]
    if needs.reads_dags:
        mounts += dag_mounts(runtime.config.dags)
    container: ContainerArgsDict = {
        "name": name,
        "image": runtime.config.image.reference,
        "image_pull_policy": runtime.config.image.pull_policy,
        "args": list(args),
        "env": [*airflow_env(runtime, needs), *extra_env],
        **(
            {"env_from": env_from}
            if (env_from := team_env_from(runtime.config, needs.component))
            else {}
        ),
        "volume_mounts": [*mounts, *extra_mounts],
        "resources": resource_requirements(resources),
        "security_context": container_security_context(),
    }
    if extra:
        container.update(extra)
    return container


# What the init container that waits for the schema needs: the database, nothing else.
_MIGRATION_WAIT = Needs("wait-for-migrations", secrets=frozenset({Secret.METADATA_DB}))


def wait_for_migrations_container(runtime: AirflowRuntime) -> ContainerArgsDict:
    """Init container: block until the schema matches this image, so no pod runs on an old one."""
    timeout = runtime.config.migrations.wait_timeout_seconds
    return airflow_container(
        runtime,
        _MIGRATION_WAIT,
        "wait-for-migrations",
        ["db", "check-migrations", f"--migration-wait-timeout={timeout}"],
        runtime.config.job_resources,
    )


LOG_GROOMER_INTERVAL_SECONDS = 900


def log_groomer_script(retention_days: int) -> str:
    """Deletes log files older than the retention, then empty folders, every 15 minutes.
    It is the container's first process: it must end on SIGTERM itself."""
    return "\n".join(
        [
            "set -u",
            "trap 'exit 0' TERM INT",
            "while true; do",
            f"  find \"$LOG_FOLDER\" -type f -name '*.log' -mmin +{retention_days * 24 * 60} "
            "-delete || true",
            '  find "$LOG_FOLDER" -mindepth 1 -type d -empty -delete || true',
            f"  sleep {LOG_GROOMER_INTERVAL_SECONDS} & wait $!",
            "done",
        ]
    )


def log_groomer_container(runtime: AirflowRuntime) -> ContainerArgsDict:
    """Local logs would otherwise grow until the kubelet evicts the pod (emptyDir sizeLimit)
    or the shared claim fills; Airflow itself never deletes them."""
    volume_check: ProbeArgsDict = {
        "exec_": {"command": ["test", "-d", LOGS_FOLDER, "-a", "-w", LOGS_FOLDER]},
        "timeout_seconds": 5,
    }
    return {
        "name": "log-groomer",
        "image": runtime.config.image.reference,
        "image_pull_policy": runtime.config.image.pull_policy,
        # A command skips the image's entrypoint (no DB check): it needs nothing but the files.
        "command": [
            "bash",
            "-c",
            literal(log_groomer_script(runtime.config.logging.retention_days)),
        ],
        "env": [plain_env("LOG_FOLDER", LOGS_FOLDER)],
        "volume_mounts": [{"name": "logs", "mount_path": LOGS_FOLDER}],
        # Alive while the folder it grooms is mounted and writable (a lost NFS mount fails it).
        "liveness_probe": {**volume_check, "period_seconds": 300},
        "readiness_probe": {**volume_check, "period_seconds": 60},
        "resources": {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "security_context": container_security_context(),
    }


def airflow_pod_spec(
    runtime: AirflowRuntime,
    needs: Needs,
    containers: list[ContainerArgsDict],
    *,
    wait_for_migrations: bool = True,
    dag_sidecar: bool = True,
    restart_policy: str | None = None,
    termination_grace_period_seconds: int | None = None,
    extra_volumes: Sequence[VolumeArgsDict] = (),
) -> PodSpecArgsDict:
    config = runtime.config
    volumes = airflow_volumes(runtime, needs)
    init_containers: list[ContainerArgsDict] = []
    if needs.reads_dags:
        volumes += dag_volumes(config.dags, runtime.naming)
        if dag_sidecar:
            containers = [*containers, *git_sync_sidecars(config.dags)]
        init_containers += git_sync_init_containers(config.dags)
    if simple_auth(runtime, needs):
        init_containers.insert(0, simple_auth_init_container(runtime))
    if needs.grooms_logs:
        containers = [*containers, log_groomer_container(runtime)]
    if wait_for_migrations:
        init_containers.append(wait_for_migrations_container(runtime))
    # A team's containers for this process: after ours (the schema is current when they run).
    team_init, team_sidecars = team_containers(config, needs.component)
    init_containers += team_init
    containers = [*containers, *team_sidecars]
    spec: PodSpecArgsDict = {
        "service_account_name": runtime.naming.object(needs.account),
        # A token only where the process calls the Kubernetes API.
        "automount_service_account_token": needs.calls_kubernetes_api,
        "security_context": pod_security_context(AIRFLOW_UID, AIRFLOW_GID, AIRFLOW_GID),
        "containers": containers,
        "volumes": [*volumes, *extra_volumes, *team_volumes(config, needs.component)],
    }
    if init_containers:
        spec["init_containers"] = init_containers
    if config.image.pull_secrets:
        spec["image_pull_secrets"] = [{"name": name} for name in config.image.pull_secrets]
    if restart_policy:
        spec["restart_policy"] = restart_policy
    if termination_grace_period_seconds is not None:
        spec["termination_grace_period_seconds"] = termination_grace_period_seconds
    return spec

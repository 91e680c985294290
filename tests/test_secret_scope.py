"""Each container can read only the secrets its process needs, checked by value.

For every container of every rendered pod (and the KubernetesExecutor's task-pod template), the
test collects every value the container can read: env from secretKeyRef/envFrom, files of Secret
volumes it mounts, and anything an init container may have copied into a shared emptyDir. It then
compares those values with the generated secrets. The allowed sets are what Airflow 3.3 itself
uses in each process (README, "Secret scope"), written here independently of the code:
- the JWT signing key signs/checks tokens: api-server, and the scheduler (its executor signs
  each task's Execution API token);
- the Fernet key decrypts connections, variables and trigger arguments: api-server, scheduler,
  dag-processor, triggerer, the migration and rotation Jobs;
- `[api] secret_key` signs log-fetch tokens (api-server) and checks them in log servers
  (triggerer, Celery worker, the scheduler when it runs LocalExecutor tasks);
- Celery workers reach the metadata DB only through the Celery result backend (same
  credentials); task pods and Flower never hold DB credentials.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from tests.support.rendering import Rendering, cluster_config, render_stack
from tests.test_structure import rich_rendering

JWT, FERNET, API_KEY, DB, ADMIN, BROKER = (
    "jwt-secret",
    "fernet-key",
    "api-secret-key",
    "database password",
    "admin password",
    "broker password",
)
ALL = {JWT, FERNET, API_KEY, DB, ADMIN, BROKER}
# An external database's password lives in the operator's Secret: it stands for DB by name.
EXTERNAL_DB_SECRET = "airflow-db-credentials"

# What each process's main container may read (the most it may; fewer is fine).
MAY_READ: dict[str, set[str]] = {
    "api-server": {JWT, FERNET, API_KEY, DB, ADMIN},
    "scheduler": {JWT, FERNET, DB, BROKER, API_KEY},
    "dag-processor": {FERNET, DB},
    "triggerer": {FERNET, DB, API_KEY},
    "worker": {BROKER, DB, API_KEY},
    "flower": {BROKER},
    "task-pod": set(),
    "db-migrate": {DB, FERNET},
    "create-admin": {DB, ADMIN},
    "pools": {DB},
    "rotate-fernet": {DB, FERNET},
    "db-clean": {DB},
    "pod-cleanup": set(),
}
# Init containers and sidecars, by container name.
CONTAINER_MAY_READ = {
    "wait-for-migrations": {DB},
    "simple-auth-passwords": {ADMIN},
    "git-sync": set(),
    "git-sync-init": set(),
    "log-groomer": set(),
}
FIXED_COMMAND_SIDECARS = {"log-groomer"}


def secret_values(rendering: Rendering) -> dict[str, str]:
    """Kind of secret -> the value generated for it in this rendering."""
    data = rendering.secret_data()
    values = {
        JWT: data.get(("airflow-keys", "jwt-secret")),
        FERNET: data.get(("airflow-keys", "fernet-key")),
        API_KEY: data.get(("airflow-keys", "api-secret-key")),
        DB: data.get(("airflow-postgres", "password")),
        ADMIN: data.get(("airflow-admin", "password")),
        BROKER: data.get(("airflow-redis", "password")),
    }
    return {kind: value for kind, value in values.items() if value}


def pods(rendering: Rendering) -> Iterator[tuple[str, dict[str, Any]]]:
    """(component, pod spec) of every workload, and of the task-pod template."""
    for resource, spec in rendering.pod_specs():
        labels = resource.inputs["metadata"]["labels"]
        yield labels["app.kubernetes.io/component"], spec
    for config_map in rendering.of_kind("ConfigMap"):
        template = (config_map.inputs.get("data") or {}).get("pod_template_file.yaml")
        if template:
            pod = yaml.safe_load(template)
            yield pod["metadata"]["labels"]["app.kubernetes.io/component"], pod["spec"]


def readable(
    rendering: Rendering, spec: dict[str, Any], through_shared_volumes: bool = True
) -> dict[str, set[str]]:
    """Container name -> every secret value it can read (env, Secret files, shared emptyDirs)."""
    data = rendering.secret_data()

    def secret_keys(name: str) -> dict[str, str]:
        found = {key: value for (secret, key), value in data.items() if secret == name}
        # A Secret we do not render (the user's): stand-in values, named by reference.
        return found or {"*": f"<{name}>"}

    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    values: dict[str, set[str]] = {}
    for container in containers:
        seen: set[str] = set()
        for item in container.get("env", []):
            ref = (item.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                keys = secret_keys(ref["name"])
                seen.add(keys.get(ref["key"], keys.get("*", "")))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                seen |= set(secret_keys(source["secretRef"]["name"]).values())
        for mount in container.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})  # absent: a StatefulSet's claim template
            if "secret" in volume:
                keys = secret_keys(volume["secret"]["secretName"])
                items = volume["secret"].get("items")
                if items:
                    seen |= {keys.get(i["key"], keys.get("*", "")) for i in items}
                else:
                    seen |= set(keys.values())
        values[container["name"]] = seen
    if not through_shared_volumes:
        return values
    # Files flow through shared emptyDirs: between containers running at the same time (the
    # main container and its sidecars, which may run user code), and from an init container that
    # mounts a Secret volume into the containers after it (the copy pattern of SimpleAuth).
    init_names = [c["name"] for c in spec.get("initContainers", [])]
    for name, volume in volumes.items():
        if "emptyDir" not in volume:
            continue
        sharing = [
            c for c in containers if any(m["name"] == name for m in c.get("volumeMounts", []))
        ]
        copied: set[str] = set()
        for container in sharing:
            if container["name"] in init_names:
                values[container["name"]] |= copied
                mounts_secret = any(
                    # absent: a StatefulSet's claim template
                    "secret" in volumes.get(m["name"], {})
                    for m in container.get("volumeMounts", [])
                )
                if mounts_secret:
                    copied |= values[container["name"]]
        running = [c for c in sharing if c["name"] not in init_names]
        writers = [
            c["name"]
            for c in running
            if any(m["name"] == name and not m.get("readOnly") for m in c["volumeMounts"])
        ]
        pooled = set().union(copied, *(values[c] for c in writers))
        for container in running:
            values[container["name"]] |= pooled
    return values


def kinds_read(values: set[str], secrets: dict[str, str]) -> set[str]:
    # A password may sit URL-encoded in a connection URL.
    kinds = {
        kind
        for kind, secret in secrets.items()
        if any(secret in v or quote(secret, safe="") in v for v in values)
    }
    if any(EXTERNAL_DB_SECRET in v for v in values):
        kinds.add(DB)
    return kinds


def simple_auth_celery_kubernetes() -> Rendering:
    """SimpleAuth (the admin password file) with Celery workers and task pods beside it."""
    cluster = copy.deepcopy(cluster_config("local"))
    cluster["executors"] = "CeleryExecutor,KubernetesExecutor"
    return render_stack("local", cluster=cluster)


RENDERINGS = {
    "local": lambda: render_stack("local"),
    "staging": lambda: render_stack("staging"),
    "prod": lambda: render_stack("prod"),
    "rich": rich_rendering,
    "simple-auth-celery-kubernetes": simple_auth_celery_kubernetes,
}


def violations(rendering: Rendering) -> tuple[list[str], set[str]]:
    secrets = secret_values(rendering)
    problems, components = [], set()
    for component, spec in pods(rendering):
        if component not in MAY_READ:
            continue  # not Airflow: Postgres, Redis, PgBouncer, statsd, backups
        components.add(component)
        main = spec["containers"][0]["name"]
        direct = readable(rendering, spec, through_shared_volumes=False)
        for container, values in readable(rendering, spec).items():
            if container in FIXED_COMMAND_SIDECARS:
                # Runs our own script, never user code: what it may see through the volume it
                # tends is not a grant; it must hold no secret itself.
                values = direct[container]
            allowed = MAY_READ[component] if container == main else CONTAINER_MAY_READ[container]
            extra = kinds_read(values, secrets) - allowed
            if extra:
                problems.append(f"{component}/{container} can read {sorted(extra)}")
    return problems, components


@pytest.mark.parametrize("variant", sorted(RENDERINGS))
def test_every_container_reads_only_the_secrets_its_process_needs(variant: str) -> None:
    problems, components = violations(RENDERINGS[variant]())
    assert {"api-server", "scheduler", "db-migrate"} <= components
    assert not problems, "\n".join(problems)


def test_workers_and_task_pods_hold_no_signing_or_encryption_key() -> None:
    """Where DAG authors' code runs (Celery workers, task pods) nothing can forge an API token
    or decrypt connections; task pods hold no database credentials either."""
    rendering = simple_auth_celery_kubernetes()
    secrets = secret_values(rendering)
    assert {JWT, FERNET, API_KEY, DB, ADMIN, BROKER} <= secrets.keys()
    seen = {}
    for component, spec in pods(rendering):
        reads = readable(rendering, spec)
        values = set().union(*(v for c, v in reads.items() if c not in FIXED_COMMAND_SIDECARS))
        seen[component] = kinds_read(values, secrets)
    assert not seen["worker"] & {JWT, FERNET, ADMIN}
    assert seen["task-pod"] == set()
    # The processes that need them still have them (what Airflow fails without).
    assert {JWT, FERNET, API_KEY, ADMIN} <= seen["api-server"]
    assert JWT in seen["scheduler"] and API_KEY in seen["worker"] and BROKER in seen["worker"]


def test_the_scope_check_sees_a_leak() -> None:
    """Not vacuous: a JWT secret reference added to the worker is reported by value."""
    rendering = render_stack("staging")
    worker = rendering.one("Deployment", "airflow-worker")
    container = worker.inputs["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {
            "name": "LEAK",
            "valueFrom": {"secretKeyRef": {"name": "airflow-keys", "key": "jwt-secret"}},
        }
    )
    problems, _ = violations(rendering)
    assert problems == ["worker/worker can read ['jwt-secret']"]


def test_containers_without_database_credentials_skip_the_images_database_check() -> None:
    """The official image's entrypoint runs `airflow db check` before any command unless
    CONNECTION_CHECK_MAX_COUNT is 0; without credentials that check fails and the container
    exits (a Celery worker or task pod would never start). With credentials it stays on."""
    rendering = simple_auth_celery_kubernetes()
    checked = set()
    for component, spec in pods(rendering):
        if component not in MAY_READ:
            continue
        for container in spec["containers"]:
            if not container["image"].startswith("apache/airflow:") or "command" in container:
                continue
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            # `airflow db check` uses [database] sql_alchemy_conn (a worker's result backend
            # holds DB credentials too, but the check does not read it).
            has_db = any(name.startswith("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") for name in env)
            skips = env.get("CONNECTION_CHECK_MAX_COUNT") == "0"
            assert skips != has_db, (component, container["name"])
            checked.add(component)
    assert {"worker", "task-pod", "api-server", "scheduler", "db-migrate"} <= checked

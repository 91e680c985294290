"""Declarative connections, variables and pools.

Connections and variables reach every Airflow container as `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*`
env vars from Secrets (Airflow's env-var secrets backend, looked up before the database). Pools
live in the database, so a Job applies them with `airflow pools import`; its name carries a
checksum of the pools, so Pulumi re-runs it exactly when they change.
"""

from __future__ import annotations

import hashlib
import json

from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import EnvVarArgsDict

from .config import AirflowConfig, SecretKeyRef
from .naming import AIRFLOW_HOME, Naming

POOLS_COMPONENT = "pools"
POOLS_FILE = "pools.json"
POOLS_MOUNT = f"{AIRFLOW_HOME}/pools"


def declared_secret_name(naming: Naming) -> str:
    """The Secret holding connection/variable values given in config or secret stack config."""
    return naming.object("declared")


def _env_key(prefix: str, identifier: str) -> str:
    return f"{prefix}{identifier.upper()}"


def _secret_key(kind: str, identifier: str) -> str:
    return f"{kind}-{identifier}"


def _secret_env(name: str, ref: SecretKeyRef) -> EnvVarArgsDict:
    return {"name": name, "value_from": {"secret_key_ref": {"name": ref.name, "key": ref.key}}}


def declared_env(config: AirflowConfig, naming: Naming) -> list[EnvVarArgsDict]:
    env: list[EnvVarArgsDict] = []
    for conn_id, connection in sorted(config.connections.items()):
        ref = connection.secret or SecretKeyRef(
            name=declared_secret_name(naming), key=_secret_key("conn", conn_id)
        )
        env.append(_secret_env(_env_key("AIRFLOW_CONN_", conn_id), ref))
    for key, variable in sorted(config.variables.items()):
        ref = variable.secret or SecretKeyRef(
            name=declared_secret_name(naming), key=_secret_key("var", key)
        )
        env.append(_secret_env(_env_key("AIRFLOW_VAR_", key), ref))
    return env


def config_keys(config: AirflowConfig) -> set[str]:
    """Secret stack config keys the connections and variables read (`airflow-k8s:<key>`)."""
    keys = {c.from_config for c in config.connections.values() if c.from_config}
    keys |= {v.from_config for v in config.variables.values() if v.from_config}
    return keys


def declared_secret_data(config: AirflowConfig, values: dict[str, object]) -> dict[str, object]:
    """Secret key -> value (literal or stack config Output) for the `declared` Secret."""
    data: dict[str, object] = {}
    for conn_id, connection in config.connections.items():
        if connection.from_config:
            data[_secret_key("conn", conn_id)] = values[connection.from_config]
    for key, variable in config.variables.items():
        if variable.from_config:
            data[_secret_key("var", key)] = values[variable.from_config]
        elif variable.value is not None:
            data[_secret_key("var", key)] = variable.value
    return data


def pools_json(config: AirflowConfig) -> str:
    return json.dumps(
        {
            name: {
                "slots": pool.slots,
                "description": pool.description,
                "include_deferred": pool.include_deferred,
            }
            for name, pool in sorted(config.pools.items())
        },
        indent=2,
        sort_keys=True,
    )


def pools_checksum(config: AirflowConfig) -> str:
    return hashlib.sha256(pools_json(config).encode()).hexdigest()[:10]


def pools_job_name(naming: Naming, config: AirflowConfig) -> str:
    return naming.object(f"pools-{pools_checksum(config)}")


def pools_job_spec(runtime: object) -> JobSpecArgsDict:
    from .airflow_env import AirflowRuntime, airflow_job_spec

    assert isinstance(runtime, AirflowRuntime)
    return airflow_job_spec(
        runtime,
        POOLS_COMPONENT,
        ["pools", "import", f"{POOLS_MOUNT}/{POOLS_FILE}"],
        extra_mounts=[{"name": "pools", "mount_path": POOLS_MOUNT, "read_only": True}],
        extra_volumes=[
            {"name": "pools", "config_map": {"name": runtime.naming.object(POOLS_COMPONENT)}}
        ],
    )

"""Declarative connections, variables and pools.

Connections and variables reach every Airflow container as `AIRFLOW_CONN_*` / `AIRFLOW_VAR_*`
env vars from Secrets (Airflow's env-var secrets backend, looked up before the database). Pools
live in the database, so a Job applies them with `airflow pools import`; its name carries a
checksum of the pools, so Pulumi re-runs it exactly when they change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import pulumi
from pulumi_kubernetes.core.v1 import EnvVarArgsDict

from .config import ConnectionConfig, PoolConfig, SecretKeyRef, VariableConfig
from .kube import secret_env
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


def declared_env(
    connections: Mapping[str, ConnectionConfig],
    variables: Mapping[str, VariableConfig],
    naming: Naming,
) -> list[EnvVarArgsDict]:
    env: list[EnvVarArgsDict] = []
    for conn_id, connection in sorted(connections.items()):
        ref = connection.secret or SecretKeyRef(
            name=declared_secret_name(naming), key=_secret_key("conn", conn_id)
        )
        env.append(secret_env(_env_key("AIRFLOW_CONN_", conn_id), ref))
    for key, variable in sorted(variables.items()):
        ref = variable.secret or SecretKeyRef(
            name=declared_secret_name(naming), key=_secret_key("var", key)
        )
        env.append(secret_env(_env_key("AIRFLOW_VAR_", key), ref))
    return env


def config_keys(
    connections: Mapping[str, ConnectionConfig], variables: Mapping[str, VariableConfig]
) -> set[str]:
    """Secret stack config keys the connections and variables read (`airflow-k8s:<key>`)."""
    keys = {c.from_config for c in connections.values() if c.from_config}
    keys |= {v.from_config for v in variables.values() if v.from_config}
    return keys


def declared_secret_data(
    connections: Mapping[str, ConnectionConfig],
    variables: Mapping[str, VariableConfig],
    values: Mapping[str, pulumi.Input[str]],
) -> dict[str, pulumi.Input[str]]:
    """Secret key -> value (literal or stack config Output) for the `declared` Secret."""
    data: dict[str, pulumi.Input[str]] = {}
    for conn_id, connection in connections.items():
        if connection.from_config:
            data[_secret_key("conn", conn_id)] = values[connection.from_config]
    for key, variable in variables.items():
        if variable.from_config:
            data[_secret_key("var", key)] = values[variable.from_config]
        elif variable.value is not None:
            data[_secret_key("var", key)] = variable.value
    return data


def pools_json(pools: Mapping[str, PoolConfig]) -> str:
    return json.dumps(
        {
            name: {
                "slots": pool.slots,
                "description": pool.description,
                "include_deferred": pool.include_deferred,
            }
            for name, pool in sorted(pools.items())
        },
        indent=2,
        sort_keys=True,
    )


def pools_job_name(naming: Naming, pools: Mapping[str, PoolConfig]) -> str:
    return naming.object(f"pools-{hashlib.sha256(pools_json(pools).encode()).hexdigest()[:10]}")

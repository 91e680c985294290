"""Fernet keys: the current key, plus old keys still accepted while a Job re-encrypts.

With old keys listed, `[core] fernet_key` is `new,old,...`, assembled by the kubelet from
secretKeyRef env vars (`$(VAR)` expansion), so no key is ever written into a manifest.
"""

from __future__ import annotations

import hashlib

from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import EnvVarArgsDict

from .config import AirflowConfig, SecretKeyRef

ROTATE_COMPONENT = "rotate-fernet"
CURRENT_KEY_ENV = "AIRFLOW_FERNET_KEY_CURRENT"


def fernet_env(config: AirflowConfig, current: SecretKeyRef) -> list[EnvVarArgsDict]:
    def secret_env(name: str, ref: SecretKeyRef) -> EnvVarArgsDict:
        return {"name": name, "value_from": {"secret_key_ref": {"name": ref.name, "key": ref.key}}}

    previous = config.fernet.previous_keys
    if not previous:
        return [secret_env("AIRFLOW__CORE__FERNET_KEY", current)]
    names = [CURRENT_KEY_ENV] + [f"AIRFLOW_FERNET_KEY_PREVIOUS_{i}" for i in range(len(previous))]
    env = [secret_env(name, ref) for name, ref in zip(names, [current, *previous], strict=True)]
    combined = ",".join(f"$({name})" for name in names)
    env.append({"name": "AIRFLOW__CORE__FERNET_KEY", "value": combined})
    return env


def rotation_checksum(config: AirflowConfig, current: SecretKeyRef) -> str:
    keys = [current, *config.fernet.previous_keys]
    text = f"{config.fernet.generation}|" + "|".join(f"{k.name}/{k.key}" for k in keys)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def rotate_job_spec(runtime: object) -> JobSpecArgsDict:
    from .airflow_env import AirflowRuntime, airflow_job_spec

    assert isinstance(runtime, AirflowRuntime)
    return airflow_job_spec(runtime, ROTATE_COMPONENT, ["rotate-fernet-key"])

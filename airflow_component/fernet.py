"""Fernet keys: the current key, plus old keys still accepted while a Job re-encrypts.

With old keys listed, `[core] fernet_key` is `new,old,...`, assembled by the kubelet from
secretKeyRef env vars (`$(VAR)` expansion), so no key is ever written into a manifest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pulumi_kubernetes.core.v1 import EnvVarArgsDict

from .config import FernetConfig, SecretKeyRef
from .kube import reference_env, secret_env

ROTATE_COMPONENT = "rotate-fernet"
CURRENT_KEY_ENV = "AIRFLOW_FERNET_KEY_CURRENT"


def fernet_env(previous: Sequence[SecretKeyRef], current: SecretKeyRef) -> list[EnvVarArgsDict]:
    if not previous:
        return [secret_env("AIRFLOW__CORE__FERNET_KEY", current)]
    names = [CURRENT_KEY_ENV] + [f"AIRFLOW_FERNET_KEY_PREVIOUS_{i}" for i in range(len(previous))]
    env = [secret_env(name, ref) for name, ref in zip(names, [current, *previous], strict=True)]
    combined = ",".join(f"$({name})" for name in names)
    env.append(reference_env("AIRFLOW__CORE__FERNET_KEY", combined))
    return env


def rotation_checksum(fernet: FernetConfig, current: SecretKeyRef) -> str:
    keys = [current, *fernet.previous_keys]
    text = f"{fernet.generation}|" + "|".join(f"{k.name}/{k.key}" for k in keys)
    # 8 characters: `<release, at most 40>-rotate-fernet-<8>` stays a valid Job name (63).
    return hashlib.sha256(text.encode()).hexdigest()[:8]

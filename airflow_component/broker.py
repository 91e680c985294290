"""The Celery broker: Redis on the official image, with a generated password."""

from __future__ import annotations

from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import ServiceSpecArgsDict, VolumeArgsDict

from .airflow_env import (
    container_security_context,
    pod_security_context,
    resource_requirements,
    secret_env,
)
from .config import RedisConfig, SecretKeyRef
from .naming import REDIS_PORT, Naming
from .secrets import PASSWORD, redis_secret_name

COMPONENT = "redis"
# The official image's redis user.
REDIS_UID = 999
# A high uid (checkov CKV_K8S_40: no clash with host users); the image's own gid for data files.
REDIS_RUN_UID = 10999
PASSWORD_ENV = "REDIS_PASSWORD"


def redis_password_ref(naming: Naming) -> SecretKeyRef:
    return SecretKeyRef(name=redis_secret_name(naming), key=PASSWORD)


def redis_service_spec(naming: Naming) -> ServiceSpecArgsDict:
    return {
        "cluster_ip": "None",
        "selector": naming.labels(COMPONENT),
        "ports": [{"name": "redis", "port": REDIS_PORT, "target_port": "redis"}],
    }


def redis_statefulset_spec(naming: Naming, redis: RedisConfig) -> StatefulSetSpecArgsDict:
    assert redis.resources is not None
    persistent = not redis.storage.ephemeral
    # $(REDIS_PASSWORD) is expanded by the kubelet from the secretKeyRef env.
    args = ["--requirepass", f"$({PASSWORD_ENV})", "--dir", "/data", "--save", ""]
    args += ["--appendonly", "yes" if persistent else "no"]
    ping = f'redis-cli -a "${PASSWORD_ENV}" --no-auth-warning ping | grep -q PONG'
    volumes: list[VolumeArgsDict] = [{"name": "tmp", "empty_dir": {"size_limit": "64Mi"}}]
    spec: StatefulSetSpecArgsDict = {
        "service_name": naming.object(COMPONENT),
        "replicas": 1,
        "selector": {"match_labels": naming.labels(COMPONENT)},
        "template": {
            "metadata": {"labels": naming.labels(COMPONENT)},
            "spec": {
                "automount_service_account_token": False,
                "service_account_name": naming.object(COMPONENT),
                "security_context": pod_security_context(REDIS_RUN_UID, REDIS_UID, REDIS_UID),  # type: ignore[typeddict-item]
                "containers": [
                    {
                        "name": "redis",
                        "image": redis.image,
                        "command": ["redis-server"],
                        "args": args,
                        "env": [secret_env(PASSWORD_ENV, redis_password_ref(naming))],
                        "ports": [{"name": "redis", "container_port": REDIS_PORT}],
                        "volume_mounts": [
                            {"name": "data", "mount_path": "/data"},
                            {"name": "tmp", "mount_path": "/tmp"},
                        ],
                        "readiness_probe": {
                            "exec_": {"command": ["sh", "-c", ping]},
                            "period_seconds": 10,
                            "timeout_seconds": 5,
                        },
                        "liveness_probe": {
                            "exec_": {"command": ["sh", "-c", ping]},
                            "initial_delay_seconds": 15,
                            "period_seconds": 20,
                            "timeout_seconds": 5,
                            "failure_threshold": 5,
                        },
                        "resources": resource_requirements(redis.resources),  # type: ignore[typeddict-item]
                        "security_context": container_security_context(),  # type: ignore[typeddict-item]
                    }
                ],
                "volumes": volumes,
            },
        },
    }
    if persistent:
        claim: dict[str, object] = {
            "access_modes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": redis.storage.size}},
        }
        if redis.storage.storage_class_name:
            claim["storage_class_name"] = redis.storage.storage_class_name
        spec["volume_claim_templates"] = [
            {"metadata": {"name": "data", "labels": naming.labels(COMPONENT)}, "spec": claim}  # type: ignore[typeddict-item]
        ]
    else:
        volumes.append({"name": "data", "empty_dir": {"size_limit": redis.storage.size}})
    return spec

"""The Celery broker: Redis on the official image, with a generated password."""

from __future__ import annotations

from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import ContainerArgsDict, ServiceSpecArgsDict

from .config import SecretKeyRef
from .datastore import DataStore, headless_service_spec, statefulset_spec
from .kube import exec_probe, secret_env
from .naming import REDIS_PORT, Naming
from .resolve import Redis
from .secrets import PASSWORD, redis_secret_name

COMPONENT = "redis"
# The official image's redis group.
REDIS_GID = 999
PASSWORD_ENV = "REDIS_PASSWORD"


def redis_password_ref(naming: Naming) -> SecretKeyRef:
    return SecretKeyRef(name=redis_secret_name(naming), key=PASSWORD)


def redis_store(redis: Redis) -> DataStore:
    return DataStore(
        component=COMPONENT,
        port_name="redis",
        port=REDIS_PORT,
        image_gid=REDIS_GID,
        ephemeral=redis.storage.ephemeral,
        size=redis.storage.size,
        storage_class_name=redis.storage.storage_class_name,
        resources=redis.resources,
        scratch=(("tmp", "/tmp", "64Mi"),),
    )


def redis_service_spec(naming: Naming, redis: Redis) -> ServiceSpecArgsDict:
    return headless_service_spec(naming, redis_store(redis))


def redis_statefulset_spec(naming: Naming, redis: Redis) -> StatefulSetSpecArgsDict:
    persistent = not redis.storage.ephemeral
    # $(REDIS_PASSWORD) is expanded by the kubelet from the secretKeyRef env.
    args = ["--requirepass", f"$({PASSWORD_ENV})", "--dir", "/data", "--save", ""]
    args += ["--appendonly", "yes" if persistent else "no"]
    ping = ["sh", "-c", f'redis-cli -a "${PASSWORD_ENV}" --no-auth-warning ping | grep -q PONG']
    container: ContainerArgsDict = {
        "name": "redis",
        "image": redis.image,
        "command": ["redis-server"],
        "args": args,
        "env": [secret_env(PASSWORD_ENV, redis_password_ref(naming))],
        "readiness_probe": exec_probe(ping, period=10),
        "liveness_probe": exec_probe(ping, period=20, initial_delay=15),
    }
    return statefulset_spec(naming, redis_store(redis), container, "/data")

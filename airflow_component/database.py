"""In-cluster Postgres: a StatefulSet on the official `postgres` image with a headless Service."""

from __future__ import annotations

from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import ContainerArgsDict, ServiceSpecArgsDict

from .datastore import DataStore, headless_service_spec, statefulset_spec
from .kube import exec_probe, plain_env, secret_env
from .naming import POSTGRES_PORT, Naming
from .resolve import InClusterPostgres
from .secrets import SecretRefs

COMPONENT = "postgres"
# The official image's postgres group: data files belong to it.
POSTGRES_GID = 999
DATA_MOUNT = "/var/lib/postgresql/data"


def postgres_store(postgres: InClusterPostgres) -> DataStore:
    return DataStore(
        component=COMPONENT,
        port_name="postgres",
        port=POSTGRES_PORT,
        image_gid=POSTGRES_GID,
        ephemeral=postgres.storage.ephemeral,
        size=postgres.storage.size,
        storage_class_name=postgres.storage.storage_class_name,
        resources=postgres.resources,
        scratch=(("run", "/var/run/postgresql", "16Mi"), ("tmp", "/tmp", "256Mi")),
        # Postgres keeps its password in the data: an unprotected database that outlived
        # `pulumi destroy` would reject the new password the next `pulumi up` generates.
        keep_on_delete=postgres.protect,
    )


def postgres_service_spec(naming: Naming, postgres: InClusterPostgres) -> ServiceSpecArgsDict:
    return headless_service_spec(naming, postgres_store(postgres))


def postgres_statefulset_spec(
    naming: Naming, postgres: InClusterPostgres, secrets: SecretRefs
) -> StatefulSetSpecArgsDict:
    assert secrets.postgres_password is not None
    ready_check = ["pg_isready", "-h", "127.0.0.1", "-U", postgres.user, "-d", postgres.database]
    container: ContainerArgsDict = {
        "name": "postgres",
        "image": postgres.image,
        "env": [
            plain_env("POSTGRES_USER", postgres.user),
            plain_env("POSTGRES_DB", postgres.database),
            secret_env("POSTGRES_PASSWORD", secrets.postgres_password),
            # A subdirectory: the volume root may hold lost+found.
            {"name": "PGDATA", "value": f"{DATA_MOUNT}/pgdata"},
        ],
        "readiness_probe": exec_probe(ready_check, period=10),
        "liveness_probe": exec_probe(ready_check, period=20, initial_delay=30),
    }
    return statefulset_spec(naming, postgres_store(postgres), container, DATA_MOUNT)

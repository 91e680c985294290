"""In-cluster Postgres: a StatefulSet on the official `postgres` image with a headless Service."""

from __future__ import annotations

from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import ServiceSpecArgsDict, VolumeArgsDict

from .airflow_env import (
    container_security_context,
    pod_security_context,
    resource_requirements,
    secret_env,
)
from .config import InClusterPostgres
from .naming import POSTGRES_PORT, Naming
from .secrets import SecretRefs

COMPONENT = "postgres"
# The official image's postgres user; running as it directly avoids the root entrypoint path.
POSTGRES_UID = 999
# A high uid (checkov CKV_K8S_40: no clash with host users); the image's own gid for data files.
POSTGRES_RUN_UID = 10999
DATA_MOUNT = "/var/lib/postgresql/data"


def postgres_service_spec(naming: Naming) -> ServiceSpecArgsDict:
    return {
        "cluster_ip": "None",
        "selector": naming.labels(COMPONENT),
        "ports": [{"name": "postgres", "port": POSTGRES_PORT, "target_port": "postgres"}],
    }


def postgres_statefulset_spec(
    naming: Naming, postgres: InClusterPostgres, secrets: SecretRefs
) -> StatefulSetSpecArgsDict:
    assert secrets.postgres_password is not None and postgres.resources is not None
    ready_check = ["pg_isready", "-h", "127.0.0.1", "-U", postgres.user, "-d", postgres.database]
    volumes: list[VolumeArgsDict] = [
        {"name": "run", "empty_dir": {"size_limit": "16Mi"}},
        {"name": "tmp", "empty_dir": {"size_limit": "256Mi"}},
    ]
    spec: StatefulSetSpecArgsDict = {
        "service_name": naming.object(COMPONENT),
        "replicas": 1,
        "selector": {"match_labels": naming.labels(COMPONENT)},
        "template": {
            "metadata": {"labels": naming.labels(COMPONENT)},
            "spec": {
                "automount_service_account_token": False,
                "service_account_name": naming.object(COMPONENT),
                "security_context": pod_security_context(  # type: ignore[typeddict-item]
                    POSTGRES_RUN_UID, POSTGRES_UID, POSTGRES_UID
                ),
                "termination_grace_period_seconds": 60,
                "containers": [
                    {
                        "name": "postgres",
                        "image": postgres.image,
                        "ports": [{"name": "postgres", "container_port": POSTGRES_PORT}],
                        "env": [
                            {"name": "POSTGRES_USER", "value": postgres.user},
                            {"name": "POSTGRES_DB", "value": postgres.database},
                            secret_env("POSTGRES_PASSWORD", secrets.postgres_password),
                            # A subdirectory: the volume root may hold lost+found.
                            {"name": "PGDATA", "value": f"{DATA_MOUNT}/pgdata"},
                        ],
                        "volume_mounts": [
                            {"name": "data", "mount_path": DATA_MOUNT},
                            {"name": "run", "mount_path": "/var/run/postgresql"},
                            {"name": "tmp", "mount_path": "/tmp"},
                        ],
                        "readiness_probe": {
                            "exec_": {"command": ready_check},
                            "period_seconds": 10,
                            "timeout_seconds": 5,
                        },
                        "liveness_probe": {
                            "exec_": {"command": ready_check},
                            "initial_delay_seconds": 30,
                            "period_seconds": 20,
                            "timeout_seconds": 5,
                            "failure_threshold": 6,
                        },
                        "resources": resource_requirements(postgres.resources),  # type: ignore[typeddict-item]
                        "security_context": container_security_context(),  # type: ignore[typeddict-item]
                    }
                ],
                "volumes": volumes,
            },
        },
    }
    if postgres.storage.ephemeral:
        volumes.append({"name": "data", "empty_dir": {"size_limit": postgres.storage.size}})
    else:
        claim_spec: dict[str, object] = {
            "access_modes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": postgres.storage.size}},
        }
        if postgres.storage.storage_class_name:
            claim_spec["storage_class_name"] = postgres.storage.storage_class_name
        spec["volume_claim_templates"] = [
            {"metadata": {"name": "data", "labels": naming.labels(COMPONENT)}, "spec": claim_spec}  # type: ignore[typeddict-item]
        ]
        # Deleting the StatefulSet must never take the data with it.
        spec["persistent_volume_claim_retention_policy"] = {
            "when_deleted": "Retain",
            "when_scaled": "Retain",
        }
    return spec

"""What Postgres and Redis share: one pod in a StatefulSet behind a headless Service, run as a
non-root user, its data on a claim (or an emptyDir when ephemeral) that outlives the StatefulSet."""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    ServiceSpecArgsDict,
    VolumeArgsDict,
)

from .config import Resources
from .kube import (
    claim_spec,
    container_security_context,
    pod_security_context,
    resource_requirements,
)
from .naming import Naming

# A high uid (checkov CKV_K8S_40: no clash with host users); each image's own gid owns the data.
RUN_UID = 10999
DATA_VOLUME = "data"
# Kubernetes refuses any change to a StatefulSet's claim templates, so a new size would make the
# provider replace the StatefulSet: refused where it is protected, and never a bigger disk (the
# claim outlives the StatefulSet and keeps its size). The template keeps the size it was created
# with (`ignoreChanges` on this path) and the live claim is grown in place by a patch.
CLAIM_SIZE_PATH = "spec.volumeClaimTemplates[0].spec.resources.requests.storage"


@dataclass(frozen=True)
class DataStore:
    component: str
    port_name: str
    port: int
    image_gid: int
    ephemeral: bool
    size: str
    storage_class_name: str | None
    resources: Resources
    # Writable scratch directories besides the data volume (read-only root filesystem).
    scratch: tuple[tuple[str, str, str], ...]  # (volume name, mount path, size limit)
    # Keep the claim when the StatefulSet is deleted (`pulumi destroy`).
    keep_on_delete: bool = True


def headless_service_spec(naming: Naming, store: DataStore) -> ServiceSpecArgsDict:
    return {
        "cluster_ip": "None",
        "selector": naming.labels(store.component),
        "ports": [{"name": store.port_name, "port": store.port, "target_port": store.port_name}],
    }


def statefulset_spec(
    naming: Naming, store: DataStore, container: ContainerArgsDict, data_mount: str
) -> StatefulSetSpecArgsDict:
    """`container` brings name, image, command/args, env and probes; the rest is filled here."""
    volumes: list[VolumeArgsDict] = [
        {"name": name, "empty_dir": {"size_limit": limit}} for name, _, limit in store.scratch
    ]
    full_container: ContainerArgsDict = {
        **container,
        "ports": [{"name": store.port_name, "container_port": store.port}],
        "volume_mounts": [
            {"name": DATA_VOLUME, "mount_path": data_mount},
            *({"name": name, "mount_path": path} for name, path, _ in store.scratch),
        ],
        "resources": resource_requirements(store.resources),
        "security_context": container_security_context(),
    }
    spec: StatefulSetSpecArgsDict = {
        "service_name": naming.object(store.component),
        "replicas": 1,
        "selector": {"match_labels": naming.labels(store.component)},
        "template": {
            "metadata": {"labels": naming.labels(store.component)},
            "spec": {
                "automount_service_account_token": False,
                "service_account_name": naming.object(store.component),
                "security_context": pod_security_context(RUN_UID, store.image_gid, store.image_gid),
                "termination_grace_period_seconds": 60,
                "containers": [full_container],
                "volumes": volumes,
            },
        },
    }
    if store.ephemeral:
        volumes.append({"name": DATA_VOLUME, "empty_dir": {"size_limit": store.size}})
        return spec
    claim = claim_spec("ReadWriteOnce", store.size, store.storage_class_name)
    # One template only: CLAIM_SIZE_PATH names its index.
    spec["volume_claim_templates"] = [
        {"metadata": {"name": DATA_VOLUME, "labels": naming.labels(store.component)}, "spec": claim}
    ]
    # Scaling never takes the data with it; deleting does only where the data is not protected.
    spec["persistent_volume_claim_retention_policy"] = {
        "when_deleted": "Retain" if store.keep_on_delete else "Delete",
        "when_scaled": "Retain",
    }
    return spec


def data_claim_name(naming: Naming, store: DataStore) -> str:
    """The claim the StatefulSet controller creates for its one pod from the data template:
    `<template>-<StatefulSet>-<ordinal>`."""
    return f"{DATA_VOLUME}-{naming.object(store.component)}-0"


def claim_growth_spec(store: DataStore) -> PersistentVolumeClaimSpecArgsDict:
    """What the patch of the live claim sets: only the storage request (Kubernetes grows a
    bound claim when its StorageClass allows volume expansion, and never shrinks one)."""
    return {"resources": {"requests": {"storage": store.size}}}

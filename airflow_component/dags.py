"""DAG delivery: how DAG files reach every process that parses or runs them.

One function decides the volumes, mounts and git-sync containers, and every DAG-reading pod
(scheduler, dag-processor, triggerer, Celery workers, KubernetesExecutor task pods) uses it, so
no process can be left without DAGs (git-sync missing from the dag-processor is a top complaint
about today's chart).
"""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from .kube import claim_spec, container_security_context, plain_env, resource_requirements
from .naming import AIRFLOW_GID, DAGS_FOLDER, Naming
from .resolve import Dags, GitSync

DAGS_VOLUME = "dags"
GIT_SYNC_ROOT = "/git"
GIT_SYNC_LINK = "repo"
GIT_SYNC_UID = 65533
GIT_SYNC_HTTP_PORT = 8090
GIT_SECRET_MOUNT = "/etc/git-secret"
HOST_PATH_STORAGE_CLASS = "airflow-dags-host-path"


def dags_folder(dags: Dags) -> str:
    """Where Airflow finds DAGs; for git-sync, the symlink git-sync swaps atomically."""
    git_sync = dags.git_sync
    if dags.delivery == "git-sync" and git_sync is not None:
        folder = f"{DAGS_FOLDER}/{GIT_SYNC_LINK}"
        return f"{folder}/{git_sync.sub_path.strip('/')}" if git_sync.sub_path else folder
    return DAGS_FOLDER


def dags_claim_name(naming: Naming) -> str:
    return naming.object("dags")


def host_path_volume_name(naming: Naming) -> str:
    # PersistentVolumes are cluster-scoped: the namespace keeps two installs apart.
    return f"{naming.namespace}-{naming.object('dags')}"


def dag_volumes(dags: Dags, naming: Naming) -> list[VolumeArgsDict]:
    delivery = dags.delivery
    if delivery == "image":
        return []
    if delivery == "git-sync":
        assert dags.git_sync is not None
        volumes: list[VolumeArgsDict] = [
            {"name": DAGS_VOLUME, "empty_dir": {"size_limit": "2Gi"}},
            {"name": "git-sync-tmp", "empty_dir": {"size_limit": "256Mi"}},
        ]
        if dags.git_sync.ssh_key_secret:
            volumes.append(
                {
                    "name": "git-secret",
                    "secret": {
                        "secret_name": dags.git_sync.ssh_key_secret,
                        "default_mode": 0o440,
                        "items": [
                            {"key": "ssh-privatekey", "path": "ssh"},
                            {"key": "known_hosts", "path": "known_hosts"},
                        ],
                    },
                }
            )
        return volumes
    claim = (
        dags.volume.existing_claim
        if delivery == "volume" and dags.volume and dags.volume.existing_claim
        else dags_claim_name(naming)
    )
    return [
        {
            "name": DAGS_VOLUME,
            "persistent_volume_claim": {"claim_name": claim, "read_only": True},
        }
    ]


def dag_mounts(dags: Dags) -> list[VolumeMountArgsDict]:
    """Airflow containers only read DAGs: the mount is read-only whatever the delivery."""
    if dags.delivery == "image":
        return []
    return [{"name": DAGS_VOLUME, "mount_path": DAGS_FOLDER, "read_only": True}]


def _git_sync_env(git_sync: GitSync, one_time: bool) -> list[EnvVarArgsDict]:
    env: list[EnvVarArgsDict] = [
        plain_env("GITSYNC_REPO", git_sync.repo),
        plain_env("GITSYNC_REF", git_sync.ref),
        plain_env("GITSYNC_DEPTH", str(git_sync.depth)),
        plain_env("GITSYNC_ROOT", GIT_SYNC_ROOT),
        plain_env("GITSYNC_LINK", GIT_SYNC_LINK),
        # git writes its config under HOME; the root filesystem is read-only.
        plain_env("HOME", "/tmp"),
    ]
    if one_time:
        env.append(plain_env("GITSYNC_ONE_TIME", "true"))
    else:
        env += [
            plain_env("GITSYNC_PERIOD", git_sync.period),
            {"name": "GITSYNC_HTTP_BIND", "value": f":{GIT_SYNC_HTTP_PORT}"},
        ]
    if git_sync.https_credentials_secret:
        for name, key in (("GITSYNC_USERNAME", "username"), ("GITSYNC_PASSWORD", "password")):
            env.append(
                {
                    "name": name,
                    "value_from": {
                        "secret_key_ref": {"name": git_sync.https_credentials_secret, "key": key}
                    },
                }
            )
    if git_sync.ssh_key_secret:
        env += [
            {"name": "GITSYNC_SSH_KEY_FILE", "value": f"{GIT_SECRET_MOUNT}/ssh"},
            plain_env("GITSYNC_SSH_KNOWN_HOSTS", "true"),
            {"name": "GITSYNC_SSH_KNOWN_HOSTS_FILE", "value": f"{GIT_SECRET_MOUNT}/known_hosts"},
        ]
    return env


def git_sync_container(git_sync: GitSync, one_time: bool) -> ContainerArgsDict:
    """The git-sync sidecar (or, `one_time`, the init container of a task pod)."""
    mounts: list[VolumeMountArgsDict] = [
        {"name": DAGS_VOLUME, "mount_path": GIT_SYNC_ROOT},
        {"name": "git-sync-tmp", "mount_path": "/tmp"},
    ]
    if git_sync.ssh_key_secret:
        mounts.append({"name": "git-secret", "mount_path": GIT_SECRET_MOUNT, "read_only": True})
    container: ContainerArgsDict = {
        "name": "git-sync-init" if one_time else "git-sync",
        "image": git_sync.image,
        "env": _git_sync_env(git_sync, one_time),
        "volume_mounts": mounts,
        "resources": resource_requirements(git_sync.resources),
        "security_context": {
            **container_security_context(),
            # git-sync's own uid; group 0 (the pod's fsGroup) lets Airflow (50000:0) read.
            "run_as_user": GIT_SYNC_UID,
            "run_as_group": AIRFLOW_GID,
        },
    }
    if not one_time:
        container["ports"] = [{"name": "git-sync", "container_port": GIT_SYNC_HTTP_PORT}]
        container["liveness_probe"] = {
            "http_get": {"path": "/", "port": "git-sync"},
            "initial_delay_seconds": 30,
            "period_seconds": 30,
            "failure_threshold": 10,
        }
        container["readiness_probe"] = {
            "http_get": {"path": "/", "port": "git-sync"},
            "period_seconds": 10,
        }
    return container


def git_sync_sidecars(dags: Dags) -> list[ContainerArgsDict]:
    git_sync = dags.git_sync if dags.delivery == "git-sync" else None
    return [git_sync_container(git_sync, one_time=False)] if git_sync else []


def git_sync_init_containers(dags: Dags) -> list[ContainerArgsDict]:
    """The first sync before Airflow starts, so a process never parses an empty folder."""
    git_sync = dags.git_sync if dags.delivery == "git-sync" else None
    return [git_sync_container(git_sync, one_time=True)] if git_sync else []


def dags_claim_spec(dags: Dags, naming: Naming) -> PersistentVolumeClaimSpecArgsDict | None:
    """The claim this component creates for `volume` (new claim) or `hostPath` delivery."""
    if dags.delivery == "volume" and dags.volume and not dags.volume.existing_claim:
        return claim_spec(dags.volume.access_mode, dags.volume.size, dags.volume.storage_class_name)
    if dags.delivery == "hostPath":
        return {
            "access_modes": ["ReadOnlyMany"],
            "resources": {"requests": {"storage": "1Gi"}},
            "storage_class_name": HOST_PATH_STORAGE_CLASS,
            "volume_name": host_path_volume_name(naming),
        }
    return None


def host_path_volume_spec(dags: Dags, naming: Naming) -> dict[str, object] | None:
    """A PersistentVolume over the kind node's folder.

    Pods mount the claim, never a hostPath volume, so the namespace keeps Pod Security
    "restricted" even on a laptop.
    """
    if dags.delivery != "hostPath" or dags.host_path is None:
        return None
    return {
        "capacity": {"storage": "1Gi"},
        "access_modes": ["ReadOnlyMany"],
        "persistent_volume_reclaim_policy": "Retain",
        "storage_class_name": HOST_PATH_STORAGE_CLASS,
        "host_path": {"path": dags.host_path.node_path, "type": "Directory"},
        "claim_ref": {"namespace": naming.namespace, "name": dags_claim_name(naming)},
    }

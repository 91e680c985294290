"""DAG delivery: image, git-sync, volume or hostPath."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ..versions import GIT_SYNC_IMAGE
from .types import (
    DnsSubdomain,
    NonEmpty,
    Resources,
    StorageSize,
    StrictModel,
)


class GitSyncConfig(StrictModel):
    """git-sync v4: a sidecar on every process that reads DAGs."""

    repo: Annotated[str, StringConstraints(pattern=r"^(https://|ssh://|git@|file://)\S+$")] = Field(
        description="Repository URL (https://..., ssh://... or git@host:org/repo.git)."
    )
    ref: NonEmpty = Field(default="HEAD", description="Branch, tag or commit to sync.")
    period: Annotated[str, StringConstraints(pattern=r"^[0-9]+(ms|s|m|h)$")] = Field(
        default="60s", description="How often to pull (Go duration, e.g. 30s, 5m)."
    )
    depth: int = Field(default=1, ge=0, description="Clone depth (0 = full history).")
    sub_path: Annotated[str, StringConstraints(pattern=r"^[^/\s][^\s]*$")] | None = Field(
        default=None, description="Folder of the repository that holds the DAGs."
    )
    image: NonEmpty = Field(default=GIT_SYNC_IMAGE, description="git-sync image.")
    https_credentials_secret: DnsSubdomain | None = Field(
        default=None,
        description="Existing Secret with `username` and `password` (token) for HTTPS.",
    )
    ssh_key_secret: DnsSubdomain | None = Field(
        default=None,
        description="Existing Secret with `ssh-privatekey` and `known_hosts` for SSH.",
    )
    resources: Resources | None = Field(default=None, description="Requests/limits.")

    @field_validator("period")
    @classmethod
    def _period_at_least_a_second(cls, value: str) -> str:
        match = re.fullmatch(r"([0-9]+)(ms|s|m|h)", value)
        assert match is not None  # the field's pattern already matched
        number, unit = match.groups()
        seconds = int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
        if seconds < 1:
            raise ValueError(
                f"period {value!r} is below 1s (git-sync would poll the remote flat out)"
            )
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> GitSyncConfig:
        if self.https_credentials_secret and self.ssh_key_secret:
            raise ValueError("set httpsCredentialsSecret or sshKeySecret, not both")
        return self


class DagVolumeConfig(StrictModel):
    """DAGs on a shared volume: an existing claim, or a new ReadOnlyMany/ReadWriteMany claim."""

    existing_claim: DnsSubdomain | None = Field(default=None, description="Existing PVC name.")
    size: StorageSize = Field(default="1Gi", description="Size of a new claim.")
    storage_class_name: DnsSubdomain | None = Field(default=None, description="StorageClass.")
    access_mode: Literal["ReadOnlyMany", "ReadWriteMany"] = Field(
        default="ReadWriteMany", description="Access mode of a new claim."
    )


class DagHostPathConfig(StrictModel):
    """Local only: a folder of the kind node (mounted from your machine by kind's extraMounts)."""

    node_path: Annotated[str, StringConstraints(pattern=r"^/\S*$")] = Field(
        default="/dags", description="Path on the kind node (see kind/kind-config.yaml)."
    )


class DagsConfig(StrictModel):
    """How DAG files reach every process that parses or runs them."""

    delivery: Literal["image", "git-sync", "volume", "hostPath"] = Field(
        default="image", description="`image`: baked into `image`; or git-sync/volume/hostPath."
    )
    git_sync: GitSyncConfig | None = Field(default=None, description="For `git-sync`.")
    volume: DagVolumeConfig | None = Field(default=None, description="For `volume`.")
    host_path: DagHostPathConfig | None = Field(default=None, description="For `hostPath`.")

    @model_validator(mode="before")
    @classmethod
    def _settings_match_delivery(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        delivery = data.get("delivery", "image")
        settings = {"git-sync": "gitSync", "volume": "volume", "hostPath": "hostPath"}
        for mode, key in settings.items():
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()
            given = key in data or snake in data
            if given and delivery != mode:
                raise ValueError(f"`{key}` is set but delivery is {delivery!r}")
        if delivery == "git-sync" and not (data.get("gitSync") or data.get("git_sync")):
            raise ValueError("delivery is git-sync but `gitSync` (with `repo`) is missing")
        return data

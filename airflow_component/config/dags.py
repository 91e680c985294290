"""DAG delivery: the DAG folder (image, git-sync, volume or hostPath) and Airflow 3's DAG
bundles (`dags.bundles`: the DAG folder and Git repositories, one dag-processor each)."""

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
from .processes import ProcessConfig
from .types import (
    DnsSubdomain,
    NonEmpty,
    Resources,
    SecretKeyRef,
    StorageSize,
    StrictModel,
    _matching,
)

# Airflow's own name for the DAG-folder bundle (its default `dag_bundle_config_list`).
DAGS_FOLDER_BUNDLE = "dags-folder"
# A bundle's name reaches object names (`<release>-dag-processor-<name>`) and an env var name.
BundleName = Annotated[
    str,
    _matching(
        r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$",
        "a bundle name (lower-case letters, digits and '-', starting with a letter, at most 20)",
    ),
]
# https://host[:port]/path, ssh://[user@]host[:port]/path, git://host[:port]/path or
# user@host:path; no credentials in it (bundle kwargs are readable through Airflow's config API).
GIT_URL = (
    r"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s@?#]+"
    r"|ssh://([A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s?#]+"
    r"|git://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s@?#]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s?#/][^\s?#]*)$"
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

    bundles: list[DagBundleConfig] = Field(
        default_factory=list,
        max_length=20,
        description=(
            "Airflow 3 DAG bundles, each parsed by a dag-processor of its own; unset: the DAG "
            "folder alone (Airflow's default `dags-folder` bundle, one dag-processor)."
        ),
    )

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

    @model_validator(mode="after")
    def _bundles_apart(self) -> DagsConfig:
        names = [bundle.name for bundle in self.bundles]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(
                    f"dags.bundles[{index}].name: {name!r} is also dags.bundles"
                    f"[{names.index(name)}]: two processors would parse the same bundle"
                )
        folders = [i for i, bundle in enumerate(self.bundles) if bundle.dags_folder is not None]
        if len(folders) > 1:
            raise ValueError(
                f"dags.bundles[{folders[1]}].dagsFolder: the DAG folder is already "
                f"dags.bundles[{folders[0]}]; two processors would parse the same files"
            )
        if self.bundles and not folders and self.delivery != "image":
            raise ValueError(
                f"dags.delivery {self.delivery!r} fills the DAG folder, but no bundle in "
                "dags.bundles reads it: add {name: dags-folder, dagsFolder: {}} or drop delivery"
            )
        return self


RepositoryPath = Annotated[
    str, _matching(r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,199}$", "a relative path")
]


class GitBundleConfig(StrictModel):
    """A Git repository as a versioned DAG bundle (`GitDagBundle`, apache-airflow-providers-git,
    which the official image ships with the `git` binary): a run keeps the commit it started on."""

    repo: Annotated[
        str,
        _matching(
            GIT_URL,
            "a Git URL without credentials (https://host/org/repo.git, ssh://host/..., "
            "git://host/... or git@host:org/repo.git); put a token in connectionSecret",
        ),
    ] = Field(description="Repository URL.")
    tracking_ref: Annotated[str, _matching(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$", "a ref")] = (
        Field(default="main", description="Branch, tag or commit the bundle follows.")
    )
    subdir: RepositoryPath | None = Field(
        default=None, description="Folder of the repository that holds the DAGs."
    )
    connection_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Existing Secret key holding an Airflow `git` connection (JSON or URI: password = "
            "an access token, or extra private_key for SSH); delivered by secretKeyRef to the "
            "processes that fetch this bundle. Unset: a public repository."
        ),
    )
    refresh_interval: int | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="Seconds between fetches ([dag_processor] refresh_interval when unset).",
    )

    @field_validator("subdir")
    @classmethod
    def _inside_the_repository(cls, value: str | None) -> str | None:
        if value is not None and ".." in value.split("/"):
            raise ValueError(f"{value!r}: '..' is not allowed")
        return value


class ObjectStoreBundleConfig(StrictModel):
    """DAG files under a prefix of an S3 or GCS bucket (`S3DagBundle` of the Amazon provider,
    `GCSDagBundle` of the Google provider; the official image ships both). Not versioned: a run
    uses what the bucket holds when its tasks start."""

    url: Annotated[
        str,
        _matching(
            r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[A-Za-z0-9_.-][A-Za-z0-9_./-]{0,200})?$",
            "s3://bucket/prefix or gs://bucket/prefix",
        ),
    ] = Field(description="Bucket and prefix, e.g. s3://company-dags/analytics.")
    connection_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Existing Secret key holding an Airflow `aws` or `google_cloud_platform` connection; "
            "unset: the pod's cloud identity (serviceAccountAnnotations)."
        ),
    )
    service_account_annotations: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "IRSA / Workload Identity annotations for the ServiceAccounts of the processes that "
            "fetch this bundle."
        ),
    )
    refresh_interval: int | None = Field(
        default=None,
        ge=1,
        le=86400,
        description="Seconds between fetches ([dag_processor] refresh_interval when unset).",
    )

    @field_validator("url")
    @classmethod
    def _inside_the_bucket(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError(f"{value!r}: '..' is not allowed")
        return value

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]

    @property
    def prefix(self) -> str:
        parts = self.url.split("://", 1)[1].split("/", 1)
        return parts[1] if len(parts) > 1 else ""


class DagsFolderBundleConfig(StrictModel):
    """The DAG folder that `dags.delivery` fills (image, git-sync, volume, hostPath) as a bundle
    (`LocalDagBundle`, not versioned)."""


class BundleProcessorConfig(ProcessConfig):
    """This bundle's dag-processor: resources, placement, options (over `dagProcessor`)."""

    @field_validator("replicas")
    @classmethod
    def _one(cls, value: int) -> int:
        if value != 1:
            raise ValueError(
                "one dag-processor per bundle: Airflow 3.3 does not coordinate processors of one "
                "bundle, a second one parses every file again"
            )
        return value


class DagBundleConfig(StrictModel):
    """One DAG bundle, parsed by a dag-processor of its own (`airflow dag-processor
    --bundle-name <name>`)."""

    name: BundleName = Field(description="Bundle name (Airflow's and in object names).")
    git: GitBundleConfig | None = Field(default=None, description="A Git repository.")
    object_store: ObjectStoreBundleConfig | None = Field(
        default=None, description="A prefix of an S3 or GCS bucket."
    )
    dags_folder: DagsFolderBundleConfig | None = Field(
        default=None, description="The DAG folder `dags.delivery` fills."
    )
    dag_processor: BundleProcessorConfig | None = Field(
        default=None, description="Settings of this bundle's dag-processor (over `dagProcessor`)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> DagBundleConfig:
        sources = [self.git, self.object_store, self.dags_folder]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                f"bundle {self.name!r}: set exactly one of `git`, `objectStore`, `dagsFolder`"
            )
        return self

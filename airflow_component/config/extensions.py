"""What a team adds to the pods: Airflow options, env, and where pods run.

Set at the top level for every pod the component creates, and per process (`apiServer`,
`scheduler`, `dagProcessor`, `triggerer`, `celery.workers`) to override it there.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .airflow_options import AirflowOptions, validate_options
from .types import (
    LABEL_KEY,
    LABEL_VALUE,
    DnsLabel,
    DnsSubdomain,
    NonEmpty,
    Resources,
    SecretKeyRef,
    StorageSize,
    StrictModel,
    _matching,
)

LabelKey = Annotated[str, _matching(LABEL_KEY, "a label key")]
LabelValue = Annotated[str, _matching(LABEL_VALUE, "a label value")]
EnvName = Annotated[
    str,
    StringConstraints(max_length=256),
    _matching(r"^[A-Za-z_][A-Za-z0-9_]*$", "an environment variable name (letters, digits, _)"),
]

RESERVED_LABEL_PREFIXES = ("app.kubernetes.io/", "airflow-k8s/")
# Volume names the component's pods use.
RESERVED_VOLUME_NAMES = frozenset(
    {
        "logs",
        "tmp",
        "airflow-cfg",
        "dags",
        "simple-auth",
        "simple-auth-secret",
        "webserver-config",
        "git-secret",
        "git-sync-tmp",
        "pod-template",
        "pools",
        "self-check",
        "declared",
    }
)
RESERVED_ANNOTATION_PREFIXES = ("checksum/",)
# Container names the component's pods use.
RESERVED_CONTAINER_NAMES = frozenset(
    {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "worker",
        "flower",
        "git-sync",
        "git-sync-init",
        "log-groomer",
        "wait-for-migrations",
        "simple-auth-passwords",
        "base",
    }
)

# Env names this component sets or reserves, and what to use instead.
RESERVED_ENV_PREFIXES = {
    "AIRFLOW__": "airflowConfig",
    "AIRFLOW_CONN_": "connections",
    "AIRFLOW_VAR_": "variables",
    "AIRFLOW_METADATA_DB_": "database",
}
RESERVED_ENV_NAMES = {
    "AIRFLOW_HOME": "(fixed by the image)",
    "AIRFLOW_SELF_CHECK": "selfCheck",
    "AIRFLOW_SELF_CHECK_PASSWORD": "selfCheck",
    "AIRFLOW_ADMIN_PASSWORD": "auth",
    "CONNECTION_CHECK_MAX_COUNT": "(set where a process has no DB credentials)",
    "DUMB_INIT_SETSID": "(set on Celery workers for warm shutdown)",
    "FORWARDED_ALLOW_IPS": "ingress",
    "PYTHONPATH": "(fixed by the image)",
}


def reserved_env_reason(name: str) -> str | None:
    if name in RESERVED_ENV_NAMES:
        return RESERVED_ENV_NAMES[name]
    for prefix, key in RESERVED_ENV_PREFIXES.items():
        if name.startswith(prefix):
            return key
    return None


class ExtraEnvVar(StrictModel):
    """An environment variable: a plain value (kept exactly: `$` is escaped for the kubelet) or
    a key of an existing Secret (secretKeyRef)."""

    name: EnvName = Field(description="Variable name.")
    value: str | None = Field(default=None, description="Plain value.")
    secret: SecretKeyRef | None = Field(default=None, description="Value from a Secret key.")

    @model_validator(mode="after")
    def _one_source(self) -> ExtraEnvVar:
        if (self.value is None) == (self.secret is None):
            raise ValueError(f"{self.name}: give exactly one of `value` or `secret`")
        reason = reserved_env_reason(self.name)
        if reason is not None:
            raise ValueError(f"{self.name}: set by this component; use {reason}")
        return self


class EnvFromSource(StrictModel):
    """Every key of an existing Secret or ConfigMap as environment variables (`envFrom`)."""

    secret: DnsSubdomain | None = Field(default=None, description="Existing Secret's name.")
    config_map: DnsSubdomain | None = Field(default=None, description="Existing ConfigMap's name.")
    prefix: EnvName | None = Field(default=None, description="Prefix for every variable name.")

    @model_validator(mode="after")
    def _one_source(self) -> EnvFromSource:
        if (self.secret is None) == (self.config_map is None):
            raise ValueError("give exactly one of `secret` or `configMap`")
        return self


class Toleration(StrictModel):
    """A Kubernetes toleration."""

    key: LabelKey | None = Field(default=None, description="Taint key (unset: every key).")
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="Match operator.")
    value: LabelValue | None = Field(default=None, description="Taint value (with Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect (unset: every effect)."
    )
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="With NoExecute: how long the pod stays bound."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty with operator Exists")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without key needs operator Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies to effect NoExecute only")
        return self


ContainerPath = Annotated[
    str,
    StringConstraints(max_length=1024),
    _matching(r"^/[A-Za-z0-9._/-]*$", "an absolute path (letters, digits, . _ / -)"),
]
# Paths the component mounts in Airflow containers (a test holds the renderings to it): a team's
# mount must be neither one of them, inside one, nor above one (it would shadow it).
RESERVED_MOUNT_PATHS = (
    "/opt/airflow/airflow.cfg",
    "/opt/airflow/dags",
    "/opt/airflow/logs",
    "/opt/airflow/pod_templates",
    "/opt/airflow/pools",
    "/opt/airflow/secrets",
    "/opt/airflow/self-check",
    "/opt/airflow/simple-auth",
    "/opt/airflow/auth-config",
    "/tmp",
)


class SecretVolumeSource(StrictModel):
    secret_name: DnsSubdomain = Field(description="An existing Secret.")


class ConfigMapVolumeSource(StrictModel):
    name: DnsSubdomain = Field(description="An existing ConfigMap.")


class EmptyDirVolumeSource(StrictModel):
    size_limit: StorageSize = Field(default="1Gi", description="sizeLimit of the emptyDir.")


class ClaimVolumeSource(StrictModel):
    claim_name: DnsSubdomain = Field(description="An existing PersistentVolumeClaim.")
    read_only: bool = Field(default=True, description="Mount the claim read-only.")


class ExtraVolume(StrictModel):
    """A volume for extra mounts: only kinds Pod Security "restricted" allows (no hostPath)."""

    name: DnsLabel = Field(description="Volume name (must not be one of the component's).")
    secret: SecretVolumeSource | None = Field(default=None, description="From a Secret.")
    config_map: ConfigMapVolumeSource | None = Field(default=None, description="From a ConfigMap.")
    empty_dir: EmptyDirVolumeSource | None = Field(default=None, description="Scratch space.")
    persistent_volume_claim: ClaimVolumeSource | None = Field(
        default=None, description="An existing claim."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ExtraVolume:
        sources = [
            self.secret,
            self.config_map,
            self.empty_dir,
            self.persistent_volume_claim,
        ]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                f"{self.name}: give exactly one of secret, configMap, emptyDir, "
                "persistentVolumeClaim"
            )
        return self


class ExtraVolumeMount(StrictModel):
    """Where an extra volume appears in the process's main container."""

    name: DnsLabel = Field(description="An `extraVolumes` name.")
    mount_path: ContainerPath = Field(description="Absolute path in the container.")
    read_only: bool = Field(default=True, description="Mount read-only.")
    sub_path: Annotated[str, _matching(r"^[A-Za-z0-9._-][A-Za-z0-9._/-]*$", "a relative path")] | (
        None
    ) = Field(default=None, description="A file or directory inside the volume.")

    @model_validator(mode="after")
    def _not_ours(self) -> ExtraVolumeMount:
        path = self.mount_path.rstrip("/")
        for reserved in RESERVED_MOUNT_PATHS:
            inside = path == reserved or path.startswith(reserved + "/")
            if inside or path == "" or reserved.startswith(path + "/"):
                raise ValueError(
                    f"{self.mount_path}: would shadow {reserved}, which the component mounts"
                )
        if ".." in self.mount_path.split("/") or ".." in (self.sub_path or "").split("/"):
            raise ValueError(f"{self.mount_path}: '..' is not allowed")
        return self


def _check_set_operator(key: str, operator: str, values: list[str]) -> None:
    """The rule node and pod label requirements share (the API server's own): a set operator
    takes values, an existence operator none."""
    if operator in ("Exists", "DoesNotExist") and values:
        raise ValueError(f"{key}: {operator} takes no values")
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"{key}: {operator} needs values")


class NodeSelectorRequirement(StrictModel):
    """A node label requirement."""

    key: LabelKey = Field(description="Node label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"] = Field(
        description="How the label is matched."
    )
    values: list[LabelValue] = Field(default_factory=list, description="Values to match.")

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        _check_set_operator(self.key, self.operator, self.values)
        if self.operator in ("Gt", "Lt") and (
            len(self.values) != 1 or not self.values[0].lstrip("-").isdigit()
        ):
            raise ValueError(f"{self.key}: {self.operator} needs exactly one integer value")
        return self


class NodeSelectorTerm(StrictModel):
    match_expressions: list[NodeSelectorRequirement] = Field(
        min_length=1, description="All must hold."
    )


class PreferredNodeTerm(StrictModel):
    weight: int = Field(ge=1, le=100, description="Preference weight (1-100).")
    preference: NodeSelectorTerm = Field(description="The preferred node labels.")


class NodeAffinity(StrictModel):
    """Which nodes the pods may (required) or would rather (preferred) run on."""

    required: list[NodeSelectorTerm] = Field(
        default_factory=list, description="Any one term must hold (scheduling requirement)."
    )
    preferred: list[PreferredNodeTerm] = Field(
        default_factory=list, description="Weighted preferences."
    )


class LabelSelectorRequirement(StrictModel):
    """A pod label requirement."""

    key: LabelKey = Field(description="Pod label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the label is matched."
    )
    values: list[LabelValue] = Field(default_factory=list, description="Values to match.")

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        _check_set_operator(self.key, self.operator, self.values)
        return self


class PodSelector(StrictModel):
    """Which pods a term is about (all of the given labels and expressions must hold)."""

    match_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels the pods carry."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Label requirements."
    )

    @model_validator(mode="after")
    def _selects_something(self) -> PodSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError(
                "an empty selector matches every pod; give matchLabels or matchExpressions, or "
                "leave labelSelector out to mean this process's own pods"
            )
        return self


class PodAffinityTerm(StrictModel):
    """Pods (by default this process's own) that must or should share, or not share, a topology
    domain (a node, a zone) with these pods."""

    topology_key: LabelKey = Field(
        description="Node label defining the domain, e.g. kubernetes.io/hostname."
    )
    label_selector: PodSelector | None = Field(
        default=None, description="The other pods; unset: this process's own pods."
    )
    namespaces: list[DnsLabel] = Field(
        default_factory=list,
        description="Namespaces of the other pods; unset: the release's namespace.",
    )

    @model_validator(mode="after")
    def _own_pods_are_here(self) -> PodAffinityTerm:
        if self.label_selector is None and self.namespaces:
            raise ValueError(
                "namespaces without labelSelector: this process's own pods are in the release's "
                "namespace"
            )
        return self


class WeightedPodAffinityTerm(StrictModel):
    weight: int = Field(ge=1, le=100, description="Preference weight (1-100).")
    pod_affinity_term: PodAffinityTerm = Field(description="The preferred placement.")


class PodAffinity(StrictModel):
    """Pod (anti-)affinity: required terms all hold at scheduling; preferred ones are weighed."""

    required: list[PodAffinityTerm] = Field(
        default_factory=list, description="Every term must hold (scheduling requirement)."
    )
    preferred: list[WeightedPodAffinityTerm] = Field(
        default_factory=list, description="Weighted preferences."
    )


class TopologySpread(StrictModel):
    """Spread a process's pods over a topology (zones, nodes); the selector is the process's own
    pods."""

    topology_key: LabelKey = Field(description="Node label, e.g. topology.kubernetes.io/zone.")
    max_skew: int = Field(default=1, ge=1, description="Largest allowed difference.")
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        default="ScheduleAnyway", description="Block scheduling or only prefer."
    )


class PodCustomization(StrictModel):
    """Options, env and placement; on a process block it overrides the top level."""

    airflow_config: AirflowOptions = Field(
        default_factory=dict,
        description=(
            "Airflow options as {section: {option: value}}, checked against the pinned Airflow's "
            "catalog (core and installed providers); a value may be {secret: {name, key}}. "
            "Options this component manages are refused with the key that controls them."
        ),
    )
    extra_env: list[ExtraEnvVar] = Field(
        default_factory=list, description="Extra environment variables ([{name, value|secret}])."
    )
    extra_env_from: list[EnvFromSource] = Field(
        default_factory=list,
        description=(
            "Whole existing Secrets or ConfigMaps as environment variables in the Airflow "
            "containers (their keys are not known at preview: the component's own variables win "
            "over theirs, as Kubernetes ranks `env` above `envFrom`)."
        ),
    )
    node_selector: dict[LabelKey, LabelValue] | None = Field(
        default=None, description="Node labels the pods must run on."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Taints the pods tolerate."
    )
    priority_class_name: DnsSubdomain | None = Field(
        default=None, description="PriorityClass of the pods."
    )
    pod_annotations: dict[LabelKey, str] | None = Field(
        default=None,
        description=(
            "Annotations on the pods (service mesh, secret injectors); the component's own "
            "(`checksum/*`, Prometheus scrape) win."
        ),
    )
    pod_labels: dict[LabelKey, LabelValue] | None = Field(
        default=None,
        description="Labels on the pods; `app.kubernetes.io/*` and `airflow-k8s/*` are ours.",
    )
    node_affinity: NodeAffinity | None = Field(
        default=None, description="Node affinity of the pods (required and preferred terms)."
    )
    pod_affinity: PodAffinity | None = Field(
        default=None,
        description="Run near other pods (a term without labelSelector: this process's own).",
    )
    pod_anti_affinity: PodAffinity | None = Field(
        default=None,
        description=(
            "Keep apart from other pods; e.g. a required term on kubernetes.io/hostname without "
            "labelSelector puts each replica of a process on its own node."
        ),
    )
    topology_spread: list[TopologySpread] | None = Field(
        default=None,
        description=(
            "Spread constraints for the long-running processes' pods; one on "
            "kubernetes.io/hostname replaces the component's own node spreading."
        ),
    )
    extra_volumes: list[ExtraVolume] = Field(
        default_factory=list,
        description="Volumes added to the Airflow pods (Secret, ConfigMap, emptyDir, claim).",
    )
    extra_volume_mounts: list[ExtraVolumeMount] = Field(
        default_factory=list,
        description="Mounts of `extraVolumes` in the Airflow containers (a CA bundle, plugins).",
    )

    @model_validator(mode="after")
    def _mounts_name_volumes(self) -> PodCustomization:
        names = [volume.name for volume in self.extra_volumes]
        if len(set(names)) != len(names):
            raise ValueError(f"extraVolumes: a name is used twice in {names}")
        for name in names:
            if name in RESERVED_VOLUME_NAMES:
                raise ValueError(f"extraVolumes: {name!r} is a volume of the component's")
        return self

    @field_validator("pod_labels")
    @classmethod
    def _not_our_labels(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if key.startswith(RESERVED_LABEL_PREFIXES):
                raise ValueError(
                    f"{key}: selectors and NetworkPolicies use this label; choose another key"
                )
        return value

    @field_validator("pod_annotations")
    @classmethod
    def _not_our_annotations(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key, text in (value or {}).items():
            if key.startswith(RESERVED_ANNOTATION_PREFIXES):
                raise ValueError(f"{key}: the component sets it to roll pods; choose another key")
            if "\x00" in text:
                raise ValueError(f"{key}: NUL characters cannot reach a pod")
        return value

    @field_validator("airflow_config")
    @classmethod
    def _known_options(cls, value: AirflowOptions) -> AirflowOptions:
        return validate_options(value)

    @field_validator("extra_env")
    @classmethod
    def _unique_names(cls, value: list[ExtraEnvVar]) -> list[ExtraEnvVar]:
        seen: set[str] = set()
        for item in value:
            if item.name in seen:
                raise ValueError(f"{item.name}: set twice")
            seen.add(item.name)
        return value


class ExtraContainerPort(StrictModel):
    container_port: int = Field(ge=1, le=65535, description="Port number.")
    name: DnsLabel | None = Field(default=None, description="Port name (at most 15 characters).")
    protocol: Literal["TCP", "UDP"] = Field(default="TCP", description="Protocol.")


class ExtraContainer(StrictModel):
    """A container added to a process's pods: a sidecar (`extraContainers`) or a step before the
    process starts (`extraInitContainers`). It runs under the pod's restricted security context
    (non-root, no capabilities, read-only root); its command and args reach it exactly as written
    (`$` is escaped for the kubelet)."""

    name: DnsLabel = Field(description="Container name (not one of the component's).")
    image: NonEmpty = Field(description="Image reference.")
    command: list[str] | None = Field(default=None, description="Entrypoint override.")
    args: list[str] | None = Field(default=None, description="Arguments.")
    env: list[ExtraEnvVar] = Field(default_factory=list, description="Environment.")
    resources: Resources = Field(description="Requests and limits (required, like ours).")
    volume_mounts: list[ExtraVolumeMount] = Field(
        default_factory=list, description="Mounts of `extraVolumes`."
    )
    ports: list[ExtraContainerPort] = Field(default_factory=list, description="Ports.")

    @field_validator("name")
    @classmethod
    def _not_ours(cls, value: str) -> str:
        if value in RESERVED_CONTAINER_NAMES:
            raise ValueError(f"{value!r} is a container of the component's")
        return value

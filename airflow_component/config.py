"""The typed deployment config: one pydantic model tree, validated before any resource exists.

Stack files use camelCase keys (the Pulumi convention); Python callers may use either form.
The JSON Schema and the README's config reference are generated from these models.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .cron import validate_cron
from .versions import AIRFLOW_IMAGE_REPOSITORY, AIRFLOW_VERSION, POSTGRES_IMAGE

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource.Quantity, as the API server parses it.
QUANTITY = r"^[+]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$"
# Label keys: optional DNS-1123 subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


DnsLabel = Annotated[
    str,
    StringConstraints(max_length=63),
    _matching(DNS1123_LABEL, "a DNS-1123 label (lower-case letters, digits and '-')"),
]
DnsSubdomain = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
]
Quantity = Annotated[str, _matching(QUANTITY, "a Kubernetes quantity (e.g. 500m, 1, 512Mi, 20Gi)")]


def _positive_size(value: str) -> str:
    if quantity_value(value) <= 0:
        raise ValueError(f"size {value!r} must be greater than zero")
    return value


StorageSize = Annotated[
    str,
    _matching(QUANTITY, "a Kubernetes quantity (e.g. 1Gi, 20Gi)"),
    AfterValidator(_positive_size),
]
Hostname = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]

Environment = Literal["local", "staging", "prod"]
ExecutorName = Literal["LocalExecutor", "CeleryExecutor", "KubernetesExecutor"]
IMPLEMENTED_EXECUTORS: frozenset[str] = frozenset(
    {"LocalExecutor", "CeleryExecutor", "KubernetesExecutor"}
)
GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.4.2"
REDIS_IMAGE = "redis:7.4.6"
STATSD_EXPORTER_IMAGE = "prom/statsd-exporter:v0.28.0"
# CloudNativePG's PgBouncer image: maintained, non-root, plain pgbouncer binary.
PGBOUNCER_IMAGE = "ghcr.io/cloudnative-pg/pgbouncer:1.24.1"


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, camelCase keys in stack files."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )


class SecretKeyRef(StrictModel):
    """A key in an existing Kubernetes Secret in the deployment's namespace."""

    name: DnsSubdomain = Field(description="Name of the existing Secret.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key inside the Secret's data."
    )


class ComputeResources(StrictModel):
    """CPU and memory for one side (requests or limits) of a container."""

    cpu: Quantity = Field(description="CPU quantity, e.g. `250m` or `1`.")
    memory: Quantity = Field(description="Memory quantity, e.g. `512Mi`.")


_FACTORS: dict[str, int | str] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": "1e-9", "u": "1e-6", "m": "1e-3", "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_SUFFIXES = {suffix: Decimal(factor) for suffix, factor in _FACTORS.items()}


def quantity_value(quantity: str) -> Decimal:
    """The number a Kubernetes quantity stands for (for comparisons only)."""
    match = re.match(r"^\+?([0-9.]+)([eE][-+]?\d+|[A-Za-z]*)$", quantity)
    if not match:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    if suffix[:1] in {"e", "E"} and suffix[1:].lstrip("+-").isdigit():
        return Decimal(number) * Decimal(10) ** int(suffix[1:])
    return Decimal(number) * _SUFFIXES[suffix]


class Resources(StrictModel):
    """Container resource requests and limits."""

    requests: ComputeResources = Field(description="Guaranteed resources (scheduling).")
    limits: ComputeResources = Field(description="Hard ceiling; memory over it is OOM-killed.")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for resource in ("cpu", "memory"):
            request = getattr(self.requests, resource)
            limit = getattr(self.limits, resource)
            if quantity_value(request) > quantity_value(limit):
                raise ValueError(
                    f"requests.{resource} {request} is above limits.{resource} {limit}"
                )
        return self


def _resources(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> Resources:
    return Resources(
        requests=ComputeResources(cpu=cpu_req, memory=mem_req),
        limits=ComputeResources(cpu=cpu_lim, memory=mem_lim),
    )


# Per-environment defaults: small enough for a laptop kind cluster locally, headroom in prod.
DEFAULT_RESOURCES: dict[Environment, dict[str, Resources]] = {
    "local": {
        "apiServer": _resources("100m", "768Mi", "1", "1536Mi"),
        "scheduler": _resources("100m", "512Mi", "1", "1536Mi"),
        "dagProcessor": _resources("50m", "384Mi", "500m", "1Gi"),
        "triggerer": _resources("50m", "384Mi", "500m", "1Gi"),
        "job": _resources("50m", "384Mi", "1", "1Gi"),
        "postgres": _resources("50m", "128Mi", "500m", "512Mi"),
        "worker": _resources("100m", "512Mi", "1", "1536Mi"),
        "redis": _resources("25m", "32Mi", "250m", "128Mi"),
        "flower": _resources("25m", "256Mi", "250m", "512Mi"),
        "gitSync": _resources("10m", "32Mi", "200m", "128Mi"),
    },
    "staging": {
        "apiServer": _resources("250m", "1Gi", "1", "2Gi"),
        "scheduler": _resources("250m", "1Gi", "2", "2Gi"),
        "dagProcessor": _resources("100m", "512Mi", "1", "1536Mi"),
        "triggerer": _resources("100m", "512Mi", "1", "1Gi"),
        "job": _resources("100m", "512Mi", "1", "1Gi"),
        "postgres": _resources("250m", "512Mi", "1", "1Gi"),
        "worker": _resources("250m", "1Gi", "2", "2Gi"),
        "redis": _resources("50m", "64Mi", "500m", "256Mi"),
        "flower": _resources("50m", "256Mi", "500m", "512Mi"),
        "gitSync": _resources("25m", "64Mi", "250m", "256Mi"),
    },
    "prod": {
        "apiServer": _resources("500m", "1536Mi", "2", "3Gi"),
        "scheduler": _resources("1", "2Gi", "2", "4Gi"),
        "dagProcessor": _resources("250m", "1Gi", "1", "2Gi"),
        "triggerer": _resources("250m", "768Mi", "1", "1536Mi"),
        "job": _resources("100m", "512Mi", "1", "1Gi"),
        "postgres": _resources("500m", "1Gi", "2", "4Gi"),
        "worker": _resources("500m", "2Gi", "2", "4Gi"),
        "redis": _resources("100m", "128Mi", "1", "512Mi"),
        "flower": _resources("100m", "256Mi", "500m", "768Mi"),
        "gitSync": _resources("50m", "64Mi", "500m", "256Mi"),
    },
}


class NamespaceConfig(StrictModel):
    """The namespace everything is deployed into."""

    name: DnsLabel | None = Field(
        default=None, description="Namespace name; defaults to the component's name."
    )
    create: bool = Field(
        default=True, description="Create the namespace (false: it must already exist)."
    )
    labels: dict[
        Annotated[str, StringConstraints(pattern=LABEL_KEY)],
        Annotated[str, StringConstraints(pattern=LABEL_VALUE)],
    ] = Field(default_factory=dict, description="Extra labels on a created namespace.")
    pod_security: Literal["restricted", "baseline", "privileged"] = Field(
        default="restricted",
        description="Pod Security Admission level enforced on a created namespace.",
    )


class ImageConfig(StrictModel):
    """The Airflow image every Airflow process runs."""

    repository: NonEmpty = Field(
        default=AIRFLOW_IMAGE_REPOSITORY,
        description="Image repository; a custom image built FROM apache/airflow to bake DAGs in.",
    )
    tag: Annotated[str, StringConstraints(pattern=r"^[\w][\w.-]{0,127}$")] = Field(
        default=AIRFLOW_VERSION, description="Image tag. Must be an Airflow 3 image."
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="imagePullPolicy of every Airflow container."
    )
    pull_secrets: list[DnsSubdomain] = Field(
        default_factory=list, description="Names of existing image pull Secrets."
    )
    digest: Annotated[str, _matching(r"^sha256:[0-9a-f]{64}$", "a sha256 digest")] | None = Field(
        default=None, description="Pin the image by digest (`sha256:...`) as well as tag."
    )

    @field_validator("pull_secrets")
    @classmethod
    def _unique_pull_secrets(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate pull secret {', '.join(duplicates)}")
        return value

    @property
    def reference(self) -> str:
        pinned = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}:{self.tag}{pinned}"


class ProcessConfig(StrictModel):
    """Replicas and resources of one long-running Airflow process."""

    replicas: int = Field(default=1, ge=1, le=50, description="Number of pods.")
    resources: Resources | None = Field(
        default=None, description="Requests/limits; defaults depend on `environment`."
    )


class ServiceConfig(StrictModel):
    """How the api-server Service is exposed inside or outside the cluster."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="Service type (NodePort for kind)."
    )
    node_port: int | None = Field(
        default=None, ge=30000, le=32767, description="Fixed nodePort when type is NodePort."
    )

    @model_validator(mode="after")
    def _node_port_needs_node_port_type(self) -> ServiceConfig:
        if self.node_port is not None and self.type == "ClusterIP":
            raise ValueError("nodePort is set but type is ClusterIP (use NodePort or LoadBalancer)")
        return self


class ApiServerConfig(ProcessConfig):
    """The api-server: UI, REST API and the Execution API that task runners call."""

    service: ServiceConfig = Field(
        default_factory=ServiceConfig, description="The api-server Service."
    )
    workers: int = Field(default=1, ge=1, le=16, description="Uvicorn worker processes per pod.")


class PortSpec(StrictModel):
    """A destination port of an extra egress rule."""

    port: int = Field(ge=1, le=65535, description="Port number.")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(default="TCP", description="Protocol.")


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR (e.g. 10.0.0.0/16)") from None


Cidr = Annotated[str, AfterValidator(_cidr)]


class EgressRule(StrictModel):
    """Extra egress for Airflow pods (e.g. a data warehouse, an object store endpoint)."""

    cidrs: list[Cidr] = Field(min_length=1, description="Destination CIDRs.")
    ports: list[PortSpec] = Field(min_length=1, description="Destination ports.")


class NetworkPoliciesConfig(StrictModel):
    """NetworkPolicies: default deny, then only the traffic Airflow needs."""

    enabled: bool | None = Field(
        default=None, description="Create NetworkPolicies; default true outside local."
    )
    ingress_controller_namespace: DnsLabel = Field(
        default="ingress-nginx",
        description="Namespace of the ingress controller allowed to reach the api-server.",
    )
    kubernetes_api_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Where the Kubernetes API is, for pods that launch pods (ports 443/6443).",
    )
    dag_source_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        description="Where git-sync may connect (443 for https:// repos, 22 for SSH).",
    )
    extra_egress: list[EgressRule] = Field(
        default_factory=list, description="Extra egress for Airflow pods."
    )


class AvailabilityConfig(StrictModel):
    """Disruption budgets and spreading for processes with more than one replica."""

    pod_disruption_budgets: bool = Field(
        default=True, description="PodDisruptionBudgets (maxUnavailable 1) when replicas > 1."
    )
    spread_across_nodes: bool = Field(
        default=True, description="Topology spread across nodes when replicas > 1."
    )


class IngressConfig(StrictModel):
    """A networking.k8s.io/v1 Ingress in front of the api-server."""

    enabled: bool = Field(default=False, description="Create the Ingress.")
    class_name: DnsSubdomain | None = Field(default=None, description="ingressClassName.")
    host: Hostname | None = Field(default=None, description="Public host name.")
    path: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] = Field(
        default="/", description="Path prefix served by the api-server."
    )
    tls_secret_name: DnsSubdomain | None = Field(
        default=None, description="Existing TLS Secret for `host` (enables HTTPS)."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations for the ingress controller."
    )

    @model_validator(mode="after")
    def _tls_needs_host(self) -> IngressConfig:
        if self.tls_secret_name and not self.host:
            raise ValueError("tlsSecretName is set but host is empty: TLS needs a host")
        if self.enabled and not self.host:
            raise ValueError("an enabled ingress needs a host")
        return self


class PostgresStorage(StrictModel):
    """The Postgres data volume."""

    size: StorageSize = Field(default="8Gi", description="PersistentVolumeClaim size.")
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="StorageClass; the cluster default when unset."
    )
    ephemeral: bool = Field(
        default=False,
        description="Use an emptyDir instead of a claim (local only: data dies with the pod).",
    )


class InClusterPostgres(StrictModel):
    """Postgres run by this component as a StatefulSet on the official `postgres` image."""

    image: NonEmpty = Field(default=POSTGRES_IMAGE, description="Postgres image (official).")
    database: DnsLabel = Field(default="airflow", description="Database name.")
    user: DnsLabel = Field(default="airflow", description="Database user.")
    storage: PostgresStorage = Field(default_factory=PostgresStorage, description="Data volume.")
    resources: Resources | None = Field(
        default=None, description="Requests/limits; defaults depend on `environment`."
    )
    protect: bool | None = Field(
        default=None,
        description="Pulumi `protect` + `retainOnDelete` on Postgres; default true outside local.",
    )


class ExternalDatabase(StrictModel):
    """An existing PostgreSQL server (managed service or your own)."""

    host: Hostname = Field(description="Host name of the server.")
    port: int = Field(default=5432, ge=1, le=65535, description="TCP port.")
    database: NonEmpty = Field(default="airflow", description="Database name.")
    user: NonEmpty = Field(default="airflow", description="Database user.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="require", description="libpq sslmode."
    )
    password_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Existing Secret holding the password. Without it the password comes from the "
            "secret stack config `externalDatabasePassword`."
        ),
    )


class DatabaseConfig(StrictModel):
    """Airflow's metadata database: in-cluster Postgres or an external server."""

    mode: Literal["in-cluster", "external"] = Field(
        default="in-cluster", description="Which of `inCluster` / `external` is used."
    )
    in_cluster: InClusterPostgres = Field(
        default_factory=InClusterPostgres, description="Settings for `mode: in-cluster`."
    )
    external: ExternalDatabase | None = Field(
        default=None, description="Settings for `mode: external`."
    )

    @model_validator(mode="before")
    @classmethod
    def _external_needs_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") == "external":
            if data.get("external") is None:
                raise ValueError("mode is external but `external` (host, ...) is missing")
            if "inCluster" in data or "in_cluster" in data:
                raise ValueError("mode is external: remove the `inCluster` settings")
        return data


class AuthConfig(StrictModel):
    """Who can log in: Airflow's auth manager and the first admin user."""

    manager: Literal["simple", "fab"] = Field(
        default="simple",
        description="`simple` (SimpleAuthManager, for development) or `fab` (production).",
    )
    admin_username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")] = Field(
        default="admin", description="Admin user name."
    )
    admin_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] = Field(
        default="admin@example.com", description="Admin e-mail (FAB)."
    )
    admin_first_name: NonEmpty = Field(default="Airflow", description="Admin first name (FAB).")
    admin_last_name: NonEmpty = Field(default="Admin", description="Admin last name (FAB).")


class ExistingSecrets(StrictModel):
    """Take a secret from an existing Kubernetes Secret instead of generating it."""

    fernet_key: SecretKeyRef | None = Field(default=None, description="Fernet key.")
    jwt_secret: SecretKeyRef | None = Field(default=None, description="JWT signing secret.")
    api_secret_key: SecretKeyRef | None = Field(default=None, description="[api] secret_key.")
    admin_password: SecretKeyRef | None = Field(default=None, description="Admin password.")
    postgres_password: SecretKeyRef | None = Field(
        default=None, description="In-cluster Postgres password."
    )


class StorageConfig(StrictModel):
    """A data volume: a claim from a StorageClass, or an emptyDir."""

    size: StorageSize = Field(default="1Gi", description="PersistentVolumeClaim size.")
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="StorageClass; the cluster default when unset."
    )
    ephemeral: bool = Field(default=True, description="Use an emptyDir instead of a claim.")


class RedisConfig(StrictModel):
    """The Celery broker: Redis on the official image."""

    image: NonEmpty = Field(default=REDIS_IMAGE, description="Redis image (official).")
    resources: Resources | None = Field(default=None, description="Requests/limits.")
    storage: StorageConfig = Field(
        default_factory=StorageConfig,
        description="Broker data; ephemeral by default (queued messages are re-sent on loss).",
    )


class CeleryWorkersConfig(ProcessConfig):
    """Celery workers: a Deployment running `airflow celery worker`."""

    concurrency: int = Field(default=16, ge=1, le=512, description="Task slots per worker.")
    termination_grace_period_seconds: int = Field(
        default=600,
        ge=30,
        le=86400,
        description="Warm shutdown: running tasks get this long to finish on a rollout.",
    )


class FlowerConfig(StrictModel):
    """Flower, the Celery monitoring UI (basic auth with a generated password)."""

    enabled: bool = Field(default=False, description="Deploy Flower.")
    resources: Resources | None = Field(default=None, description="Requests/limits.")
    ingress_path: Annotated[str, StringConstraints(pattern=r"^/[^\s]+$")] | None = Field(
        default=None, description="Serve Flower under this path of the main ingress host."
    )


class CeleryConfig(StrictModel):
    """Settings of the CeleryExecutor (only with `CeleryExecutor` in `executors`)."""

    workers: CeleryWorkersConfig = Field(
        default_factory=CeleryWorkersConfig, description="Celery workers."
    )
    redis: RedisConfig = Field(default_factory=RedisConfig, description="Broker.")
    flower: FlowerConfig = Field(default_factory=FlowerConfig, description="Flower UI.")


class KubernetesExecutorConfig(StrictModel):
    """Settings of the KubernetesExecutor (only with `KubernetesExecutor` in `executors`)."""

    delete_worker_pods: bool = Field(
        default=True, description="Delete a task's pod when it succeeds."
    )
    delete_worker_pods_on_failure: bool = Field(
        default=False, description="Also delete failed pods (kept by default to debug)."
    )
    worker_resources: Resources | None = Field(
        default=None, description="Requests/limits of each task pod."
    )


class KubernetesPodOperatorConfig(StrictModel):
    """Let tasks launch pods themselves (KubernetesPodOperator)."""

    enabled: bool = Field(
        default=False,
        description="Grant the pod-launch Role to workers and the triggerer (deferrable mode).",
    )


class GitSyncConfig(StrictModel):
    """git-sync v4: a sidecar on every process that reads DAGs."""

    repo: Annotated[str, StringConstraints(pattern=r"^(https://|ssh://|git@|file://)\S+$")] = Field(
        description="Repository URL (https://..., ssh://... or git@host:org/repo.git)."
    )
    ref: NonEmpty = Field(default="HEAD", description="Branch, tag or commit to sync.")
    period: Annotated[str, StringConstraints(pattern=r"^\d+(ms|s|m|h)$")] = Field(
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
        number, unit = re.match(r"^(\d+)(ms|s|m|h)$", value).groups()  # type: ignore[union-attr]
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

    @model_validator(mode="after")
    def _defaults_for_delivery(self) -> DagsConfig:
        if self.delivery == "volume" and self.volume is None:
            object.__setattr__(self, "volume", DagVolumeConfig())
        if self.delivery == "hostPath" and self.host_path is None:
            object.__setattr__(self, "host_path", DagHostPathConfig())
        return self


Cron = Annotated[str, AfterValidator(validate_cron)]
AirflowIdentifier = Annotated[
    str, _matching(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$", "an Airflow id (letters, digits, _ . -)")
]
ConfigKeyName = Annotated[
    str, _matching(r"^[A-Za-z][A-Za-z0-9_]{0,127}$", "a stack config key name (e.g. warehouseUri)")
]


class DbCleanConfig(StrictModel):
    """`airflow db clean` on a schedule: keeps the metadata database small."""

    enabled: bool = Field(default=True, description="Run the CronJob.")
    schedule: Cron = Field(default="0 3 * * *", description="Cron schedule (UTC).")
    retention_days: int = Field(default=90, ge=1, le=3650, description="Keep this many days.")


class PodCleanupConfig(StrictModel):
    """Delete finished KubernetesExecutor pods (`airflow kubernetes cleanup-pods`)."""

    enabled: bool = Field(default=True, description="Run the CronJob (KubernetesExecutor only).")
    schedule: Cron = Field(default="*/15 * * * *", description="Cron schedule (UTC).")


class HousekeepingConfig(StrictModel):
    """Scheduled maintenance Jobs."""

    db_clean: DbCleanConfig = Field(default_factory=DbCleanConfig, description="DB cleanup.")
    cleanup_pods: PodCleanupConfig = Field(
        default_factory=PodCleanupConfig, description="Finished task pod cleanup."
    )


class MetricsConfig(StrictModel):
    """statsd metrics, exported to Prometheus by a statsd-exporter."""

    enabled: bool | None = Field(
        default=None,
        description="Deploy the exporter and send metrics; default true outside local.",
    )
    image: NonEmpty = Field(default=STATSD_EXPORTER_IMAGE, description="statsd-exporter image.")
    service_monitor: bool = Field(
        default=False,
        description="Also create a Prometheus Operator ServiceMonitor (needs its CRD).",
    )
    prometheus_namespace: DnsLabel = Field(
        default="monitoring", description="Namespace Prometheus scrapes from (NetworkPolicy)."
    )
    resources: Resources | None = Field(default=None, description="Requests/limits.")


class RemoteLoggingConfig(StrictModel):
    """Task logs in S3 or GCS."""

    base_folder: Annotated[
        str, _matching(r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,62}(/\S*)?$", "an s3:// or gs:// URL")
    ] = Field(description="Bucket and prefix, e.g. s3://company-airflow-logs/prod.")
    connection_id: AirflowIdentifier = Field(
        default="remote_logs", description="Airflow connection used to write logs."
    )
    connection_secret: SecretKeyRef | None = Field(
        default=None,
        description="Existing Secret holding the connection URI; unset: the pod's cloud identity.",
    )
    service_account_annotations: dict[str, str] = Field(
        default_factory=dict,
        description="Annotations for IRSA / Workload Identity on the Airflow ServiceAccounts.",
    )


class LogsVolumeConfig(StrictModel):
    """A ReadWriteMany claim shared by every process that writes or serves task logs."""

    size: StorageSize = Field(default="20Gi", description="Claim size.")
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="A StorageClass that supports ReadWriteMany."
    )


class LoggingConfig(StrictModel):
    """Where task logs live beyond the pod that wrote them."""

    remote: RemoteLoggingConfig | None = Field(default=None, description="S3/GCS logging.")
    volume: LogsVolumeConfig | None = Field(default=None, description="Shared logs claim.")

    @model_validator(mode="after")
    def _one_destination(self) -> LoggingConfig:
        if self.remote and self.volume:
            raise ValueError("choose `remote` or `volume` for task logs, not both")
        return self


class ConnectionConfig(StrictModel):
    """An Airflow connection (URI or JSON), delivered as `AIRFLOW_CONN_<ID>` from a Secret."""

    secret: SecretKeyRef | None = Field(default=None, description="Existing Secret with the URI.")
    from_config: ConfigKeyName | None = Field(
        default=None, description="Secret stack config key holding the URI (airflow-k8s:<key>)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ConnectionConfig:
        if (self.secret is None) == (self.from_config is None):
            raise ValueError("set exactly one of `secret` and `fromConfig`")
        return self


class VariableConfig(StrictModel):
    """An Airflow Variable, delivered as `AIRFLOW_VAR_<KEY>` from a Secret."""

    value: str | None = Field(default=None, description="Literal value (not for secrets).")
    secret: SecretKeyRef | None = Field(default=None, description="Existing Secret.")
    from_config: ConfigKeyName | None = Field(
        default=None, description="Secret stack config key (airflow-k8s:<key>)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> VariableConfig:
        sources = [s for s in (self.value, self.secret, self.from_config) if s is not None]
        if len(sources) != 1:
            raise ValueError("set exactly one of `value`, `secret` and `fromConfig`")
        return self


class PoolConfig(StrictModel):
    """An Airflow pool, applied by a Job that re-runs when pools change."""

    slots: int = Field(ge=0, le=100000, description="Slots.")
    description: str = Field(default="", description="Description shown in the UI.")
    include_deferred: bool = Field(default=False, description="Count deferred tasks.")


class FernetConfig(StrictModel):
    """Fernet key rotation (see the README's procedure)."""

    generation: int = Field(
        default=1, ge=1, description="Bump to generate a new key (the old one must be listed)."
    )
    previous_keys: list[SecretKeyRef] = Field(
        default_factory=list,
        description="Old keys still accepted for decryption; a Job re-encrypts with the new one.",
    )


class PgBouncerConfig(StrictModel):
    """PgBouncer between Airflow and in-cluster Postgres."""

    enabled: bool | None = Field(
        default=None, description="Deploy PgBouncer; default true in prod with in-cluster Postgres."
    )
    image: NonEmpty = Field(default=PGBOUNCER_IMAGE, description="PgBouncer image.")
    max_client_connections: int = Field(
        default=1000, ge=10, le=100000, description="max_client_conn."
    )
    resources: Resources | None = Field(default=None, description="Requests/limits.")


class ReplicaBounds(StrictModel):
    """Common to autoscalers: on/off and a replica range."""

    enabled: bool = Field(default=False, description="Create the autoscaler.")
    min_replicas: int = Field(default=1, ge=0, le=1000, description="Lower bound.")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Upper bound.")

    @model_validator(mode="after")
    def _bounds(self) -> ReplicaBounds:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas is above maxReplicas")
        return self


class ApiServerAutoscaling(ReplicaBounds):
    """HorizontalPodAutoscaler for the api-server."""

    min_replicas: int = Field(default=2, ge=1, le=100, description="Lower bound.")
    max_replicas: int = Field(default=6, ge=1, le=100, description="Upper bound.")
    target_cpu_percent: int = Field(default=70, ge=10, le=100, description="CPU target.")


class WorkerAutoscaling(ReplicaBounds):
    """KEDA ScaledObject for Celery workers (needs KEDA installed)."""


class AutoscalingConfig(StrictModel):
    """Autoscaling of the api-server (HPA) and Celery workers (KEDA)."""

    api_server: ApiServerAutoscaling = Field(
        default_factory=ApiServerAutoscaling, description="api-server HPA."
    )
    celery_workers: WorkerAutoscaling = Field(
        default_factory=WorkerAutoscaling, description="Celery worker KEDA ScaledObject."
    )


class BackupsConfig(StrictModel):
    """pg_dump of in-cluster Postgres on a schedule, into a volume claim."""

    enabled: bool | None = Field(
        default=None, description="Run backups; default true for in-cluster Postgres outside local."
    )
    schedule: Cron = Field(default="0 2 * * *", description="Cron schedule (UTC).")
    keep: int = Field(default=7, ge=1, le=365, description="Dumps kept.")
    size: StorageSize = Field(default="20Gi", description="Backup claim size.")
    storage_class_name: DnsSubdomain | None = Field(default=None, description="StorageClass.")


class MigrationsConfig(StrictModel):
    """The schema migration Job and the wait in every Airflow pod."""

    wait_timeout_seconds: int = Field(
        default=600, ge=30, le=86400, description="How long pods wait for migrations."
    )


class AirflowConfig(StrictModel):
    """A complete Airflow 3 deployment."""

    environment: Environment = Field(
        default="local", description="Picks safe defaults: protection, resources, policies."
    )
    namespace: NamespaceConfig = Field(default_factory=NamespaceConfig, description="Namespace.")
    image: ImageConfig = Field(default_factory=ImageConfig, description="Airflow image.")
    executors: Annotated[
        list[ExecutorName],
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "array",
                        "items": {"enum": list(get_args(ExecutorName))},
                        "minItems": 1,
                    },
                    {"type": "string", "pattern": r"^\w+(\s*,\s*\w+)*$"},
                ]
            }
        ),
    ] = Field(
        default_factory=lambda: list[ExecutorName](["LocalExecutor"]),
        min_length=1,
        description="Executors; the first is the default. A comma-separated string is accepted.",
    )
    celery: CeleryConfig | None = Field(
        default=None, description="CeleryExecutor settings (defaults apply when enabled)."
    )
    kubernetes_executor: KubernetesExecutorConfig | None = Field(
        default=None, description="KubernetesExecutor settings (defaults apply when enabled)."
    )
    kubernetes_pod_operator: KubernetesPodOperatorConfig = Field(
        default_factory=KubernetesPodOperatorConfig, description="KubernetesPodOperator RBAC."
    )
    dags: DagsConfig = Field(default_factory=DagsConfig, description="DAG delivery.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Auth manager and admin.")
    existing_secrets: ExistingSecrets = Field(
        default_factory=ExistingSecrets, description="Secrets managed outside this component."
    )
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="Metadata DB.")
    migrations: MigrationsConfig = Field(
        default_factory=MigrationsConfig, description="Schema migrations."
    )
    api_server: ApiServerConfig = Field(default_factory=ApiServerConfig, description="api-server.")
    scheduler: ProcessConfig = Field(default_factory=ProcessConfig, description="Scheduler.")
    dag_processor: ProcessConfig = Field(
        default_factory=ProcessConfig, description="DAG processor."
    )
    triggerer: ProcessConfig = Field(default_factory=ProcessConfig, description="Triggerer.")
    job_resources: Resources | None = Field(
        default=None, description="Requests/limits of Jobs and init containers."
    )
    ingress: IngressConfig = Field(default_factory=IngressConfig, description="Ingress.")
    network_policies: NetworkPoliciesConfig = Field(
        default_factory=NetworkPoliciesConfig, description="NetworkPolicies."
    )
    parallelism: int = Field(
        default=32, ge=1, le=10000, description="[core] parallelism: task slots per scheduler."
    )
    housekeeping: HousekeepingConfig = Field(
        default_factory=HousekeepingConfig, description="Scheduled maintenance."
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Metrics.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Task logs.")
    connections: dict[AirflowIdentifier, ConnectionConfig] = Field(
        default_factory=dict, description="Airflow connections by id."
    )
    variables: dict[AirflowIdentifier, VariableConfig] = Field(
        default_factory=dict, description="Airflow Variables by key."
    )
    pools: dict[AirflowIdentifier, PoolConfig] = Field(
        default_factory=dict, description="Airflow pools by name."
    )
    fernet: FernetConfig = Field(default_factory=FernetConfig, description="Fernet rotation.")
    pgbouncer: PgBouncerConfig = Field(default_factory=PgBouncerConfig, description="PgBouncer.")
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Autoscaling."
    )
    backups: BackupsConfig = Field(default_factory=BackupsConfig, description="Postgres backups.")
    availability: AvailabilityConfig = Field(
        default_factory=AvailabilityConfig, description="PDBs and topology spread."
    )
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")] | None = (
        Field(
            default=None,
            description="Public URL of the UI; derived from the ingress or NodePort when unset.",
        )
    )

    @field_validator("executors", mode="before")
    @classmethod
    def _split_executor_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("executors")
    @classmethod
    def _executors_unique_and_implemented(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"duplicate executor in {value}")
        missing = [name for name in value if name not in IMPLEMENTED_EXECUTORS]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} is not supported by this release yet "
                f"(supported: {', '.join(sorted(IMPLEMENTED_EXECUTORS))})"
            )
        return value

    @model_validator(mode="after")
    def _executor_settings_match_executors(self) -> AirflowConfig:
        for executor, field, key in (
            ("CeleryExecutor", "celery", "celery"),
            ("KubernetesExecutor", "kubernetes_executor", "kubernetesExecutor"),
        ):
            enabled = executor in self.executors
            if getattr(self, field) is not None and not enabled:
                raise ValueError(f"`{key}` is set but {executor} is not in `executors`")
        if self.dags.delivery == "hostPath" and self.environment != "local":
            raise ValueError("dags.delivery hostPath is only allowed in the local environment")
        return self

    @model_validator(mode="after")
    def _fill_environment_defaults(self) -> AirflowConfig:
        defaults = DEFAULT_RESOURCES[self.environment]
        updates: dict[str, Any] = {}
        if "CeleryExecutor" in self.executors:
            celery = self.celery or CeleryConfig()
            workers = celery.workers
            updates["celery"] = celery.model_copy(
                update={
                    "workers": workers.model_copy(
                        update={"resources": workers.resources or defaults["worker"]}
                    ),
                    "redis": celery.redis.model_copy(
                        update={"resources": celery.redis.resources or defaults["redis"]}
                    ),
                    "flower": celery.flower.model_copy(
                        update={"resources": celery.flower.resources or defaults["flower"]}
                    ),
                }
            )
        if "KubernetesExecutor" in self.executors:
            k8s_executor = self.kubernetes_executor or KubernetesExecutorConfig()
            updates["kubernetes_executor"] = k8s_executor.model_copy(
                update={"worker_resources": k8s_executor.worker_resources or defaults["worker"]}
            )
        in_cluster = self.database.mode == "in-cluster"
        if self.metrics.enabled is None or self.metrics.resources is None:
            updates["metrics"] = self.metrics.model_copy(
                update={
                    "enabled": self.environment != "local"
                    if self.metrics.enabled is None
                    else self.metrics.enabled,
                    "resources": self.metrics.resources or defaults["redis"],
                }
            )
        if self.pgbouncer.enabled is None or self.pgbouncer.resources is None:
            updates["pgbouncer"] = self.pgbouncer.model_copy(
                update={
                    "enabled": (self.environment == "prod" and in_cluster)
                    if self.pgbouncer.enabled is None
                    else self.pgbouncer.enabled,
                    "resources": self.pgbouncer.resources or defaults["redis"],
                }
            )
        if self.backups.enabled is None:
            updates["backups"] = self.backups.model_copy(
                update={"enabled": in_cluster and self.environment != "local"}
            )
        if self.network_policies.enabled is None:
            updates["network_policies"] = self.network_policies.model_copy(
                update={"enabled": self.environment != "local"}
            )
        git_sync = self.dags.git_sync
        if git_sync is not None and git_sync.resources is None:
            updates["dags"] = self.dags.model_copy(
                update={"git_sync": git_sync.model_copy(update={"resources": defaults["gitSync"]})}
            )
        for field in ("api_server", "scheduler", "dag_processor", "triggerer"):
            process: ProcessConfig = getattr(self, field)
            if process.resources is None:
                updates[field] = process.model_copy(update={"resources": defaults[to_camel(field)]})
        if self.job_resources is None:
            updates["job_resources"] = defaults["job"]
        postgres = self.database.in_cluster
        if postgres.resources is None or postgres.protect is None:
            postgres = postgres.model_copy(
                update={
                    "resources": postgres.resources or defaults["postgres"],
                    "protect": self.environment != "local"
                    if postgres.protect is None
                    else postgres.protect,
                }
            )
            updates["database"] = self.database.model_copy(update={"in_cluster": postgres})
        if updates:
            # Bypass __setattr__ on the frozen model: this runs once, inside validation.
            for key, value in updates.items():
                object.__setattr__(self, key, value)
        if self.pgbouncer.enabled and self.database.mode != "in-cluster":
            raise ValueError(
                "pgbouncer is for in-cluster Postgres (put it next to an external one)"
            )
        if self.pgbouncer.enabled and self.existing_secrets.postgres_password:
            raise ValueError(
                "pgbouncer needs the generated Postgres password (existingSecrets.postgresPassword)"
            )
        if self.backups.enabled and self.database.mode != "in-cluster":
            raise ValueError("backups are for in-cluster Postgres; back up an external one there")
        if self.autoscaling.celery_workers.enabled and self.celery is None:
            raise ValueError("autoscaling.celeryWorkers needs CeleryExecutor in `executors`")
        if self.database.mode == "external" and self.existing_secrets.postgres_password:
            raise ValueError(
                "existingSecrets.postgresPassword is for in-cluster Postgres; with an external "
                "database use database.external.passwordSecret"
            )
        if self.auth.manager == "simple" and self.existing_secrets.admin_password is not None:
            raise ValueError(
                "existingSecrets.adminPassword needs auth.manager fab: SimpleAuthManager reads "
                "a passwords file this component renders from a generated password"
            )
        if self.environment != "local" and self.database.in_cluster.storage.ephemeral:
            raise ValueError(
                "database.inCluster.storage.ephemeral is only allowed in the local environment"
            )
        return self

    @property
    def executor_setting(self) -> str:
        return ",".join(self.executors)


CONFIG_NAMESPACE = "airflow-k8s"
CONFIG_KEY = "cluster"


def _format_location(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def describe_validation_error(error: ValidationError, prefix: str) -> str:
    """One line per problem, each starting with the full config key path."""
    lines = []
    for problem in error.errors():
        location = _format_location(tuple(problem["loc"]))
        key = f"{prefix}.{location}" if location else prefix
        message = re.sub(r"^Value error, ", "", problem["msg"])
        lines.append(f"{key}: {message}")
    return "\n".join(lines)


def parse_config(raw: Any, prefix: str = f"{CONFIG_NAMESPACE}:{CONFIG_KEY}") -> AirflowConfig:
    """Validate a raw stack-config object, raising `pulumi.RunError` that names every bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise pulumi.RunError(f"{prefix}: expected an object, got {type(raw).__name__}")
    try:
        return AirflowConfig.model_validate(raw)
    except ValidationError as error:
        raise pulumi.RunError(describe_validation_error(error, prefix)) from None

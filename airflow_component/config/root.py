"""The whole deployment: `AirflowConfig`, and `parse_config` for stack files."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

import pulumi
from pydantic import (
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ..versions import AIRFLOW_IMAGE_REPOSITORY, AIRFLOW_VERSION
from .airflow_options import api_server_option_problem, merged
from .dags import (
    DagsConfig,
)
from .database import (
    BackupsConfig,
    DatabaseConfig,
    MigrationsConfig,
    PgBouncerConfig,
    UpgradeConfig,
)
from .extensions import PodCustomization
from .network import (
    AvailabilityConfig,
    IngressConfig,
    NetworkPoliciesConfig,
)
from .operations import (
    AutoscalingConfig,
    ConnectionConfig,
    HousekeepingConfig,
    LoggingConfig,
    MetricsConfig,
    PoolConfig,
    SelfCheckConfig,
    VariableConfig,
)
from .processes import (
    DEFAULT_QUEUE,
    ApiServerConfig,
    CeleryConfig,
    KubernetesExecutorConfig,
    KubernetesPodOperatorConfig,
    ProcessConfig,
)
from .security import (
    AuthConfig,
    ExistingSecrets,
    FernetConfig,
)
from .sizing import API_WORKER, CELERY_SLOT, LOCAL_SLOT, SlotCost, too_small
from .types import (
    IMPLEMENTED_EXECUTORS,
    LABEL_KEY,
    LABEL_VALUE,
    AirflowIdentifier,
    DnsLabel,
    DnsSubdomain,
    Environment,
    ExecutorName,
    NonEmpty,
    Resources,
    StrictModel,
    _matching,
)

# Namespaces the control plane owns: a default-deny policy or Pod Security labels there would
# cut off or change what the cluster itself runs.
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


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

    @model_validator(mode="after")
    def _not_a_system_namespace(self) -> NamespaceConfig:
        if self.name in SYSTEM_NAMESPACES:
            raise ValueError(
                f"name {self.name!r} is a Kubernetes system namespace; deploy Airflow into its own"
            )
        if self.name == "default" and self.create:
            raise ValueError("name 'default' always exists and is shared: set create: false")
        return self


# The official image, as Docker Hub names it with or without the registry.
OFFICIAL_AIRFLOW_IMAGES = frozenset(
    {
        AIRFLOW_IMAGE_REPOSITORY,
        f"docker.io/{AIRFLOW_IMAGE_REPOSITORY}",
        f"registry.hub.docker.com/{AIRFLOW_IMAGE_REPOSITORY}",
    }
)


class ImageConfig(StrictModel):
    """The Airflow image every Airflow process runs."""

    repository: NonEmpty = Field(
        default=AIRFLOW_IMAGE_REPOSITORY,
        description="Image repository; a custom image built FROM apache/airflow to bake DAGs in.",
    )
    tag: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] = Field(
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


class AirflowConfig(PodCustomization):
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
    self_check: SelfCheckConfig = Field(
        default_factory=SelfCheckConfig, description="The in-cluster self-check Job."
    )
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
    upgrade: UpgradeConfig = Field(
        default_factory=UpgradeConfig, description="The snapshot taken before each migration."
    )
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

    def _check_downgrade(self) -> None:
        upgrade, tag = self.upgrade, self.image.tag
        if upgrade.downgrade_from is not None and not upgrade.allow_downgrade:
            raise ValueError(
                "upgrade.downgradeFrom is read only with upgrade.allowDowngrade: true; remove it "
                "once the downgrade has run"
            )
        if not upgrade.allow_downgrade:
            return
        if upgrade.downgrade_from is None:
            raise ValueError(
                "upgrade.allowDowngrade needs upgrade.downgradeFrom: the image tag deployed now, "
                "whose Airflow carries the downgrade migrations (README: Downgrades)"
            )
        target = airflow_version_of(tag)
        if target is None:
            raise ValueError(
                f"image.tag {tag!r}: a downgrade needs a tag that starts with the Airflow version "
                "it goes back to (e.g. 3.2.2)"
            )
        source = airflow_version_of(upgrade.downgrade_from)
        if source is None or source <= target:
            raise ValueError(
                f"upgrade.downgradeFrom {upgrade.downgrade_from} is not a newer Airflow than "
                f"image.tag {tag}: nothing to downgrade; remove upgrade.allowDowngrade and "
                "upgrade.downgradeFrom"
            )

    @model_validator(mode="after")
    def _cross_field_rules(self) -> AirflowConfig:
        """Rules between sections, judged on the effective values (environment defaults applied)."""
        in_cluster = self.database.mode == "in-cluster"
        for kind, prefix, ids in (
            ("connections", "AIRFLOW_CONN_", self.connections),
            ("variables", "AIRFLOW_VAR_", self.variables),
        ):
            seen: dict[str, str] = {}
            for identifier in sorted(ids):
                env = prefix + identifier.upper()
                if env in seen:
                    raise ValueError(
                        f"{kind}.{seen[env]} and {kind}.{identifier} are the same to Airflow "
                        f"(both read from {env}); keep one"
                    )
                seen[env] = identifier
        fernet = self.fernet
        generated_key = self.existing_secrets.fernet_key is None
        stranded = fernet.generation > 1 and not fernet.previous_keys
        if generated_key and stranded and fernet.rotated_generation != fernet.generation:
            raise ValueError(
                f"fernet.generation {fernet.generation} without previousKeys: the key that "
                "encrypted connections and variables would be lost. List the old key in "
                "previousKeys (README: Fernet key rotation); once the rotation Job has "
                f"succeeded, remove it and set fernet.rotatedGeneration: {fernet.generation}"
            )
        current = self.existing_secrets.fernet_key
        for index, previous in enumerate(self.fernet.previous_keys):
            if previous == current:
                raise ValueError(
                    f"fernet.previousKeys[{index}] is the current Fernet key: list the old key "
                    "(copied into a Secret of its own before the new one was generated), or the "
                    "rotation re-encrypts nothing and data under the old key becomes unreadable"
                )
        if pgbouncer_enabled(self) and not in_cluster:
            raise ValueError(
                "pgbouncer is for in-cluster Postgres (put it next to an external one)"
            )
        if pgbouncer_enabled(self) and self.existing_secrets.postgres_password:
            raise ValueError(
                "pgbouncer needs the generated Postgres password (existingSecrets.postgresPassword)"
            )
        snapshot = self.upgrade.snapshot
        if not in_cluster and snapshot is None:
            raise ValueError(
                "upgrade.snapshot: with an external database nothing here can snapshot it before "
                "a migration; take your provider's snapshot before changing the image and set "
                "upgrade.snapshot: false to say so (README: Upgrades)"
            )
        if not in_cluster and snapshot:
            raise ValueError(
                "upgrade.snapshot: true is for in-cluster Postgres; snapshot an external "
                "database with its provider and set false"
            )
        if in_cluster and snapshot and not backups_enabled(self):
            raise ValueError(
                "upgrade.snapshot: the snapshot is written to the backups claim; enable backups "
                "(backups.enabled) or set upgrade.snapshot: false"
            )
        if backups_enabled(self) and not in_cluster:
            raise ValueError("backups are for in-cluster Postgres; back up an external one there")
        self._check_downgrade()
        if self.autoscaling.celery_workers.enabled and "CeleryExecutor" not in self.executors:
            raise ValueError("autoscaling.celeryWorkers needs CeleryExecutor in `executors`")
        if not in_cluster and self.existing_secrets.postgres_password:
            raise ValueError(
                "existingSecrets.postgresPassword is for in-cluster Postgres; with an external "
                "database use database.external.passwordSecret"
            )
        if (
            self.existing_secrets.postgres_password
            and self.database.in_cluster.password_generation > 1
        ):
            raise ValueError(
                "database.inCluster.passwordGeneration rotates the generated Postgres password; "
                "with existingSecrets.postgresPassword change your Secret, then restart Postgres "
                "and the Airflow pods (README: Postgres password rotation)"
            )
        if self.auth.manager == "simple" and self.existing_secrets.admin_password is not None:
            raise ValueError(
                "existingSecrets.adminPassword needs auth.manager fab: SimpleAuthManager reads "
                "a passwords file this component renders from a generated password"
            )
        cleanup = self.housekeeping.cleanup_pods
        explicit_cleanup = "enabled" in cleanup.model_fields_set and cleanup.enabled
        if explicit_cleanup and "KubernetesExecutor" not in self.executors:
            raise ValueError(
                "housekeeping.cleanupPods.enabled: it deletes KubernetesExecutor task pods, "
                "and KubernetesExecutor is not in `executors`: it would be ignored"
            )
        if self.logging.volume is not None and "local_size_limit" in self.logging.model_fields_set:
            raise ValueError(
                "logging.localSizeLimit sizes the per-pod emptyDir, which logging.volume "
                "replaces: it would be ignored"
            )
        top_volumes = {volume.name for volume in self.extra_volumes}
        for prefix, block in self.pod_blocks():
            own = {volume.name for volume in block.extra_volumes} if block is not self else set()
            if own & top_volumes:
                raise ValueError(
                    f"{prefix}extraVolumes: {sorted(own & top_volumes)} already in extraVolumes"
                )
            mounts = [
                (f"extraVolumeMounts[{i}]", m) for i, m in enumerate(block.extra_volume_mounts)
            ]
            for kind in ("extra_containers", "extra_init_containers"):
                for index, container in enumerate(getattr(block, kind, [])):
                    key = f"{to_camel(kind)}[{index}]"
                    mounts += [
                        (f"{key}.volumeMounts[{i}]", m)
                        for i, m in enumerate(container.volume_mounts)
                    ]
            for where, mount in mounts:
                if mount.name not in top_volumes | own:
                    raise ValueError(
                        f"{prefix}{where}: no volume {mount.name!r} in "
                        f"{prefix}extraVolumes or extraVolumes"
                    )
        if self.dag_processor.replicas > 1:
            raise ValueError(
                f"dagProcessor.replicas: {self.dag_processor.replicas} processors would each "
                "parse every file of the same bundles (Airflow 3.3 does not coordinate "
                "processors of one bundle); split the DAGs into dags.bundles instead, each "
                "gets a processor of its own"
            )
        identity = {
            key: ("logging.remote.serviceAccountAnnotations", value)
            for key, value in (
                self.logging.remote.service_account_annotations if self.logging.remote else {}
            ).items()
        }
        for index, bundle in enumerate(self.dags.bundles):
            connection = "bundle_" + bundle.name.replace("-", "_")
            connected = bundle.object_store or (bundle.git and bundle.git.connection_secret)
            if connected and connection in self.connections:
                raise ValueError(
                    f"connections.{connection}: dags.bundles[{index}] ({bundle.name!r}) "
                    "is fetched with this connection; rename yours"
                )
            store = bundle.object_store
            for key, value in (store.service_account_annotations if store else {}).items():
                here = f"dags.bundles[{index}].objectStore.serviceAccountAnnotations"
                other, given = identity.setdefault(key, (here, value))
                if given != value:
                    raise ValueError(
                        f"{here}: {key} differs from {other}; workers fetch every bundle and "
                        "write logs under one ServiceAccount, which holds one identity"
                    )
        if self.celery is not None:
            default_queue = merged(self.airflow_config).get(("operators", "default_queue"))
            queue = DEFAULT_QUEUE if default_queue is None else str(default_queue)
            served = set(self.celery.workers.queues).union(
                *(pool.queues for pool in self.celery.worker_pools)
            )
            if queue not in served:
                raise ValueError(
                    f"celery.workers.queues: no worker pool consumes {queue!r}, the queue of "
                    "every task that names none (airflowConfig.operators.default_queue): such "
                    "tasks would stay queued; add it to a pool's queues"
                )
        api_options = merged(self.airflow_config, self.api_server.airflow_config)
        official = self.image.repository.split("@")[0] in OFFICIAL_AIRFLOW_IMAGES
        if problem := api_server_option_problem(api_options, official):
            raise ValueError(f"apiServer.airflowConfig / airflowConfig: {problem}")
        local_tasks = self.parallelism if "LocalExecutor" in self.executors else 0
        pools = (
            [("celery.workers", self.celery.workers)]
            + [(f"celery.workerPools[{i}]", p) for i, p in enumerate(self.celery.worker_pools)]
            if self.celery is not None
            else []
        )
        for problem in (
            _memory_refusal(
                "scheduler.resources",
                self.scheduler.resources,
                local_tasks,
                LOCAL_SLOT,
                f"parallelism {self.parallelism} LocalExecutor tasks",
                "parallelism",
            ),
            _memory_refusal(
                "apiServer.resources",
                self.api_server.resources,
                self.api_server.workers - 1,
                API_WORKER,
                f"{self.api_server.workers - 1} uvicorn workers beyond the first",
                "apiServer.workers",
            ),
            *(
                _memory_refusal(
                    f"{key}.resources",
                    pool.resources,
                    pool.concurrency,
                    CELERY_SLOT,
                    f"concurrency {pool.concurrency} tasks",
                    "concurrency",
                )
                for key, pool in pools
            ),
        ):
            if problem:
                raise ValueError(problem)
        if self.environment != "local" and self.database.in_cluster.storage.ephemeral:
            raise ValueError(
                "database.inCluster.storage.ephemeral is only allowed in the local environment"
            )
        return self

    @property
    def executor_setting(self) -> str:
        return ",".join(self.executors)

    def pod_blocks(self) -> list[tuple[str, PodCustomization]]:
        """Every block that customises pods (extra env, volumes, containers), with the key
        prefix its errors name: the top level first, then each process, pool and processor."""
        blocks: list[tuple[str, PodCustomization]] = [
            ("", self),
            ("apiServer.", self.api_server),
            ("scheduler.", self.scheduler),
            ("dagProcessor.", self.dag_processor),
            ("triggerer.", self.triggerer),
        ]
        if self.celery is not None:
            blocks.append(("celery.workers.", self.celery.workers))
            blocks += [
                (f"celery.workerPools[{index}].", pool)
                for index, pool in enumerate(self.celery.worker_pools)
            ]
        blocks += [
            (f"dags.bundles[{index}].dagProcessor.", bundle.dag_processor)
            for index, bundle in enumerate(self.dags.bundles)
            if bundle.dag_processor is not None
        ]
        return blocks


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


# Feature switches whose unset value (`None`) means "the environment decides". The config's
# cross-field rules and `resolve()` both read them from here, so they cannot disagree.
def metrics_enabled(config: AirflowConfig) -> bool:
    enabled = config.metrics.enabled
    return config.environment != "local" if enabled is None else enabled


def pgbouncer_enabled(config: AirflowConfig) -> bool:
    enabled = config.pgbouncer.enabled
    in_cluster = config.database.mode == "in-cluster"
    return (config.environment == "prod" and in_cluster) if enabled is None else enabled


def _memory_refusal(
    key: str,
    given: Resources | None,
    task_slots: int,
    cost: SlotCost,
    slots: str,
    knob: str,
) -> str | None:
    """Why a hand-set memory limit cannot hold its task slots (None when it can)."""
    if given is None or (needed := too_small(given, task_slots, cost)) is None:
        return None
    return (
        f"{key}.limits.memory {given.limits.memory} cannot hold {slots} (~{cost.measured_mib} "
        f"MiB each) and the process: at least {needed}Mi; raise it or lower {knob}"
    )


def airflow_version_of(tag: str) -> tuple[int, int, int] | None:
    """The Airflow version an image tag starts with (3.3.2-python3.12 -> (3, 3, 2))."""
    match = re.match(r"([0-9]+)[.]([0-9]+)[.]([0-9]+)(?![0-9])", tag)
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def version_text(tag: str) -> str | None:
    """The Airflow version an image tag starts with, as Airflow writes it (3.3.2)."""
    version = airflow_version_of(tag)
    return ".".join(map(str, version)) if version else None


def snapshot_enabled(config: AirflowConfig) -> bool:
    snapshot = config.upgrade.snapshot
    return backups_enabled(config) if snapshot is None else snapshot


def backups_enabled(config: AirflowConfig) -> bool:
    enabled = config.backups.enabled
    in_cluster = config.database.mode == "in-cluster"
    return (in_cluster and config.environment != "local") if enabled is None else enabled


def network_policies_enabled(config: AirflowConfig) -> bool:
    enabled = config.network_policies.enabled
    return config.environment != "local" if enabled is None else enabled


def postgres_protected(config: AirflowConfig) -> bool:
    protect = config.database.in_cluster.protect
    return config.environment != "local" if protect is None else protect

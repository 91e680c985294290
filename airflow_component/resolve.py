"""`resolve()`: the user's config, normalised once into frozen records with every default applied.

The pydantic models in `config/` are what users write: a field left unset there (`None`) means
"the environment decides". Everything downstream reads a `ResolvedConfig` instead, where every
such field has its value (resources per environment, feature switches, Postgres protection), so
no builder re-derives a default or asserts that one was filled in. Attribute names mirror the
config's, so `resolved.celery.workers.resources` is the user's `celery.workers.resources` or
the environment's default. `None` here only ever means "this feature is off".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from .config import (
    DEFAULT_RESOURCES,
    AirflowConfig,
    AuthConfig,
    AutoscalingConfig,
    AvailabilityConfig,
    CeleryConfig,
    CeleryWorkersConfig,
    ConnectionConfig,
    DagBundleConfig,
    DagHostPathConfig,
    DagVolumeConfig,
    EgressRule,
    Environment,
    ExistingSecrets,
    ExternalDatabase,
    FernetConfig,
    HousekeepingConfig,
    ImageConfig,
    IngressConfig,
    KubernetesExecutorConfig,
    KubernetesPodOperatorConfig,
    LoggingConfig,
    MigrationsConfig,
    NamespaceConfig,
    PoolConfig,
    PostgresStorage,
    Resources,
    SecretKeyRef,
    SelfCheckConfig,
    ServiceConfig,
    StorageConfig,
    VariableConfig,
    WorkerAutoscaling,
    backups_enabled,
    metrics_enabled,
    network_policies_enabled,
    pgbouncer_enabled,
    postgres_protected,
    snapshot_enabled,
)
from .config.airflow_options import AirflowOptions, overlaid
from .config.dags import DAGS_FOLDER_BUNDLE, GitBundleConfig, ObjectStoreBundleConfig
from .config.extensions import (
    EnvFromSource,
    ExtraContainer,
    ExtraEnvVar,
    ExtraVolume,
    ExtraVolumeMount,
    NodeAffinity,
    PodAffinity,
    PodCustomization,
    Toleration,
    TopologySpread,
)
from .config.sizing import API_WORKER, CELERY_SLOT, LOCAL_SLOT, with_task_slots

Record = TypeVar("Record")


def _record(cls: type[Record], model: BaseModel, **resolved: Any) -> Record:
    """A resolved record: the model's own values, with the resolved ones put in their place."""
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(
        **{name: resolved[name] if name in resolved else getattr(model, name) for name in names}
    )


@dataclass(frozen=True)
class Process:
    """A long-running process: how many pods, what each may use, and what the team set for it
    (overriding the top level: see `ResolvedConfig.pods`)."""

    replicas: int
    resources: Resources
    airflow_config: AirflowOptions
    extra_env: list[ExtraEnvVar]
    extra_env_from: list[EnvFromSource]
    node_selector: dict[str, str] | None
    tolerations: list[Toleration] | None
    priority_class_name: str | None
    pod_annotations: dict[str, str] | None
    pod_labels: dict[str, str] | None
    extra_volumes: list[ExtraVolume]
    extra_volume_mounts: list[ExtraVolumeMount]
    node_affinity: NodeAffinity | None
    pod_affinity: PodAffinity | None
    pod_anti_affinity: PodAffinity | None
    topology_spread: list[TopologySpread] | None
    extra_containers: list[ExtraContainer]
    extra_init_containers: list[ExtraContainer]


@dataclass(frozen=True)
class ApiServer(Process):
    workers: int
    service: ServiceConfig


@dataclass(frozen=True)
class CeleryWorkers(Process):
    """One Celery worker pool: `celery.workers` (the default pool) or a `celery.workerPools`
    entry."""

    concurrency: int
    termination_grace_period_seconds: int
    queues: tuple[str, ...]
    # Its pods' component: "worker" for the default pool, "worker-<name>" for the others.
    component: str
    # The config key it comes from, for messages.
    key: str
    autoscaling: WorkerAutoscaling


@dataclass(frozen=True)
class Redis:
    image: str
    resources: Resources
    storage: StorageConfig


@dataclass(frozen=True)
class Flower:
    enabled: bool
    resources: Resources
    ingress_path: str | None


@dataclass(frozen=True)
class Celery:
    workers: CeleryWorkers
    # Every pool, the default (`workers`) first.
    pools: tuple[CeleryWorkers, ...]
    redis: Redis
    flower: Flower

    @property
    def autoscaled(self) -> bool:
        """Some pool has a KEDA ScaledObject (which reads the metadata DB)."""
        return any(pool.autoscaling.enabled for pool in self.pools)


@dataclass(frozen=True)
class KubernetesExecutor:
    delete_worker_pods: bool
    delete_worker_pods_on_failure: bool
    worker_resources: Resources


@dataclass(frozen=True)
class InClusterPostgres:
    image: str
    database: str
    user: str
    storage: PostgresStorage
    resources: Resources
    protect: bool
    password_generation: int


@dataclass(frozen=True)
class Database:
    mode: Literal["in-cluster", "external"]
    in_cluster: InClusterPostgres
    external: ExternalDatabase | None


@dataclass(frozen=True)
class GitSync:
    repo: str
    ref: str
    period: str
    depth: int
    sub_path: str | None
    image: str
    https_credentials_secret: str | None
    ssh_key_secret: str | None
    resources: Resources


@dataclass(frozen=True)
class Bundle:
    """A DAG bundle and the dag-processor that parses it."""

    name: str
    # At most one is set; neither: the DAG folder (`dags.delivery`).
    git: GitBundleConfig | None
    object_store: ObjectStoreBundleConfig | None
    # Its dag-processor: component, config key and settings (the bundle's `dagProcessor` block
    # over the top-level `dagProcessor`).
    component: str
    key: str
    processor: Process

    @property
    def fetched(self) -> bool:
        """Fetched from a server into local storage (Git, object store), not the DAG folder."""
        return self.git is not None or self.object_store is not None

    @property
    def connection_secret(self) -> SecretKeyRef | None:
        source = self.git or self.object_store
        return source.connection_secret if source is not None else None

    @property
    def connection_id(self) -> str | None:
        """The Airflow connection it is fetched with (`AIRFLOW_CONN_<ID>`): a Git bundle's when
        credentials are given, an object-store bundle's always (credentials or the pod's
        identity)."""
        if self.object_store is None and self.connection_secret is None:
            return None
        return "bundle_" + self.name.replace("-", "_")


@dataclass(frozen=True)
class Dags:
    delivery: Literal["image", "git-sync", "volume", "hostPath"]
    git_sync: GitSync | None
    volume: DagVolumeConfig | None
    host_path: DagHostPathConfig | None
    # Every bundle; without `dags.bundles` the DAG folder alone, as Airflow's default list.
    bundles: tuple[Bundle, ...]
    # `dags.bundles` is set: the list is rendered and each processor names its bundle.
    explicit_bundles: bool

    @property
    def reads_dag_folder(self) -> bool:
        return any(not bundle.fetched for bundle in self.bundles)

    @property
    def fetched_bundles(self) -> tuple[Bundle, ...]:
        return tuple(bundle for bundle in self.bundles if bundle.fetched)


@dataclass(frozen=True)
class Metrics:
    enabled: bool
    image: str
    service_monitor: bool
    prometheus_namespace: str
    resources: Resources


@dataclass(frozen=True)
class PgBouncer:
    enabled: bool
    image: str
    max_client_connections: int
    resources: Resources


@dataclass(frozen=True)
class Backups:
    enabled: bool
    schedule: str
    keep: int
    size: str
    storage_class_name: str | None


@dataclass(frozen=True)
class NetworkPolicies:
    enabled: bool
    ingress_controller_namespace: str
    kubernetes_api_cidrs: list[str]
    dag_source_cidrs: list[str]
    log_storage_cidrs: list[str]
    dns_cidrs: list[str]
    keda_namespace: str
    extra_egress: list[EgressRule]


@dataclass(frozen=True)
class ResolvedConfig:
    """The deployment as built: the config with every default and cross-field rule applied."""

    environment: Environment
    namespace: NamespaceConfig
    image: ImageConfig
    executors: tuple[str, ...]
    celery: Celery | None
    kubernetes_executor: KubernetesExecutor | None
    kubernetes_pod_operator: KubernetesPodOperatorConfig
    dags: Dags
    auth: AuthConfig
    existing_secrets: ExistingSecrets
    database: Database
    migrations: MigrationsConfig
    api_server: ApiServer
    scheduler: Process
    dag_processor: Process
    triggerer: Process
    job_resources: Resources
    ingress: IngressConfig
    network_policies: NetworkPolicies
    parallelism: int
    housekeeping: HousekeepingConfig
    self_check: SelfCheckConfig
    # Options, env and placement for every pod (process blocks override them).
    pods: PodCustomization
    metrics: Metrics
    logging: LoggingConfig
    connections: Mapping[str, ConnectionConfig]
    variables: Mapping[str, VariableConfig]
    pools: Mapping[str, PoolConfig]
    fernet: FernetConfig
    pgbouncer: PgBouncer
    autoscaling: AutoscalingConfig
    backups: Backups
    # pg_dump before the migration Job of each new image (in-cluster Postgres, backups claim).
    upgrade_snapshot: bool
    # The image tag deployed now, whose Airflow downgrades the schema to image.tag's first
    # (set only with upgrade.allowDowngrade).
    downgrade_from: str | None
    availability: AvailabilityConfig
    base_url: str | None

    @property
    def executor_setting(self) -> str:
        return ",".join(self.executors)


def resolve(config: AirflowConfig) -> ResolvedConfig:
    """Apply the environment's defaults; the config's validators already enforced its rules."""
    defaults = DEFAULT_RESOURCES[config.environment]
    celery = None
    if "CeleryExecutor" in config.executors:
        given = config.celery or CeleryConfig()

        def pool(
            settings: CeleryWorkersConfig, component: str, key: str, scaling: WorkerAutoscaling
        ) -> CeleryWorkers:
            return _record(
                CeleryWorkers,
                settings,
                resources=settings.resources
                or with_task_slots(defaults["worker"], settings.concurrency, CELERY_SLOT),
                queues=tuple(settings.queues),
                component=component,
                key=key,
                autoscaling=scaling,
            )

        workers = pool(given.workers, "worker", "celery.workers", config.autoscaling.celery_workers)
        celery = Celery(
            workers=workers,
            pools=(
                workers,
                *(
                    pool(
                        given_pool,
                        f"worker-{given_pool.name}",
                        f"celery.workerPools[{i}]",
                        given_pool.autoscaling,
                    )
                    for i, given_pool in enumerate(given.worker_pools)
                ),
            ),
            redis=_record(Redis, given.redis, resources=given.redis.resources or defaults["redis"]),
            flower=_record(
                Flower, given.flower, resources=given.flower.resources or defaults["flower"]
            ),
        )
    kubernetes_executor = None
    if "KubernetesExecutor" in config.executors:
        given_k8s = config.kubernetes_executor or KubernetesExecutorConfig()
        kubernetes_executor = _record(
            KubernetesExecutor,
            given_k8s,
            worker_resources=given_k8s.worker_resources or defaults["worker"],
        )
    postgres = config.database.in_cluster
    dags = config.dags
    git_sync = (
        _record(GitSync, dags.git_sync, resources=dags.git_sync.resources or defaults["gitSync"])
        if dags.git_sync is not None
        else None
    )

    def process(field: str, default: str, cls: type[Process] = Process) -> Any:
        settings = getattr(config, field)
        return _record(cls, settings, resources=settings.resources or defaults[default])

    def bundle(index: int, given: DagBundleConfig) -> Bundle:
        base = config.dag_processor
        own = given.dag_processor
        settings = base
        if own is not None:
            # The bundle's block replaces what it sets; options and env merge by name.
            updates = {name: getattr(own, name) for name in own.model_fields_set}
            updates["airflow_config"] = overlaid(base.airflow_config, own.airflow_config)
            updates["extra_env"] = list(
                {item.name: item for item in [*base.extra_env, *own.extra_env]}.values()
            )
            settings = base.model_copy(update=updates)
        return Bundle(
            name=given.name,
            git=given.git,
            object_store=given.object_store,
            component=f"dag-processor-{given.name}",
            key=f"dags.bundles[{index}]",
            processor=_record(
                Process, settings, resources=settings.resources or defaults["dagProcessor"]
            ),
        )

    bundles = tuple(bundle(index, given) for index, given in enumerate(dags.bundles)) or (
        Bundle(
            name=DAGS_FOLDER_BUNDLE,
            git=None,
            object_store=None,
            component="dag-processor",
            key="dagProcessor",
            processor=process("dag_processor", "dagProcessor"),
        ),
    )

    return ResolvedConfig(
        environment=config.environment,
        namespace=config.namespace,
        image=config.image,
        executors=tuple(config.executors),
        celery=celery,
        kubernetes_executor=kubernetes_executor,
        kubernetes_pod_operator=config.kubernetes_pod_operator,
        dags=Dags(
            delivery=dags.delivery,
            git_sync=git_sync,
            volume=dags.volume or (DagVolumeConfig() if dags.delivery == "volume" else None),
            host_path=dags.host_path
            or (DagHostPathConfig() if dags.delivery == "hostPath" else None),
            bundles=bundles,
            explicit_bundles=bool(dags.bundles),
        ),
        auth=config.auth,
        existing_secrets=config.existing_secrets,
        database=Database(
            mode=config.database.mode,
            in_cluster=_record(
                InClusterPostgres,
                postgres,
                resources=postgres.resources or defaults["postgres"],
                protect=postgres_protected(config),
            ),
            external=config.database.external,
        ),
        migrations=config.migrations,
        api_server=_record(
            ApiServer,
            config.api_server,
            # Every uvicorn worker past the first is another process with the apps loaded.
            resources=config.api_server.resources
            or with_task_slots(defaults["apiServer"], config.api_server.workers - 1, API_WORKER),
        ),
        scheduler=_record(
            Process,
            config.scheduler,
            # LocalExecutor runs `parallelism` tasks inside the scheduler's container.
            resources=config.scheduler.resources
            or with_task_slots(
                defaults["scheduler"],
                config.parallelism if "LocalExecutor" in config.executors else 0,
                LOCAL_SLOT,
            ),
        ),
        dag_processor=process("dag_processor", "dagProcessor"),
        triggerer=process("triggerer", "triggerer"),
        job_resources=config.job_resources or defaults["job"],
        ingress=config.ingress,
        network_policies=_record(
            NetworkPolicies, config.network_policies, enabled=network_policies_enabled(config)
        ),
        parallelism=config.parallelism,
        housekeeping=config.housekeeping,
        self_check=config.self_check,
        pods=PodCustomization.model_validate(
            {name: getattr(config, name) for name in PodCustomization.model_fields}
        ),
        metrics=_record(
            Metrics,
            config.metrics,
            enabled=metrics_enabled(config),
            resources=config.metrics.resources or defaults["redis"],
        ),
        logging=config.logging,
        connections=dict(config.connections),
        variables=dict(config.variables),
        pools=dict(config.pools),
        fernet=config.fernet,
        pgbouncer=_record(
            PgBouncer,
            config.pgbouncer,
            enabled=pgbouncer_enabled(config),
            resources=config.pgbouncer.resources or defaults["redis"],
        ),
        autoscaling=config.autoscaling,
        backups=_record(Backups, config.backups, enabled=backups_enabled(config)),
        upgrade_snapshot=snapshot_enabled(config),
        downgrade_from=config.upgrade.downgrade_from if config.upgrade.allow_downgrade else None,
        availability=config.availability,
        base_url=config.base_url,
    )

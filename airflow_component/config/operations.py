"""Production operations: housekeeping, metrics, logs, declared objects, autoscaling."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
    model_validator,
)

from ..versions import STATSD_EXPORTER_IMAGE
from .types import (
    AirflowIdentifier,
    ConfigKeyName,
    Cron,
    DnsLabel,
    DnsSubdomain,
    NonEmpty,
    Resources,
    SecretKeyRef,
    StorageSize,
    StrictModel,
    _matching,
)


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


class SelfCheckConfig(StrictModel):
    """The deployment's own check, run in the cluster after the workloads are up."""

    enabled: bool = Field(
        default=True,
        description=(
            "After an update that changes the deployment, a Job with a task runner's network "
            "identity and ServiceAccount checks DNS, the metadata DB, the broker, the Execution "
            "API, the admin login, DAG import errors, the DAG source and remote log storage; "
            "`pulumi up` awaits it and fails with the broken flow and the config key to fix."
        ),
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
    storage_class_name: DnsSubdomain = Field(
        description=(
            "A StorageClass that supports ReadWriteMany (EFS, Filestore, Azure Files, an NFS "
            "provisioner). Required: a cluster's default class is usually ReadWriteOnce, and the "
            "claim would never bind."
        ),
    )


class LoggingConfig(StrictModel):
    """Where task logs live beyond the pod that wrote them."""

    remote: RemoteLoggingConfig | None = Field(default=None, description="S3/GCS logging.")
    volume: LogsVolumeConfig | None = Field(default=None, description="Shared logs claim.")
    retention_days: int = Field(
        default=15,
        ge=1,
        le=3650,
        description=(
            "Local log files older than this are deleted by a log-groomer sidecar (remote logs "
            "are kept by your bucket's lifecycle rules)."
        ),
    )
    local_size_limit: StorageSize = Field(
        default="4Gi",
        description=(
            "sizeLimit of each pod's local logs emptyDir; the kubelet evicts a pod over it, "
            "so size it for `retentionDays` of that pod's logs."
        ),
    )

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

"""Airflow processes and executors: replicas, resources, Celery, KubernetesExecutor."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from ..versions import REDIS_IMAGE
from .extensions import ExtraContainer, PodCustomization
from .operations import WorkerAutoscaling
from .types import (
    DnsSubdomain,
    NonEmpty,
    QueueName,
    Resources,
    StorageSize,
    StrictModel,
    WorkerPoolName,
)

# Airflow's `[operators] default_queue`: tasks that name no queue go here.
DEFAULT_QUEUE = "default"
# The name `celery.workers` goes by among the pools.
DEFAULT_POOL = "default"


def _distinct_queues(queues: list[str]) -> list[str]:
    repeated = sorted({queue for queue in queues if queues.count(queue) > 1})
    if repeated:
        raise ValueError(f"queues {repeated} listed more than once")
    return queues


class ProcessConfig(PodCustomization):
    """Replicas and resources of one long-running Airflow process; Airflow options, env and
    placement set here override the top level for this process."""

    replicas: int = Field(default=1, ge=1, le=50, description="Number of pods.")
    resources: Resources | None = Field(
        default=None, description="Requests/limits; defaults depend on `environment`."
    )
    extra_containers: list[ExtraContainer] = Field(
        default_factory=list,
        description="Sidecars in this process's pods (restricted security context enforced).",
    )
    extra_init_containers: list[ExtraContainer] = Field(
        default_factory=list,
        description="Containers that run to completion before this process starts.",
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


class StorageConfig(StrictModel):
    """A data volume: a claim from a StorageClass, or an emptyDir."""

    size: StorageSize = Field(
        default="1Gi",
        description=(
            "PersistentVolumeClaim size. Raising it later grows the live claim in place (its "
            "StorageClass must allow volume expansion); a claim never shrinks."
        ),
    )
    storage_class_name: DnsSubdomain | None = Field(
        default=None,
        description=(
            "StorageClass; the cluster default when unset. Applies when the claim is created: "
            "an existing claim keeps its class."
        ),
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
    """Celery workers: a Deployment running `airflow celery worker`. This is the default pool;
    `celery.workerPools` adds more, each serving its own queues."""

    concurrency: int = Field(default=16, ge=1, le=512, description="Task slots per worker.")
    termination_grace_period_seconds: int = Field(
        default=600,
        ge=30,
        le=86400,
        description="Warm shutdown: running tasks get this long to finish on a rollout.",
    )
    queues: list[QueueName] = Field(
        default_factory=lambda: [DEFAULT_QUEUE],
        min_length=1,
        description="Celery queues these workers consume (`airflow celery worker --queues`); "
        "tasks choose one with the operator's `queue` argument.",
    )

    @field_validator("queues")
    @classmethod
    def _queues_once(cls, queues: list[str]) -> list[str]:
        return _distinct_queues(queues)


class WorkerPoolConfig(CeleryWorkersConfig):
    """A further Celery worker pool (GPU, high-memory, a tenant's queue): its own Deployment,
    queues, resources, placement and KEDA autoscaling."""

    name: WorkerPoolName = Field(
        description="Pool name; its objects are named `<release>-worker-<name>`."
    )
    queues: list[QueueName] = Field(
        min_length=1,
        description="Celery queues this pool consumes; no other pool may consume them.",
    )
    autoscaling: WorkerAutoscaling = Field(
        default_factory=WorkerAutoscaling,
        description="KEDA ScaledObject for this pool, counting only its queues' tasks.",
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
        default_factory=CeleryWorkersConfig,
        description="The default worker pool (autoscaled by `autoscaling.celeryWorkers`).",
    )
    worker_pools: list[WorkerPoolConfig] = Field(
        default_factory=list,
        max_length=20,
        description="Further worker pools, each serving its own queues.",
    )
    redis: RedisConfig = Field(default_factory=RedisConfig, description="Broker.")
    flower: FlowerConfig = Field(default_factory=FlowerConfig, description="Flower UI.")

    @model_validator(mode="after")
    def _pools_apart(self) -> CeleryConfig:
        owners = {queue: "celery.workers.queues" for queue in self.workers.queues}
        names: set[str] = set()
        for index, pool in enumerate(self.worker_pools):
            key = f"celery.workerPools[{index}]"
            if pool.name == DEFAULT_POOL or pool.name in names:
                raise ValueError(
                    f"{key}.name: {pool.name!r} is "
                    + ("the default pool's name" if pool.name == DEFAULT_POOL else "used twice")
                )
            names.add(pool.name)
            for queue in pool.queues:
                if queue in owners:
                    raise ValueError(
                        f"{key}.queues: {queue!r} is already consumed by {owners[queue]}; a "
                        "queue belongs to one pool, so its autoscaler counts its tasks once"
                    )
                owners[queue] = f"{key}.queues"
        return self


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

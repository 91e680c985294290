"""The long-running Airflow 3 processes: api-server, scheduler, dag-processor, triggerer,
Celery workers and Flower.

Each is a Deployment built from the shared container and pod spec in `airflow_env`; only the
command, ports and Airflow's own health checks differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    ContainerPortArgsDict,
    EnvVarArgsDict,
    ProbeArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from .airflow_env import (
    POD_TEMPLATE_PATH,
    AirflowRuntime,
    airflow_container,
    airflow_pod_spec,
    secret_env,
)
from .availability import topology_spread
from .config import ProcessConfig
from .naming import (
    API_SERVER_PORT,
    FLOWER_PORT,
    SCHEDULER_HEALTH_PORT,
    WORKER_LOG_SERVER_PORT,
    Naming,
)

TRIGGERER_LOG_SERVER_PORT = 8794


def pod_template_config_map_name(naming: Naming) -> str:
    return naming.object("pod-template")


def _http_probe(path: str, port: str, period: int, failures: int) -> ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": port},
        "period_seconds": period,
        "timeout_seconds": 10,
        "failure_threshold": failures,
    }


def _job_check_probe(job_type: str, failures: int = 5) -> ProbeArgsDict:
    """Airflow's own health check: this host's job heartbeat is recent."""
    return {
        "exec_": {"command": ["airflow", "jobs", "check", "--job-type", job_type, "--local"]},
        "initial_delay_seconds": 30,
        "period_seconds": 60,
        "timeout_seconds": 45,
        "failure_threshold": failures,
    }


@dataclass(frozen=True)
class Process:
    """What distinguishes one Airflow process from another."""

    component: str
    args: tuple[str, ...]
    ports: tuple[ContainerPortArgsDict, ...]
    liveness: ProbeArgsDict
    readiness: ProbeArgsDict | None = None
    startup: ProbeArgsDict | None = None
    termination_grace_period_seconds: int = 60
    reads_dags: bool = False
    # Launches pods (KubernetesExecutor, KubernetesPodOperator): gets a ServiceAccount token.
    api_access: bool = False
    extra_env: tuple[EnvVarArgsDict, ...] = ()
    extra_mounts: tuple[VolumeMountArgsDict, ...] = ()
    extra_volumes: tuple[VolumeArgsDict, ...] = ()
    pod_annotations: tuple[tuple[str, str], ...] = ()


def api_server_process(runtime: AirflowRuntime) -> Process:
    version_check = _http_probe("/api/v2/version", "api", period=10, failures=6)
    return Process(
        component="api-server",
        args=(
            "api-server",
            "--port",
            str(API_SERVER_PORT),
            "--workers",
            str(runtime.config.api_server.workers),
            "--proxy-headers",
        ),
        ports=({"name": "api", "container_port": API_SERVER_PORT},),
        liveness=_http_probe("/api/v2/version", "api", period=15, failures=5),
        readiness=version_check,
        startup=_http_probe("/api/v2/version", "api", period=5, failures=60),
    )


def scheduler_process(runtime: AirflowRuntime, pod_template_checksum: str = "") -> Process:
    health = _http_probe("/health", "health", period=15, failures=5)
    launches_pods = runtime.config.kubernetes_executor is not None
    template = (
        {
            "extra_mounts": (
                {
                    "name": "pod-template",
                    "mount_path": POD_TEMPLATE_PATH.rsplit("/", 1)[0],
                    "read_only": True,
                },
            ),
            "extra_volumes": (
                {
                    "name": "pod-template",
                    "config_map": {"name": pod_template_config_map_name(runtime.naming)},
                },
            ),
            # A changed template rolls the scheduler, which reads the file at start-up.
            "pod_annotations": (("checksum/pod-template", pod_template_checksum),),
        }
        if launches_pods
        else {}
    )
    return Process(
        component="scheduler",
        args=("scheduler",),
        ports=(
            {"name": "health", "container_port": SCHEDULER_HEALTH_PORT},
            # LocalExecutor runs tasks in the scheduler pod; the api-server fetches their logs here.
            *(
                [{"name": "task-logs", "container_port": WORKER_LOG_SERVER_PORT}]
                if "LocalExecutor" in runtime.config.executors
                else []
            ),
        ),
        liveness=health,
        readiness=_http_probe("/health", "health", period=10, failures=3),
        startup=_http_probe("/health", "health", period=5, failures=60),
        reads_dags=True,
        api_access=launches_pods,
        **template,  # type: ignore[arg-type]
    )


def dag_processor_process(runtime: AirflowRuntime) -> Process:
    return Process(
        component="dag-processor",
        args=("dag-processor",),
        ports=(),
        liveness=_job_check_probe("DagProcessorJob"),
        readiness=_job_check_probe("DagProcessorJob", failures=2),
        reads_dags=True,
    )


def triggerer_process(runtime: AirflowRuntime) -> Process:
    return Process(
        component="triggerer",
        args=("triggerer",),
        ports=({"name": "trigger-logs", "container_port": TRIGGERER_LOG_SERVER_PORT},),
        liveness=_job_check_probe("TriggererJob"),
        readiness=_job_check_probe("TriggererJob", failures=2),
        reads_dags=True,
        # Deferrable KubernetesPodOperator tasks watch their pods from the triggerer.
        api_access=runtime.config.kubernetes_pod_operator.enabled,
    )


def celery_worker_process(runtime: AirflowRuntime) -> Process:
    celery = runtime.config.celery
    assert celery is not None
    ping = (
        "exec celery --app airflow.providers.celery.executors.celery_executor.app "
        'inspect ping -d "celery@${HOSTNAME}" --timeout 20'
    )
    ping_probe: ProbeArgsDict = {
        "exec_": {"command": ["sh", "-c", ping]},
        "initial_delay_seconds": 60,
        "period_seconds": 60,
        "timeout_seconds": 45,
        "failure_threshold": 5,
    }
    return Process(
        component="worker",
        args=("celery", "worker", "--concurrency", str(celery.workers.concurrency)),
        # The api-server fetches task logs from here while the task runs and after.
        ports=({"name": "task-logs", "container_port": WORKER_LOG_SERVER_PORT},),
        liveness=ping_probe,
        readiness={**ping_probe, "initial_delay_seconds": 20, "failure_threshold": 2},
        # Warm shutdown: SIGTERM lets running tasks finish within the grace period.
        termination_grace_period_seconds=celery.workers.termination_grace_period_seconds,
        reads_dags=True,
        api_access=runtime.config.kubernetes_pod_operator.enabled,
    )


def flower_process(runtime: AirflowRuntime) -> Process:
    assert runtime.secrets.flower_basic_auth is not None
    flower = runtime.config.celery.flower if runtime.config.celery else None
    url_prefix = flower.ingress_path.rstrip("/") if flower and flower.ingress_path else ""
    args: tuple[str, ...] = ("celery", "flower", "--port", str(FLOWER_PORT))
    if url_prefix:
        args += ("--url-prefix", url_prefix)
    tcp: ProbeArgsDict = {
        "tcp_socket": {"port": "flower"},
        "period_seconds": 20,
        "failure_threshold": 5,
    }
    return Process(
        component="flower",
        args=args,
        ports=({"name": "flower", "container_port": FLOWER_PORT},),
        liveness=tcp,
        readiness=tcp,
        extra_env=(
            secret_env("AIRFLOW__CELERY__FLOWER_BASIC_AUTH", runtime.secrets.flower_basic_auth),
        ),
    )


def pod_annotations(
    runtime: AirflowRuntime, process: Process
) -> dict[str, dict[str, pulumi.Input[str]]]:
    annotations: dict[str, pulumi.Input[str]] = {
        **dict(runtime.pod_annotations),
        **dict(process.pod_annotations),
    }
    return {"annotations": annotations} if annotations else {}


def process_container(
    runtime: AirflowRuntime, process: Process, settings: ProcessConfig
) -> ContainerArgsDict:
    assert settings.resources is not None
    extra: ContainerArgsDict = {"liveness_probe": process.liveness}
    if process.ports:
        extra["ports"] = list(process.ports)
    if process.readiness:
        extra["readiness_probe"] = process.readiness
    if process.startup:
        extra["startup_probe"] = process.startup
    return airflow_container(
        runtime,
        process.component,
        process.args,
        settings.resources,
        extra=extra,
        extra_env=process.extra_env,
        reads_dags=process.reads_dags,
        extra_mounts=process.extra_mounts,
    )


def deployment_spec(
    runtime: AirflowRuntime, process: Process, settings: ProcessConfig
) -> DeploymentSpecArgsDict:
    labels = runtime.naming.labels(process.component)
    pod_spec = airflow_pod_spec(
        runtime,
        runtime.naming.object(process.component),
        [process_container(runtime, process, settings)],
        termination_grace_period_seconds=process.termination_grace_period_seconds,
        reads_dags=process.reads_dags,
        api_access=process.api_access,
        extra_volumes=process.extra_volumes,
    )
    autoscaled = (
        process.component == "api-server" and runtime.config.autoscaling.api_server.enabled
    ) or (process.component == "worker" and runtime.config.autoscaling.celery_workers.enabled)
    if (settings.replicas > 1 or autoscaled) and runtime.config.availability.spread_across_nodes:
        pod_spec["topology_spread_constraints"] = topology_spread(runtime.naming, process.component)
    spec: DeploymentSpecArgsDict = {
        "selector": {"match_labels": labels},
        # Surge first, so a rollout never drops below the configured replica count.
        "strategy": {
            "type": "RollingUpdate",
            "rolling_update": {"max_surge": 1, "max_unavailable": 0},
        },
        "template": {
            "metadata": {
                "labels": runtime.naming.airflow_pod_labels(process.component),
                **pod_annotations(runtime, process),
            },
            "spec": pod_spec,
        },
    }
    if not autoscaled:
        # Left out when an autoscaler owns the count, so `pulumi up` never fights it.
        spec["replicas"] = settings.replicas
    return spec

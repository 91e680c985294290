"""The long-running Airflow 3 processes: api-server, scheduler, dag-processor, triggerer.

Each is a Deployment built from the shared container and pod spec in `airflow_env`; only the
command, ports and Airflow's own health checks differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.core.v1 import ContainerArgsDict, ContainerPortArgsDict, ProbeArgsDict

from .airflow_env import AirflowRuntime, airflow_container, airflow_pod_spec
from .config import ProcessConfig
from .naming import API_SERVER_PORT, SCHEDULER_HEALTH_PORT, WORKER_LOG_SERVER_PORT

TRIGGERER_LOG_SERVER_PORT = 8794


def _http_probe(path: str, port: str, period: int, failures: int) -> ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": port},
        "period_seconds": period,
        "timeout_seconds": 10,
        "failure_threshold": failures,
    }


def _job_check_probe(job_type: str) -> ProbeArgsDict:
    """Airflow's own liveness check: this host's job heartbeat is recent."""
    return {
        "exec_": {"command": ["airflow", "jobs", "check", "--job-type", job_type, "--local"]},
        "initial_delay_seconds": 30,
        "period_seconds": 60,
        "timeout_seconds": 45,
        "failure_threshold": 5,
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


def scheduler_process(runtime: AirflowRuntime) -> Process:
    health = _http_probe("/health", "health", period=15, failures=5)
    return Process(
        component="scheduler",
        args=("scheduler",),
        ports=(
            {"name": "health", "container_port": SCHEDULER_HEALTH_PORT},
            # LocalExecutor runs tasks in the scheduler pod; the api-server fetches their logs here.
            {"name": "task-logs", "container_port": WORKER_LOG_SERVER_PORT},
        ),
        liveness=health,
        startup=_http_probe("/health", "health", period=5, failures=60),
    )


def dag_processor_process(runtime: AirflowRuntime) -> Process:
    return Process(
        component="dag-processor",
        args=("dag-processor",),
        ports=(),
        liveness=_job_check_probe("DagProcessorJob"),
    )


def triggerer_process(runtime: AirflowRuntime) -> Process:
    return Process(
        component="triggerer",
        args=("triggerer",),
        ports=({"name": "trigger-logs", "container_port": TRIGGERER_LOG_SERVER_PORT},),
        liveness=_job_check_probe("TriggererJob"),
    )


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
        runtime, process.component, process.args, settings.resources, extra=extra
    )


def deployment_spec(
    runtime: AirflowRuntime, process: Process, settings: ProcessConfig
) -> DeploymentSpecArgsDict:
    labels = runtime.naming.labels(process.component)
    return {
        "replicas": settings.replicas,
        "selector": {"match_labels": labels},
        # Surge first, so a rollout never drops below the configured replica count.
        "strategy": {
            "type": "RollingUpdate",
            "rolling_update": {"max_surge": 1, "max_unavailable": 0},
        },
        "template": {
            "metadata": {"labels": labels},
            "spec": airflow_pod_spec(
                runtime,
                runtime.naming.object(process.component),
                [process_container(runtime, process, settings)],
                termination_grace_period_seconds=process.termination_grace_period_seconds,
            ),
        },
    }

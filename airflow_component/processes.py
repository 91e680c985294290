"""The long-running Airflow 3 processes: api-server, scheduler, dag-processor, triggerer,
Celery workers and Flower.

Each is a Deployment built from the shared container and pod spec in `airflow_env`; only the
command, ports, Airflow's own health checks and the process's `Needs` differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

from .airflow_env import POD_TEMPLATE_PATH, AirflowRuntime, airflow_container, airflow_pod_spec
from .availability import topology_spread
from .kube import http_probe, plain_env
from .naming import API_SERVER_PORT, FLOWER_PORT, SCHEDULER_HEALTH_PORT, Naming
from .needs import (
    API_SERVER,
    DAG_PROCESSOR,
    FLOWER,
    SCHEDULER,
    TRIGGERER,
    TRIGGERER_LOG_SERVER_PORT,
    WORKER_LOG_SERVER_PORT,
    Needs,
    needs_of,
)
from .placement import team_spread
from .resolve import Bundle, CeleryWorkers
from .resolve import Process as ProcessSettings


def pod_template_config_map_name(naming: Naming) -> str:
    return naming.object("pod-template")


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

    needs: Needs
    settings: ProcessSettings
    args: tuple[str, ...]
    ports: tuple[ContainerPortArgsDict, ...]
    liveness: ProbeArgsDict
    readiness: ProbeArgsDict | None = None
    startup: ProbeArgsDict | None = None
    termination_grace_period_seconds: int = 60
    extra_env: tuple[EnvVarArgsDict, ...] = ()
    extra_mounts: tuple[VolumeMountArgsDict, ...] = ()
    extra_volumes: tuple[VolumeArgsDict, ...] = ()
    pod_annotations: tuple[tuple[str, str], ...] = ()
    # The main container's name, when it is not the component's (every worker pool's is
    # "worker", so `kubectl logs -c worker` works on each).
    container_name: str = ""

    @property
    def component(self) -> str:
        return self.needs.component


def api_server_process(runtime: AirflowRuntime) -> Process:
    version_check = http_probe("/api/v2/version", "api", period=10, failures=6)
    return Process(
        needs=needs_of(runtime.config, API_SERVER),
        settings=runtime.config.api_server,
        args=(
            "api-server",
            "--port",
            str(API_SERVER_PORT),
            "--workers",
            str(runtime.config.api_server.workers),
            "--proxy-headers",
        ),
        ports=({"name": "api", "container_port": API_SERVER_PORT},),
        liveness=http_probe("/api/v2/version", "api", period=15, failures=5),
        readiness=version_check,
        startup=http_probe("/api/v2/version", "api", period=5, failures=60),
        # uvicorn honours X-Forwarded-Proto/-For only from FORWARDED_ALLOW_IPS (default
        # 127.0.0.1): behind an ingress, `--proxy-headers` alone does nothing and redirects and
        # cookies lose https. The controller's pod IPs are not known here; NetworkPolicies limit
        # who reaches the api-server at all.
        extra_env=(plain_env("FORWARDED_ALLOW_IPS", "*"),)
        if runtime.config.ingress.enabled
        else (),
    )


def scheduler_process(runtime: AirflowRuntime, pod_template_checksum: str = "") -> Process:
    health = http_probe("/health", "health", period=15, failures=5)
    needs = needs_of(runtime.config, SCHEDULER)
    mounts: tuple[VolumeMountArgsDict, ...] = ()
    volumes: tuple[VolumeArgsDict, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    if runtime.config.kubernetes_executor is not None:
        mounts = (
            {
                "name": "pod-template",
                "mount_path": POD_TEMPLATE_PATH.rsplit("/", 1)[0],
                "read_only": True,
            },
        )
        volumes = (
            {
                "name": "pod-template",
                "config_map": {"name": pod_template_config_map_name(runtime.naming)},
            },
        )
        # A changed template rolls the scheduler, which reads the file at start-up.
        annotations = (("checksum/pod-template", pod_template_checksum),)
    return Process(
        needs=needs,
        settings=runtime.config.scheduler,
        args=("scheduler",),
        ports=(
            {"name": "health", "container_port": SCHEDULER_HEALTH_PORT},
            # LocalExecutor runs tasks in the scheduler pod; the api-server fetches their logs here.
            *(
                [{"name": "task-logs", "container_port": WORKER_LOG_SERVER_PORT}]
                if needs.log_server_ports
                else []
            ),
        ),
        liveness=health,
        readiness=http_probe("/health", "health", period=10, failures=3),
        startup=http_probe("/health", "health", period=5, failures=60),
        extra_mounts=mounts,
        extra_volumes=volumes,
        pod_annotations=annotations,
    )


def dag_processor_process(runtime: AirflowRuntime, bundle: Bundle) -> Process:
    """The dag-processor of one bundle (`--bundle-name`); without `dags.bundles`, Airflow's
    default, the DAG folder."""
    args: tuple[str, ...] = ("dag-processor",)
    if runtime.config.dags.explicit_bundles:
        args += ("--bundle-name", bundle.name)
    return Process(
        needs=needs_of(runtime.config, bundle.component),
        settings=bundle.processor,
        # Every processor's main container is "dag-processor", like every pool's is "worker".
        container_name=DAG_PROCESSOR,
        args=args,
        ports=(),
        liveness=_job_check_probe("DagProcessorJob"),
        readiness=_job_check_probe("DagProcessorJob", failures=2),
    )


def triggerer_process(runtime: AirflowRuntime) -> Process:
    return Process(
        needs=needs_of(runtime.config, TRIGGERER),
        settings=runtime.config.triggerer,
        args=("triggerer",),
        ports=({"name": "trigger-logs", "container_port": TRIGGERER_LOG_SERVER_PORT},),
        liveness=_job_check_probe("TriggererJob"),
        readiness=_job_check_probe("TriggererJob", failures=2),
    )


def celery_worker_process(runtime: AirflowRuntime, pool: CeleryWorkers) -> Process:
    """One worker pool: `airflow celery worker` consuming the pool's queues."""
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
        needs=needs_of(runtime.config, pool.component),
        settings=pool,
        container_name="worker",
        args=(
            "celery",
            "worker",
            "--concurrency",
            str(pool.concurrency),
            "--queues",
            ",".join(pool.queues),
        ),
        # The api-server fetches task logs from here while the task runs and after.
        ports=({"name": "task-logs", "container_port": WORKER_LOG_SERVER_PORT},),
        liveness=ping_probe,
        readiness={**ping_probe, "initial_delay_seconds": 20, "failure_threshold": 2},
        # Warm shutdown: SIGTERM lets running tasks finish within the grace period.
        termination_grace_period_seconds=pool.termination_grace_period_seconds,
        extra_env=(
            # The image sets DUMB_INIT_SETSID=1: dumb-init then sends SIGTERM to the whole
            # process group, task processes included, and Celery's warm shutdown never happens.
            # With 0 it signals Celery alone, which stops taking tasks and waits for the
            # running ones.
            plain_env("DUMB_INIT_SETSID", "0"),
        ),
    )


def flower_process(runtime: AirflowRuntime) -> Process:
    assert runtime.config.celery is not None
    flower = runtime.config.celery.flower
    url_prefix = flower.ingress_path.rstrip("/") if flower.ingress_path else ""
    args: tuple[str, ...] = ("celery", "flower", "--port", str(FLOWER_PORT))
    if url_prefix:
        args += ("--url-prefix", url_prefix)
    tcp: ProbeArgsDict = {
        "tcp_socket": {"port": "flower"},
        "period_seconds": 20,
        "failure_threshold": 5,
    }
    return Process(
        needs=needs_of(runtime.config, FLOWER),
        # Flower is not an Airflow process the team configures: the top level applies.
        settings=ProcessSettings(
            replicas=1,
            resources=flower.resources,
            airflow_config={},
            extra_env=[],
            extra_env_from=[],
            node_selector=None,
            tolerations=None,
            priority_class_name=None,
            pod_annotations=None,
            pod_labels=None,
            extra_volumes=[],
            extra_volume_mounts=[],
            node_affinity=None,
            pod_affinity=None,
            pod_anti_affinity=None,
            topology_spread=None,
            extra_containers=[],
            extra_init_containers=[],
        ),
        args=args,
        ports=({"name": "flower", "container_port": FLOWER_PORT},),
        liveness=tcp,
        readiness=tcp,
    )


def pod_annotations(
    runtime: AirflowRuntime, process: Process
) -> dict[str, dict[str, pulumi.Input[str]]]:
    annotations: dict[str, pulumi.Input[str]] = {
        **dict(runtime.pod_annotations),
        **dict(process.pod_annotations),
    }
    return {"annotations": annotations} if annotations else {}


def process_container(runtime: AirflowRuntime, process: Process) -> ContainerArgsDict:
    extra: ContainerArgsDict = {"liveness_probe": process.liveness}
    if process.ports:
        extra["ports"] = list(process.ports)
    if process.readiness:
        extra["readiness_probe"] = process.readiness
    if process.startup:
        extra["startup_probe"] = process.startup
    return airflow_container(
        runtime,
        process.needs,
        process.container_name or process.component,
        process.args,
        process.settings.resources,
        extra=extra,
        extra_env=process.extra_env,
        extra_mounts=process.extra_mounts,
    )


def deployment_spec(runtime: AirflowRuntime, process: Process) -> DeploymentSpecArgsDict:
    labels = runtime.naming.labels(process.component)
    pod_spec = airflow_pod_spec(
        runtime,
        process.needs,
        [process_container(runtime, process)],
        termination_grace_period_seconds=process.termination_grace_period_seconds,
        extra_volumes=process.extra_volumes,
    )
    autoscaled = process.needs.autoscaled
    replicas = process.settings.replicas
    spread: list[Any] = []
    if (replicas > 1 or autoscaled) and runtime.config.availability.spread_across_nodes:
        spread = list(topology_spread(runtime.naming, process.component))
    team = team_spread(runtime.config, process.component, runtime.naming.labels(process.component))
    keys = {constraint["topology_key"] for constraint in team}
    spread = [c for c in spread if c["topology_key"] not in keys] + team
    if spread:
        pod_spec["topology_spread_constraints"] = spread
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
        spec["replicas"] = replicas
    return spec


def airflow_processes(runtime: AirflowRuntime, pod_template_checksum: str = "") -> list[Process]:
    """Every long-running Airflow process of this deployment."""
    processes = [
        api_server_process(runtime),
        scheduler_process(runtime, pod_template_checksum),
        *(dag_processor_process(runtime, bundle) for bundle in runtime.config.dags.bundles),
        triggerer_process(runtime),
    ]
    celery = runtime.config.celery
    if celery is not None:
        processes += [celery_worker_process(runtime, pool) for pool in celery.pools]
        if celery.flower.enabled:
            processes.append(flower_process(runtime))
    return processes

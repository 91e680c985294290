"""Metrics: Airflow's statsd, translated for Prometheus by a statsd-exporter."""

from __future__ import annotations

from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.core.v1 import EnvVarArgsDict, ProbeArgsDict, ServiceSpecArgsDict

from .kube import container_security_context, plain_env, pod_security_context, resource_requirements
from .naming import Naming
from .resolve import Metrics

COMPONENT = "statsd"
STATSD_PORT = 9125
METRICS_PORT = 9102
EXPORTER_UID = 65534  # the image's `nobody`
MAPPING_FILE = "mappings.yml"
# Airflow metric names carry DAG/task ids in dotted paths; these lift them into labels.
MAPPINGS = """\
mappings:
  - match: "*.dag_processing.last_duration.*"
    name: "airflow_dag_processing_last_duration"
    labels: {dag_file: "$2"}
  - match: "*.dagrun.duration.success.*"
    name: "airflow_dagrun_duration_success"
    labels: {dag_id: "$2"}
  - match: "*.dagrun.duration.failed.*"
    name: "airflow_dagrun_duration_failed"
    labels: {dag_id: "$2"}
  - match: "*.dag.*.*.duration"
    name: "airflow_task_duration"
    labels: {dag_id: "$2", task_id: "$3"}
  - match: "*.ti.finish.*.*.*"
    name: "airflow_ti_finish"
    labels: {dag_id: "$2", task_id: "$3", state: "$4"}
  - match: "*.pool.open_slots.*"
    name: "airflow_pool_open_slots"
    labels: {pool: "$2"}
  - match: "*.pool.queued_slots.*"
    name: "airflow_pool_queued_slots"
    labels: {pool: "$2"}
  - match: "*.pool.running_slots.*"
    name: "airflow_pool_running_slots"
    labels: {pool: "$2"}
  - match: "*.executor.open_slots"
    name: "airflow_executor_open_slots"
  - match: "*.executor.queued_tasks"
    name: "airflow_executor_queued_tasks"
  - match: "*.executor.running_tasks"
    name: "airflow_executor_running_tasks"
"""


def metrics_env(enabled: bool, naming: Naming) -> list[EnvVarArgsDict]:
    if not enabled:
        return []
    return [
        plain_env("AIRFLOW__METRICS__STATSD_ON", "True"),
        plain_env("AIRFLOW__METRICS__STATSD_HOST", naming.service_host(COMPONENT)),
        plain_env("AIRFLOW__METRICS__STATSD_PORT", str(STATSD_PORT)),
        plain_env("AIRFLOW__METRICS__STATSD_PREFIX", "airflow"),
    ]


def scrape_annotations() -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(METRICS_PORT),
        "prometheus.io/path": "/metrics",
    }


def exporter_service_spec(naming: Naming) -> ServiceSpecArgsDict:
    return {
        "selector": naming.labels(COMPONENT),
        "ports": [
            {"name": "statsd", "port": STATSD_PORT, "target_port": "statsd", "protocol": "UDP"},
            {"name": "metrics", "port": METRICS_PORT, "target_port": "metrics"},
        ],
    }


def exporter_deployment_spec(
    metrics: Metrics, naming: Naming, mapping_checksum: str
) -> DeploymentSpecArgsDict:
    probe: ProbeArgsDict = {
        "http_get": {"path": "/metrics", "port": "metrics"},
        "period_seconds": 20,
    }
    return {
        "replicas": 1,
        "selector": {"match_labels": naming.labels(COMPONENT)},
        "template": {
            "metadata": {
                "labels": naming.labels(COMPONENT),
                "annotations": {**scrape_annotations(), "checksum/mappings": mapping_checksum},
            },
            "spec": {
                "service_account_name": naming.object(COMPONENT),
                "automount_service_account_token": False,
                "security_context": pod_security_context(EXPORTER_UID, EXPORTER_UID),
                "containers": [
                    {
                        "name": "statsd-exporter",
                        "image": metrics.image,
                        "args": [
                            f"--statsd.mapping-config=/etc/statsd-exporter/{MAPPING_FILE}",
                            f"--statsd.listen-udp=:{STATSD_PORT}",
                            f"--web.listen-address=:{METRICS_PORT}",
                        ],
                        "ports": [
                            {"name": "statsd", "container_port": STATSD_PORT, "protocol": "UDP"},
                            {"name": "metrics", "container_port": METRICS_PORT},
                        ],
                        "volume_mounts": [
                            {"name": "mappings", "mount_path": "/etc/statsd-exporter"}
                        ],
                        "liveness_probe": probe,
                        "readiness_probe": probe,
                        "resources": resource_requirements(metrics.resources),
                        "security_context": container_security_context(),
                    }
                ],
                "volumes": [{"name": "mappings", "config_map": {"name": naming.object(COMPONENT)}}],
            },
        },
    }


def service_monitor_spec(naming: Naming) -> dict[str, object]:
    return {
        "selector": {"matchLabels": naming.labels(COMPONENT)},
        "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
    }

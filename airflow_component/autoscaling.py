"""Autoscaling: an HPA for the api-server, a KEDA ScaledObject for Celery workers."""

from __future__ import annotations

from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscalerSpecArgsDict

from .naming import Naming
from .resolve import ResolvedConfig


def api_server_hpa_spec(
    config: ResolvedConfig, naming: Naming
) -> HorizontalPodAutoscalerSpecArgsDict:
    settings = config.autoscaling.api_server
    return {
        "scale_target_ref": {
            "api_version": "apps/v1",
            "kind": "Deployment",
            "name": naming.object("api-server"),
        },
        "min_replicas": settings.min_replicas,
        "max_replicas": settings.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "average_utilization": settings.target_cpu_percent,
                    },
                },
            }
        ],
    }


def worker_scaled_object_spec(config: ResolvedConfig, naming: Naming) -> dict[str, object]:
    """KEDA: as many workers as queued + running Celery tasks need, at `concurrency` each."""
    assert config.celery is not None
    settings = config.autoscaling.celery_workers
    concurrency = config.celery.workers.concurrency
    query = (
        f"SELECT ceil(COUNT(*)::decimal / {concurrency}) FROM task_instance "
        "WHERE (state='running' OR state='queued') AND executor IS DISTINCT FROM "
        "'KubernetesExecutor'"
    )
    return {
        "scaleTargetRef": {"name": naming.object("worker")},
        "minReplicaCount": settings.min_replicas,
        "maxReplicaCount": settings.max_replicas,
        # Celery workers drain slowly; do not flap.
        "cooldownPeriod": 300,
        "pollingInterval": 15,
        "triggers": [
            {
                "type": "postgresql",
                "metadata": {"targetQueryValue": "1", "query": query},
                "authenticationRef": {"name": naming.object("keda-postgres")},
            }
        ],
    }


def keda_trigger_authentication_spec(metadata_secret: str) -> dict[str, object]:
    return {
        "secretTargetRef": [
            {"parameter": "connection", "name": metadata_secret, "key": "keda-connection"}
        ]
    }

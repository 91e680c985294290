"""Autoscaling: an HPA for the api-server, a KEDA ScaledObject for Celery workers."""

from __future__ import annotations

from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscalerSpecArgsDict

from .naming import Naming
from .resolve import ResolvedConfig
from .secrets import KEDA_CONNECTION, SecretRefs, metadata_endpoint, metadata_secret_name


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


def worker_scaled_object_spec(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs
) -> dict[str, object]:
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
                "metadata": {
                    "targetQueryValue": "1",
                    "query": query,
                    **keda_connection_metadata(config, naming, secrets),
                },
                "authenticationRef": {"name": naming.object("keda-postgres")},
            }
        ],
    }


def keda_connection_metadata(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs
) -> dict[str, str]:
    """Where the scaler connects when the password is in a Secret we do not own (no URL of ours
    to hand it): host, port, database, user and sslmode are not secret."""
    if secrets.metadata_connection is not None:
        return {}
    endpoint = metadata_endpoint(config, naming)
    return {
        "host": endpoint.host,
        "port": str(endpoint.port),
        "dbName": endpoint.database,
        "userName": endpoint.user,
        "sslmode": endpoint.sslmode or "disable",
    }


def keda_trigger_authentication_spec(naming: Naming, secrets: SecretRefs) -> dict[str, object]:
    """The scaler's credentials: our libpq URL Secret, or the password in the user's Secret."""
    if secrets.metadata_connection is not None:
        return {
            "secretTargetRef": [
                {
                    "parameter": "connection",
                    "name": metadata_secret_name(naming),
                    "key": KEDA_CONNECTION,
                }
            ]
        }
    password = secrets.metadata_password
    assert password is not None
    return {
        "secretTargetRef": [{"parameter": "password", "name": password.name, "key": password.key}]
    }

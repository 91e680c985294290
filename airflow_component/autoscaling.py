"""Autoscaling: an HPA for the api-server, a KEDA ScaledObject for Celery workers."""

from __future__ import annotations

from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscalerSpecArgsDict

from .naming import Naming
from .resolve import CeleryWorkers, ResolvedConfig
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


def sql_literal(text: str) -> str:
    """A SQL string literal: quotes doubled, as PostgreSQL reads standard strings."""
    return "'" + text.replace("'", "''") + "'"


def celery_tasks_condition(config: ResolvedConfig) -> str:
    """Task instances the CeleryExecutor runs: the ones naming it, and, when it is the default
    executor, the ones naming none (`task_instance.executor` is NULL then)."""
    named = "executor = 'CeleryExecutor' OR executor LIKE '%.CeleryExecutor'"
    if config.executors[0] == "CeleryExecutor":
        return f"(executor IS NULL OR {named})"
    return f"({named})"


def worker_scaled_object_spec(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs, pool: CeleryWorkers
) -> dict[str, object]:
    """KEDA: as many of this pool's workers as its queued + running Celery tasks need, at
    `concurrency` each. Only this pool's queues count: another pool's backlog never scales it."""
    queues = ", ".join(sql_literal(queue) for queue in pool.queues)
    query = (
        f"SELECT ceil(COUNT(*)::decimal / {pool.concurrency}) FROM task_instance "
        f"WHERE state IN ('queued', 'running') AND queue IN ({queues}) "
        f"AND {celery_tasks_condition(config)}"
    )
    return {
        "scaleTargetRef": {"name": naming.object(pool.component)},
        "minReplicaCount": pool.autoscaling.min_replicas,
        "maxReplicaCount": pool.autoscaling.max_replicas,
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
                "authenticationRef": {"name": keda_authentication_name(naming)},
            }
        ],
    }


def keda_authentication_name(naming: Naming) -> str:
    return naming.object("keda-postgres")


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

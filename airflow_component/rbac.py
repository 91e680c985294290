"""ServiceAccounts: one per component, no token mounted where the Kubernetes API is not used."""

from __future__ import annotations

from .naming import Naming
from .resource_args import ServiceAccountArgs

# Every component that runs pods; "jobs" covers the migration and admin-user Jobs.
AIRFLOW_SERVICE_ACCOUNTS = ("api-server", "scheduler", "dag-processor", "triggerer", "jobs")


def service_account_components(in_cluster_postgres: bool) -> tuple[str, ...]:
    return AIRFLOW_SERVICE_ACCOUNTS + (("postgres",) if in_cluster_postgres else ())


def service_account_manifest(naming: Naming, component: str) -> ServiceAccountArgs:
    return {
        "metadata": {
            "name": naming.object(component),
            "namespace": naming.namespace,
            "labels": naming.metadata_labels(component),
        },
        # Tokens are mounted per pod where needed, never by default.
        "automount_service_account_token": False,
    }

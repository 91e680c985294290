"""Object names and labels, all derived from the component's name so two instances never collide."""

from __future__ import annotations

from dataclasses import dataclass

# Ports fixed by the Airflow image and the official chart's conventions.
API_SERVER_PORT = 8080
SCHEDULER_HEALTH_PORT = 8974
WORKER_LOG_SERVER_PORT = 8793
POSTGRES_PORT = 5432
REDIS_PORT = 6379
PGBOUNCER_PORT = 6432
FLOWER_PORT = 5555

AIRFLOW_HOME = "/opt/airflow"
DAGS_FOLDER = f"{AIRFLOW_HOME}/dags"
LOGS_FOLDER = f"{AIRFLOW_HOME}/logs"
AIRFLOW_UID = 50000
AIRFLOW_GID = 0


AIRFLOW_PROCESS_LABEL = "airflow-k8s/airflow-process"


@dataclass(frozen=True)
class Naming:
    """Names of every Kubernetes object of one AirflowCluster instance."""

    release: str
    namespace: str

    def object(self, component: str) -> str:
        return f"{self.release}-{component}"

    def labels(self, component: str) -> dict[str, str]:
        """Selector-safe labels: never include anything that changes between releases."""
        return {
            "app.kubernetes.io/name": "airflow",
            "app.kubernetes.io/instance": self.release,
            "app.kubernetes.io/component": component,
        }

    def airflow_pod_labels(self, component: str) -> dict[str, str]:
        """Pod labels of Airflow processes: NetworkPolicies grant database access by this."""
        return {**self.labels(component), AIRFLOW_PROCESS_LABEL: "true"}

    def metadata_labels(self, component: str) -> dict[str, str]:
        return {**self.labels(component), "app.kubernetes.io/managed-by": "pulumi"}

    def service_host(self, component: str) -> str:
        return f"{self.object(component)}.{self.namespace}.svc.cluster.local"

    @property
    def api_server_url(self) -> str:
        return f"http://{self.service_host('api-server')}:{API_SERVER_PORT}"

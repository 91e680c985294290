"""airflow-k8s: Apache Airflow 3 on Kubernetes as one Pulumi component."""

from .component import TYPE_TOKEN, AirflowCluster
from .config import AirflowConfig, parse_config
from .versions import AIRFLOW_VERSION

__all__ = ["AIRFLOW_VERSION", "TYPE_TOKEN", "AirflowCluster", "AirflowConfig", "parse_config"]

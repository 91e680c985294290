"""airflow-k8s: Apache Airflow 3 on Kubernetes as one Pulumi component.

The public API: `AirflowCluster(name, AirflowClusterArgs(config=AirflowConfig(...)), opts)`,
and for Pulumi programs driven by stack files, `AirflowClusterArgs.from_stack_config`.
"""

from .component import (
    TYPE_TOKEN,
    AirflowCluster,
    AirflowClusterArgs,
    release_name_from_stack_config,
    render_provider,
)
from .config import CONFIG_KEY, CONFIG_NAMESPACE, AirflowConfig, parse_config
from .versions import AIRFLOW_VERSION

__all__ = [
    "AIRFLOW_VERSION",
    "CONFIG_KEY",
    "CONFIG_NAMESPACE",
    "TYPE_TOKEN",
    "AirflowCluster",
    "AirflowClusterArgs",
    "AirflowConfig",
    "parse_config",
    "release_name_from_stack_config",
    "render_provider",
]

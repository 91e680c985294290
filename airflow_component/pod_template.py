"""The KubernetesExecutor's pod template: one task pod, built like every other Airflow pod.

The template goes into a ConfigMap as YAML, so it is converted here from the SDK's snake_case
argument dicts to the API's camelCase. It holds secret *references* only, never values.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import yaml

from .airflow_env import AirflowRuntime, airflow_container, airflow_pod_spec
from .naming import Naming

BASE_CONTAINER = "base"
TASK_POD_COMPONENT = "task-pod"
TEMPLATE_FILE = "pod_template_file.yaml"
# Values under these keys are user maps (label keys, quantities): never rename their keys.
_MAP_FIELDS = {"labels", "annotations", "match_labels", "node_selector", "requests", "limits"}


def _camel(key: str) -> str:
    key = key.rstrip("_")  # `exec_` is the SDK's spelling of `exec`
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), key)


def to_api_case(value: Any) -> Any:
    """SDK argument dicts (snake_case) to Kubernetes API objects (camelCase)."""
    if isinstance(value, dict):
        return {
            _camel(key): (item if key in _MAP_FIELDS else to_api_case(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [to_api_case(item) for item in value]
    return value


def task_pod_service_account(naming: Naming) -> str:
    return naming.object(TASK_POD_COMPONENT)


def pod_template(runtime: AirflowRuntime) -> dict[str, Any]:
    settings = runtime.config.kubernetes_executor
    assert settings is not None and settings.worker_resources is not None
    # The executor sets the command; everything else matches the other Airflow pods.
    base = airflow_container(
        runtime, BASE_CONTAINER, [], settings.worker_resources, reads_dags=True
    )
    del base["args"]
    spec = airflow_pod_spec(
        runtime,
        task_pod_service_account(runtime.naming),
        [base],
        wait_for_migrations=False,
        reads_dags=True,
        dag_sidecar=False,
        api_access=runtime.config.kubernetes_pod_operator.enabled,
        restart_policy="Never",
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "placeholder-name",
            "namespace": runtime.naming.namespace,
            "labels": runtime.naming.airflow_pod_labels(TASK_POD_COMPONENT),
        },
        "spec": to_api_case(spec),
    }


def pod_template_yaml(runtime: AirflowRuntime) -> str:
    return yaml.safe_dump(pod_template(runtime), sort_keys=False)


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

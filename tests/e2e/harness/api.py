"""A small client for Airflow 3's public API, and the DAG scenario every run goes through."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DAG_ID = "e2e_smoke"
TASKS = ("produce", "consume")
VARIABLE_KEY = "e2e_greeting"


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:2000]}")
        self.status = status
        self.body = body


@dataclass
class ApiClient:
    base_url: str  # http://127.0.0.1:<port>
    host_header: str | None = None  # what an Ingress would pass on
    forwarded_proto: str | None = None
    token: str | None = None

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
        headers = {"Accept": "application/json"}
        if self.host_header:
            headers["Host"] = self.host_header
        if self.forwarded_proto:
            headers["X-Forwarded-Proto"] = self.forwarded_proto
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read().decode()
        except urllib.error.HTTPError as error:
            raise ApiError(
                method, path, error.code, error.read().decode(errors="replace")
            ) from error
        return json.loads(raw) if raw else None

    def login(self, username: str, password: str) -> str:
        """`POST /auth/token` (SimpleAuthManager and FAB auth manager alike)."""
        answer = self.request("POST", "/auth/token", {"username": username, "password": password})
        self.token = answer["access_token"]
        return self.token


@dataclass
class DagRunResult:
    run_id: str
    state: str
    seconds_to_finish: float
    variable_value: str
    task_states: dict[str, str] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    finished_at: float = 0.0


def wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    alive: Callable[[], None] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if alive:
            alive()
        try:
            result = check()
            if result:
                return result
        except (ApiError, OSError) as error:
            last = error
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s (last error: {last})")


FINAL_RUN_STATES = ("success", "failed")


def run_final_state(
    client: ApiClient,
    dag_id: str,
    run_id: str,
    *,
    what: str,
    timeout: float,
    alive: Callable[[], None] | None = None,
) -> str:
    """Wait until a DAG run has ended; its final state."""
    path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"

    def finished() -> str | None:
        state = str(client.request("GET", path)["state"])
        return state if state in FINAL_RUN_STATES else None

    return str(wait_for(what, finished, timeout, interval=1.0, alive=alive))


def task_log(client: ApiClient, run_id: str, task_id: str) -> str:
    path = (
        f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        f"/taskInstances/{task_id}/logs/1?full_content=true"
    )
    answer = client.request("GET", path)
    content = answer.get("content") if isinstance(answer, dict) else answer
    return json.dumps(content) if not isinstance(content, str) else content


def run_smoke_dag(
    client: ApiClient,
    timeout: float = 240,
    alive: Callable[[], None] | None = None,
) -> DagRunResult:
    """Set the Variable, unpause and trigger the DAG, wait for `success`, read both task logs."""
    greeting = f"hello-{secrets.token_hex(6)}"
    try:
        client.request("POST", "/api/v2/variables", {"key": VARIABLE_KEY, "value": greeting})
    except ApiError as error:
        if error.status != 409:
            raise
        client.request(
            "PATCH", f"/api/v2/variables/{VARIABLE_KEY}", {"key": VARIABLE_KEY, "value": greeting}
        )
    stored = client.request("GET", f"/api/v2/variables/{VARIABLE_KEY}")
    assert stored["value"] == greeting, stored

    run_id = trigger(client, DAG_ID, timeout, alive)
    started = time.monotonic()
    state = run_final_state(
        client, DAG_ID, run_id, what=f"DAG run {run_id} finished", timeout=timeout, alive=alive
    )
    result = DagRunResult(
        run_id=run_id,
        state=state,
        seconds_to_finish=time.monotonic() - started,
        variable_value=greeting,
        finished_at=time.monotonic(),
    )
    instances = client.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
    result.task_states = {ti["task_id"]: ti["state"] for ti in instances["task_instances"]}
    for task_id in TASKS:
        try:
            result.logs[task_id] = task_log(client, run_id, task_id)
        except ApiError as error:
            result.logs[task_id] = f"<log fetch failed: {error}>"
    return result


SECRET_SCOPE_DAG = "e2e_secret_scope"
SECRET_SCOPE_TASK = "look_for_secrets"


def trigger(
    client: ApiClient,
    dag_id: str,
    timeout: float,
    alive: Callable[[], None] | None = None,
    conf: dict[str, Any] | None = None,
) -> str:
    """Wait until the dag-processor parsed `dag_id`, unpause it, start a run; returns its id."""
    wait_for(
        f"DAG {dag_id} parsed by the dag-processor",
        lambda: client.request("GET", f"/api/v2/dags/{dag_id}"),
        timeout,
        alive=alive,
    )
    client.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    run_id = f"e2e__{secrets.token_hex(4)}"
    body: dict[str, Any] = {"dag_run_id": run_id, "logical_date": None}
    if conf is not None:
        body["conf"] = conf
    client.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
    return run_id


def _task_path(dag_id: str, run_id: str, task_id: str) -> str:
    run = urllib.parse.quote(run_id, safe="")
    return f"/api/v2/dags/{dag_id}/dagRuns/{run}/taskInstances/{task_id}"


def task_state(client: ApiClient, dag_id: str, run_id: str, task_id: str) -> str | None:
    state = client.request("GET", _task_path(dag_id, run_id, task_id)).get("state")
    return str(state) if state else None


def run_secret_scope_dag(
    client: ApiClient,
    needles: dict[str, str],
    timeout: float = 240,
    alive: Callable[[], None] | None = None,
) -> tuple[str, list[str], str]:
    """Run the hostile task with these secret values; returns (state, labels found, log)."""
    dag_id = SECRET_SCOPE_DAG
    run_id = trigger(client, dag_id, timeout, alive, conf={"needles": needles})
    state = run_final_state(
        client, dag_id, run_id, what=f"DAG run {run_id} finished", timeout=timeout, alive=alive
    )
    path = f"{_task_path(dag_id, run_id, SECRET_SCOPE_TASK)}/logs/1?full_content=true"
    answer = client.request("GET", path)
    content = answer.get("content") if isinstance(answer, dict) else answer
    lines = (
        [str(e.get("event", "")) if isinstance(e, dict) else str(e) for e in content]
        if isinstance(content, list)
        else str(content).splitlines()
    )
    marker = "E2E-SECRETS-FOUND "
    found: list[str] = []
    for line in lines:
        if marker in line:
            found = json.loads(line.split(marker, 1)[1].strip())
    return state, found, "\n".join(lines)

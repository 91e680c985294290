"""The log-groomer sidecar's script under a real bash: old log files go, new ones stay, and it
ends promptly on SIGTERM (it is its container's first process, which bash would ignore)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.harness.kubelet import expand_command
from tests.support.rendering import render_stack


def groomer(stack: str = "local") -> dict:
    scheduler = render_stack(stack).one("Deployment", "airflow-scheduler")
    containers = scheduler.inputs["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "log-groomer"]
    return container


def test_old_logs_are_deleted_new_kept_and_sigterm_ends_it(tmp_path: Path) -> None:
    container = groomer()
    logs = tmp_path / "logs"
    old = logs / "dag_id=d" / "run_id=r" / "task_id=t" / "attempt=1.log"
    new = logs / "dag_id=d" / "run_id=s" / "task_id=t" / "attempt=1.log"
    other = logs / "scheduler" / "keep.txt"
    for path in (old, new, other):
        path.parent.mkdir(parents=True)
        path.write_text("log line\n")
    month_ago = time.time() - 30 * 24 * 3600  # beyond the default 15 days
    os.utime(old, (month_ago, month_ago))
    os.utime(other, (month_ago, month_ago))
    env = {e["name"]: e["value"] for e in container["env"]}
    env["LOG_FOLDER"] = str(logs)  # the kubelet's mount, here a temporary directory
    command, _ = expand_command(container, env)  # as the kubelet does: `$$` -> `$`
    process = subprocess.Popen(
        command, env={**env, "PATH": "/usr/bin:/bin"}, start_new_session=True
    )
    deadline = time.monotonic() + 20
    while old.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not old.exists() and not old.parent.exists(), "an old log (or its empty folder) stayed"
    assert new.exists(), "a recent log was deleted"
    assert other.exists(), "only *.log files are Airflow's to delete"
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=5) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its `sleep`, as the runtime would

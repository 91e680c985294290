"""The end-to-end suite's hostile task: what secrets can DAG authors' code find where it runs?

The test passes the deployment's secret values as `params.needles` (label -> value). The task
looks for each of them where any task code could: its environment, the environment of the
processes it runs under in the same container (`/proc/<pid>/environ`, readable even after
Airflow scrubs its own copy), and every file of its container's filesystem, mounts included.
It prints only the labels it found, never a value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

SKIPPED_DIRS = {"site-packages", "__pycache__", "proc", "sys", "dev", ".git"}
MAX_FILES = 20000
MAX_BYTES = 512 * 1024


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _process_environments() -> list[str]:
    """This process's environment and its ancestors' within the same container."""
    home = os.environ.get("AIRFLOW_HOME", "")
    found, pid = [], os.getpid()
    for _ in range(12):
        if pid <= 1:
            break
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            raw = ""  # Airflow makes its supervisor non-dumpable: try the processes above it
        if raw and f"AIRFLOW_HOME={home}\0" not in raw + "\0":
            break  # left the container's processes
        found.append(raw)
        try:
            pid = _parent(pid)
        except OSError:
            break
    return found


def _files(root: Path) -> list[str]:
    texts: list[str] = []
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS]
        for name in names:
            path = Path(directory, name)
            try:
                if path.is_file() and path.stat().st_size <= MAX_BYTES:
                    texts.append(path.read_bytes().decode(errors="replace"))
            except OSError:
                continue
            if len(texts) >= MAX_FILES:
                return texts
    return texts


with DAG(
    dag_id="e2e_secret_scope",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
    params={"needles": {}},
):

    @task
    def look_for_secrets(params: dict[str, object] | None = None) -> None:
        needles: dict[str, str] = dict((params or {}).get("needles") or {})
        # The container's root: AIRFLOW_HOME is /opt/airflow inside it.
        root = Path(os.environ["AIRFLOW_HOME"]).parents[1]
        haystacks = [*os.environ.values(), *_process_environments(), *_files(root)]
        found = sorted(
            label for label, value in needles.items() if any(value in h for h in haystacks)
        )
        print("E2E-SECRETS-FOUND " + json.dumps(found))

    look_for_secrets()

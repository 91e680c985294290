"""The end-to-end suite's load: `tasks` task instances that must all run at the same time.

Each mapped instance checks in (a file in the container's temp directory, shared by every task
of one LocalExecutor scheduler or one Celery worker), then waits until all `tasks` have checked
in and holds its slot a few seconds more. So the run succeeds only if the executor really runs
`tasks` at once, and the memory peak of its container is that of a full executor.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pendulum
from airflow.sdk import DAG, get_current_context, task

with DAG(
    dag_id="e2e_load",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_tasks=256,
    params={"tasks": 2, "hold_seconds": 5, "wait_seconds": 240},
    tags=["e2e"],
):

    @task(retries=0)
    def slots() -> list[int]:
        return list(range(int(get_current_context()["params"]["tasks"])))

    @task(retries=0, max_active_tis_per_dag=256)
    def hold_a_slot(index: int) -> None:
        context = get_current_context()
        params = context["params"]
        wanted = int(params["tasks"])
        room = Path(tempfile.gettempdir()) / f"e2e-load-{context['run_id']}".replace(":", "_")
        room.mkdir(parents=True, exist_ok=True)
        (room / f"{index}-{os.getpid()}").touch()
        deadline = time.monotonic() + float(params["wait_seconds"])
        while (present := len(list(room.iterdir()))) < wanted:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {present} of {wanted} task slots ran at the same time")
            time.sleep(0.5)
        print(f"E2E-LOAD slot={index} all {wanted} running", flush=True)
        time.sleep(float(params["hold_seconds"]))

    hold_a_slot.expand(index=slots())

"""The end-to-end suite's exactly-once probe: every execution of a task appends one line
(run id, task id, try number) to a file the two schedulers' task processes both write to."""

from __future__ import annotations

import os
import time

import pendulum
from airflow.sdk import DAG, get_current_context, task

TASKS = 3

with DAG(
    dag_id="e2e_ha",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=32,
    tags=["e2e"],
):

    @task(retries=0)
    def record() -> None:
        context = get_current_context()
        ti = context["ti"]
        folder = os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
        line = f"{context['run_id']} {ti.task_id} {ti.try_number} {os.getpid()}\n"
        # One short O_APPEND write: lines from concurrent processes never interleave.
        path = os.path.join(folder, "e2e_ha-executions.log")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o664)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        time.sleep(1)

    for index in range(TASKS):
        record.override(task_id=f"record_{index}")()

"""The end-to-end suite's long task: still running when the test rolls the worker that runs it."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="e2e_long_task",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
):

    @task(retries=0)
    def sleep_then_succeed() -> None:
        for second in range(30):
            print(f"E2E-LONG-TASK second={second}", flush=True)
            time.sleep(1)
        print("E2E-LONG-TASK done", flush=True)

    sleep_then_succeed()

"""Worker pools: one task for the default queue and one routed to the `gpu` queue. Each prints
the host it ran on; the suite reads which worker ran it from the task instance's `hostname`."""

from __future__ import annotations

import socket

import pendulum
from airflow.sdk import DAG, task

with DAG(
    dag_id="e2e_queues",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
):

    @task(retries=0)
    def on_default_queue() -> str:
        print(f"E2E-QUEUE default ran on {socket.gethostname()}", flush=True)
        return socket.gethostname()

    @task(retries=0, queue="gpu")
    def on_gpu_queue() -> str:
        print(f"E2E-QUEUE gpu ran on {socket.gethostname()}", flush=True)
        return socket.gethostname()

    on_default_queue()
    on_gpu_queue()

"""Served from a Git bundle by the real-Airflow suite, which commits it twice with a different
VERSION. A run holds in `wait_for_release` until the suite sets the Variable, then reports the
VERSION of the checkout it runs from: a run started before the second commit must report the
first."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import DAG, Variable, task

VERSION = "v1"

with DAG(
    dag_id="e2e_bundle_version",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=f"bundle version {VERSION}",
    tags=["e2e", VERSION],
):

    @task(retries=0)
    def wait_for_release() -> None:
        deadline = time.monotonic() + 300
        while Variable.get("e2e_bundle_release", default=None) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("the suite never released the run")
            time.sleep(1)

    @task(retries=0)
    def report() -> str:
        print(f"E2E-BUNDLE ran version {VERSION}", flush=True)
        return VERSION

    wait_for_release() >> report()

"""An example DAG for the local stack: save a change here and it shows up in Airflow."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example"],
)
def example_etl() -> None:
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def load(numbers: list[int]) -> None:
        print(f"loaded {sum(numbers)}")

    load(extract())


example_etl()

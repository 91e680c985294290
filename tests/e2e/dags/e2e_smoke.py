"""The end-to-end suite's DAG: two tasks passing an XCom, the first reading a Variable.

`produce` reads the Variable the test sets through the REST API (through the Execution API) and
prints it; `consume` receives it as an XCom and prints it again. The test then finds both lines
in the task logs it fetches through the api-server (served by the scheduler's log server).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Variable, task

with DAG(
    dag_id="e2e_smoke",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["e2e"],
):

    @task
    def produce() -> dict[str, object]:
        greeting = Variable.get("e2e_greeting")
        print(f"E2E-PRODUCE variable={greeting}")
        return {"greeting": greeting, "answer": 42}

    @task
    def consume(payload: dict[str, object]) -> None:
        if payload.get("answer") != 42:
            raise ValueError(f"unexpected XCom {payload!r}")
        print(f"E2E-CONSUME xcom={payload['greeting']}-{payload['answer']}")

    consume(produce())

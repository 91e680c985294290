"""Celery worker pools, run for real.

- Routing: a `local` rendering switched to the CeleryExecutor with a second pool, `gpu`, that
  consumes the `gpu` queue. The `e2e_queues` DAG has one task that names no queue and one routed
  to `gpu`; each must run on its own pool's worker (each task returns its pod's hostname).
  Not shown here: the api-server fetching each pool's task logs. Every pod shares this machine's
  network, so only one worker's log server can bind port 8793; the flow is checked under mocks
  (NetworkPolicies allow the api-server to reach each pool's log port).
- Autoscaling: each pool's KEDA query, as rendered, runs on the real PostgreSQL against a
  `task_instance` table of known rows. The rule it must follow: a pool counts the queued and
  running task instances of its own queues that the CeleryExecutor runs (named, or unnamed when
  Celery is the default executor), divided by its concurrency, rounded up.
"""

from __future__ import annotations

import copy
import math
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from .harness.api import run_final_state, trigger
from .harness.stack import StackRun, execute, prepare_stack, stopped_on_failure

pytestmark = pytest.mark.e2e

GPU_POOL = {"name": "gpu", "queues": ["gpu"], "concurrency": 2}
API_WORKERS = 3
DAG_ID = "e2e_queues"


def pools_cluster() -> dict[str, Any]:
    from tests.support.rendering import cluster_config

    raw = copy.deepcopy(cluster_config("local"))
    raw.update(
        {
            "executors": "CeleryExecutor",
            "celery": {"workers": {"concurrency": 2}, "workerPools": [GPU_POOL]},
            # Three uvicorn workers: their memory next to the one-worker stacks' (benchmark).
            "apiServer": {**raw.get("apiServer", {}), "workers": API_WORKERS},
        }
    )
    return raw


@pytest.fixture(scope="module")
def pools_run(airflow_venv, postgres_server, dag_files, e2e_dir) -> Iterator[StackRun]:
    run = prepare_stack(
        "local",
        base_dir=e2e_dir / "pools",
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=pools_cluster(),
    )
    with stopped_on_failure("pools stack", run):
        execute(run)
    yield run
    run.stop()


def test_each_task_runs_on_the_pool_that_consumes_its_queue(pools_run: StackRun) -> None:
    client, cluster = pools_run.client, pools_run.cluster
    assert client is not None
    assert pools_run.result is not None and pools_run.result.state == "success"
    run_id = trigger(client, DAG_ID, timeout=180, alive=cluster.check_alive)
    quoted = urllib.parse.quote(run_id, safe="")
    state = run_final_state(
        client, DAG_ID, run_id, what="the queues run", timeout=300, alive=cluster.check_alive
    )
    answer = client.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances")
    instances = {ti["task_id"]: ti for ti in answer["task_instances"]}
    assert state == "success", {k: v["state"] for k, v in instances.items()}
    pods = {pod.name for pod in cluster.pods}
    default_pods = {p for p in pods if p.startswith("airflow-worker-") and "-gpu-" not in p}
    gpu_pods = {p for p in pods if p.startswith("airflow-worker-gpu-")}
    assert default_pods and gpu_pods, sorted(pods)
    # Each task returns the host it ran on: the pod's hostname (the task instance's `hostname`
    # is the pod IP, the same loopback address for every pod here).
    ran_on = {
        task: client.request(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/{task}/xcomEntries/return_value",
        )["value"]
        for task in instances
    }
    assert ran_on["on_default_queue"] in default_pods, (ran_on, sorted(pods))
    assert ran_on["on_gpu_queue"] in gpu_pods, (ran_on, sorted(pods))
    assert instances["on_gpu_queue"]["queue"] == "gpu"
    print_api_server_memory("pools", cluster, API_WORKERS)


def print_api_server_memory(label: str, cluster: Any, workers: int) -> None:
    """Benchmark: the api-server's peak with this many uvicorn workers (never asserted)."""
    from .test_stacks import MEMORY

    for report in cluster.memory_reports():
        if report.container.startswith("airflow-api-server") and report.container.endswith(
            "/api-server"
        ):
            line = f"MEMORY stack={label} apiServer.workers={workers} {report.line()}"
            print(f"\n[e2e] {line}")
            MEMORY.append(line)


# --- KEDA queries ----------------------------------------------------------------------------

# (state, queue, executor) rows; NULL executor: the task names none.
ROWS = [
    *[("queued", "default", None)] * 5,
    *[("running", "default", "CeleryExecutor")] * 3,
    ("running", "default", "airflow.providers.celery.executors.celery_executor.CeleryExecutor"),
    *[("success", "default", None)] * 7,
    *[("queued", "default", "KubernetesExecutor")] * 4,
    *[("queued", "gpu", None)] * 3,
    ("running", "gpu", "CeleryExecutor"),
    *[("failed", "gpu", None)] * 2,
    *[("queued", "bigmem", None)] * 9,
    ("deferred", "bigmem", None),
    *[("queued", "reports", "CeleryExecutor")] * 2,
    *[("queued", "nobody's", None)] * 6,
]


def expected_workers(queues: set[str], concurrency: int, executors: list[str]) -> int:
    """The rule, stated on its own: Celery's queued and running tasks of these queues."""

    def celery_runs(executor: str | None) -> bool:
        if executor is None:
            return executors[0] == "CeleryExecutor"
        return executor.split(".")[-1] == "CeleryExecutor"

    count = sum(
        1
        for state, queue, executor in ROWS
        if state in ("queued", "running") and queue in queues and celery_runs(executor)
    )
    return math.ceil(count / concurrency)


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize(
    "executors",
    [["CeleryExecutor", "KubernetesExecutor"], ["KubernetesExecutor", "CeleryExecutor"]],
)
def test_each_pool_scales_on_its_own_queues_only(postgres_server, executors: list[str]) -> None:
    from tests.support.rendering import cluster_config, render_stack

    raw = copy.deepcopy(cluster_config("prod"))
    raw["executors"] = ",".join(executors)
    raw["autoscaling"] = {"celeryWorkers": {"enabled": True, "maxReplicas": 50}}
    raw["celery"] = {
        **raw.get("celery", {}),
        "workerPools": [
            {"name": "gpu", "queues": ["gpu"], "concurrency": 1, "autoscaling": {"enabled": True}},
            {
                "name": "bigmem",
                "queues": ["bigmem", "reports"],
                "concurrency": 4,
                "autoscaling": {"enabled": True},
            },
        ],
    }
    rendering = render_stack("prod", cluster=raw)
    deployments = {
        d.object_name: d.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
        for d in rendering.of_kind("Deployment")
    }
    scaled = [r for r in rendering.resources if r.typ.endswith("ScaledObject")]
    assert len(scaled) == 3, [r.name for r in scaled]
    values = ",\n".join(f"({', '.join(_literal(v) for v in row)})" for row in ROWS)
    for scaled_object in scaled:
        spec = scaled_object.inputs["spec"]
        target = spec["scaleTargetRef"]["name"]
        # What the target Deployment consumes and how many at once, as its worker reads it.
        args = deployments[target]
        queues = set(args[args.index("--queues") + 1].split(","))
        concurrency = int(args[args.index("--concurrency") + 1])
        query = spec["triggers"][0]["metadata"]["query"]
        answer = postgres_server.psql(
            "CREATE TEMP TABLE task_instance (state text, queue text, executor text);\n"
            f"INSERT INTO task_instance VALUES {values};\n{query};\n"
        )
        got = int(float(answer.strip().splitlines()[-1]))
        assert got == expected_workers(queues, concurrency, executors), (target, query)

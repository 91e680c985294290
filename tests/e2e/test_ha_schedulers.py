"""Two schedulers at once (`scheduler.replicas: 2`), run for real on the `local` stack.

What the real world enforces: Airflow's schedulers share one database and coordinate through
row locks, so with two of them running every task of every DAG run executes exactly once
(one execution, try 1), whichever scheduler queued it. Both must be alive (each holds a running
SchedulerJob) and both must have queued work: otherwise "exactly once" would prove nothing.

Deviation (documented): the harness runs one pod per Deployment; the second replica is the same
rendered scheduler container started again as its own container (the pod's identity, mounts and
memory limit, its own hostname). Both replicas share this machine's network, so the second
one's health and log-server ports are moved by env (two pods on a cluster each have their own
IP); it shares the first one's emptyDirs, where the DAG's execution record is written.
"""

from __future__ import annotations

import collections
import copy
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness.api import ApiClient, trigger, wait_for
from .harness.procs import free_port
from .harness.services import PostgresServer
from .harness.stack import StackRun, prepare_stack, start_and_log_in

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_ha"
TASKS = 3  # tests/e2e/dags/e2e_ha.py
# Small batches: on a 2-core machine 16+ task processes at once starved the single-worker
# api-server until the tasks' Execution API calls timed out (a CI run failed so). More batches
# instead, until both schedulers have queued work.
RUNS_PER_BATCH = 3
MAX_BATCHES = 8
RECORD = "e2e_ha-executions.log"


@dataclass
class HaRun:
    run: StackRun
    database: str
    run_states: dict[str, str] = field(default_factory=dict)
    running_schedulers: int = 0
    queued_by: collections.Counter[str] = field(default_factory=collections.Counter)
    executions: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def ha_cluster() -> dict[str, Any]:
    from tests.support.rendering import cluster_config

    raw = copy.deepcopy(cluster_config("local"))
    raw["scheduler"] = {**raw.get("scheduler", {}), "replicas": 2}
    return raw


def start_second_scheduler(run: StackRun, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The rendered scheduler container, started again as a second replica."""
    (pod,) = [p for p in run.cluster.pods if p.workload.name == "airflow-scheduler"]
    container = pod.containers[0]
    health_port = free_port()
    overrides = {
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }
    log = open(log_path, "wb")  # noqa: SIM115 (closed with the process)
    if container.in_container:
        spec = pod.container_spec(container, None, {**container.env, **overrides})
        # Its own pod name, which its /etc/hosts resolves (Airflow names itself by its IP).
        spec.hostname = f"{pod.name}-replica-2"
        spec.hosts_file = log_path.with_name("replica-2-hosts")
        spec.hosts_file.write_text(f"127.0.0.1\tlocalhost\n127.0.0.1\t{spec.hostname}\n")
        runtime = run.cluster.runtime
        assert runtime is not None
        argv, env = runtime.run_argv(spec, remove=True), None
    else:
        argv, env = container.command(list(container.argv), overrides)
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, health_port


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def start_run(client: ApiClient, index: int) -> str:
    run_id = f"e2e_ha__{index}_{time.monotonic_ns()}"
    client.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None}
    )
    return run_id


@pytest.fixture(scope="module")
def ha(
    airflow_venv: Path, postgres_server: PostgresServer, dag_files: list[Path], e2e_dir: Path
) -> Iterator[HaRun]:
    from airflow_component.config import parse_config

    raw = ha_cluster()
    run = prepare_stack(
        "local",
        base_dir=e2e_dir / "ha",
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=raw,
    )
    result = HaRun(run=run, database=parse_config(raw).database.in_cluster.database)
    second = None
    try:
        client = start_and_log_in(run)
        second, health_port = start_second_scheduler(run, e2e_dir / "ha" / "scheduler-2.log")
        wait_for("the second scheduler healthy", lambda: healthy(health_port), 180)
        result.running_schedulers = int(
            postgres_server.psql(
                "SELECT count(*) FROM job WHERE job_type = 'SchedulerJob' AND state = 'running'"
                " AND latest_heartbeat > now() - interval '60 seconds';",
                result.database,
            ).strip()
        )
        started = time.monotonic()
        first = trigger(client, DAG_ID, 240, alive=run.cluster.check_alive)
        run_ids = [first]
        for batch in range(MAX_BATCHES):
            run_ids += [
                start_run(client, batch * RUNS_PER_BATCH + i) for i in range(RUNS_PER_BATCH)
            ]

            def all_finished(run_ids: list[str] = run_ids) -> bool:
                for run_id in run_ids:
                    if result.run_states.get(run_id) in ("success", "failed"):
                        continue
                    state = client.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
                    result.run_states[run_id] = state["state"]
                return all(s in ("success", "failed") for s in result.run_states.values())

            wait_for(
                f"batch {batch} of {DAG_ID} finished",
                all_finished,
                300,
                alive=run.cluster.check_alive,
            )
            rows = postgres_server.psql(
                f"SELECT queued_by_job_id FROM task_instance WHERE dag_id = '{DAG_ID}';",
                result.database,
            )
            result.queued_by = collections.Counter(line for line in rows.split() if line)
            if len(result.queued_by) >= 2:
                break
        result.seconds = time.monotonic() - started
        assert second.poll() is None, "the second scheduler exited"
        (record,) = run.cluster.base_dir.rglob(RECORD)
        result.executions = [
            (parts[0], parts[1], parts[2])
            for parts in (line.split() for line in record.read_text().splitlines())
        ]
    except BaseException:
        print(f"\n[e2e] HA run failed; process log tails:\n{run.cluster.log_tails()}")
        log = e2e_dir / "ha" / "scheduler-2.log"
        if log.exists():
            print(f"\n[e2e] second scheduler:\n{log.read_text(errors='replace')[-4000:]}")
        if second is not None:
            second.terminate()
        run.stop()
        raise
    print(
        f"\nBENCHMARK ha-schedulers runs={len(result.run_states)} tasks={TASKS} "
        f"seconds={result.seconds:.1f} queued_by_scheduler_job={dict(result.queued_by)}"
    )
    yield result
    second.terminate()
    try:
        second.wait(timeout=60)
    except subprocess.TimeoutExpired:
        second.kill()
    run.stop()


def test_two_schedulers_run_at_once_and_both_queue_work(ha: HaRun) -> None:
    assert ha.running_schedulers >= 2, ha.running_schedulers
    assert len(ha.queued_by) >= 2, dict(ha.queued_by)


def test_every_task_of_every_run_executes_exactly_once(ha: HaRun) -> None:
    assert ha.run_states and set(ha.run_states.values()) == {"success"}, ha.run_states
    counts = collections.Counter((run_id, task_id) for run_id, task_id, _ in ha.executions)
    expected = {(run_id, f"record_{i}") for run_id in ha.run_states for i in range(TASKS)}
    assert set(counts) == expected, sorted(set(counts) ^ expected)[:10]
    twice = {key: n for key, n in counts.items() if n != 1}
    assert not twice, twice
    assert {attempt for _, _, attempt in ha.executions} == {"1"}

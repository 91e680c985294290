"""Production features, run for real: declarative connections/variables/pools, Fernet key
rotation, and PgBouncer between Airflow and Postgres.

One extra `local` rendering carries all three (`connections`, `variables`, `pools`,
`fernet.previousKeys` with `generation: 2`, `pgbouncer.enabled`). The harness plays the operator's
`fernet-old` Secret with an OLD key and runs the rendered PgBouncer Deployment as a real
`pgbouncer` process, so every Airflow process (Jobs included) reaches the database through it.

Order: PgBouncer up; every Job but the rotation Job (db migrate, pools import); a Variable written
with ONLY the old key (as an Airflow deployment before the rotation would have stored it); the
rendered `airflow-rotate-fernet-<hash>` Job; the Deployments; the smoke DAG through the API.

Deviation (documented): under Pulumi mocks the generated key does not change with
`fernet.generation` (the fake RandomPassword is seeded by resource name only), so the "old" key is
a fresh Fernet key played by the harness, not the generation-1 rendering's key.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .harness.api import run_smoke_dag
from .harness.cluster import LocalPod, PreparedContainer
from .harness.stack import StackRun, log_in, prepare_stack, stopped_on_failure

pytestmark = pytest.mark.e2e

CONN_CONFIG_KEY = "airflow-k8s:e2eConnUri"
CONN_URI = "postgresql://u:p@db.example.com:5432/x"
DECLARED_VALUE = "declared-value"
ROTATED_KEY = "e2e_before_rotation"
ROTATED_VALUE = "written-with-the-old-key"
OLD_KEY_SECRET = ("fernet-old", "fernet-key")


def operations_cluster() -> dict[str, Any]:
    from tests.support.rendering import cluster_config

    raw = cluster_config("local")
    raw.update(
        {
            "connections": {"e2e_conn": {"fromConfig": CONN_CONFIG_KEY.split(":", 1)[1]}},
            "variables": {"e2e_declared": {"value": DECLARED_VALUE}},
            "pools": {"e2e_pool": {"slots": 3, "description": "e2e"}},
            "fernet": {
                "generation": 2,
                "previousKeys": [{"name": OLD_KEY_SECRET[0], "key": OLD_KEY_SECRET[1]}],
            },
            "pgbouncer": {"enabled": True},
            # A team's Airflow option: it must take effect in the running processes.
            "airflowConfig": {"core": {"dagbag_import_timeout": 123}},
        }
    )
    return raw


@dataclass
class CliResult:
    code: int
    output: str

    def lines(self) -> list[str]:
        return [line.strip() for line in self.output.splitlines()]


@dataclass
class OperationsRun:
    run: StackRun
    old_key: str
    new_key: str = ""
    rotation_env_key: str = ""
    write: CliResult | None = None
    reads: dict[str, CliResult] = field(default_factory=dict)


def airflow_cli(
    container: PreparedContainer, args: list[str], overrides: dict[str, str] | None = None
) -> CliResult:
    """`airflow <args>` as `kubectl exec` into the container runs it (a one-off copy of the
    container once it has ended): its env, identity, mounts and memory limit."""
    command, env = container.command(["airflow", *args], overrides)
    result = subprocess.run(
        command,
        env=env,
        cwd=str(container.cwd),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return CliResult(result.returncode, result.stdout + result.stderr)


def _pod(pods: list[LocalPod], prefix: str) -> LocalPod:
    found = [p for p in pods if p.workload.name.startswith(prefix)]
    assert len(found) == 1, f"expected one pod {prefix}*, got {[p.name for p in pods]}"
    return found[0]


@pytest.fixture(scope="module")
def operations(airflow_venv, postgres_server, dag_files, e2e_dir) -> Iterator[OperationsRun]:
    run = prepare_stack(
        "local",
        base_dir=e2e_dir / "operations",
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=operations_cluster(),
        extra_config={CONN_CONFIG_KEY: CONN_URI},
    )
    cluster = run.cluster
    old_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    # Play the operator: the Secret holding the key the deployment used before the rotation.
    cluster.store.secrets[(cluster.namespace, OLD_KEY_SECRET[0])] = {
        OLD_KEY_SECRET[1]: old_key.encode()
    }
    ops = OperationsRun(run=run, old_key=old_key)
    with stopped_on_failure("operations stack", run):
        t0 = time.monotonic()
        cluster.started_at = t0
        cluster.start_infrastructure()  # Redis if rendered, and PgBouncer
        all_jobs = list(cluster.jobs)
        rotation = [j for j in all_jobs if j[0].name.startswith("airflow-rotate-fernet-")]
        assert len(rotation) == 1, [j[0].name for j in all_jobs]
        cluster.jobs = [j for j in all_jobs if j not in rotation]
        cluster.run_jobs()
        migrate = _pod(cluster.job_pods, "airflow-db-migrate").containers[0]
        ops.write = airflow_cli(
            migrate,
            ["variables", "set", ROTATED_KEY, ROTATED_VALUE],
            {"AIRFLOW__CORE__FERNET_KEY": old_key},
        )
        assert ops.write.code == 0, ops.write.output[-3000:]
        cluster.jobs = rotation
        cluster.run_jobs()
        cluster.jobs = all_jobs
        rotate = _pod(cluster.job_pods, "airflow-rotate-fernet-").containers[0]
        ops.new_key = rotate.resolved_env["AIRFLOW_FERNET_KEY_CURRENT"]
        ops.rotation_env_key = rotate.resolved_env["AIRFLOW__CORE__FERNET_KEY"]
        run.timings["jobs"] = time.monotonic() - t0

        cluster.start_workloads()
        run.startup_seconds = cluster.wait_started(network_probes_only=True)
        client = log_in(run)
        run.result = run_smoke_dag(client, timeout=run.dag_timeout, alive=cluster.check_alive)
        run.timings["dag_finished"] = time.monotonic() - t0

        scheduler = _pod(cluster.pods, "airflow-scheduler").containers[0]
        calls = {
            "team_option": (["config", "get-value", "core", "dagbag_import_timeout"], None),
            "declared_variable": (["variables", "get", "e2e_declared"], None),
            "declared_connection": (["connections", "get", "e2e_conn", "-o", "json"], None),
            "rotated_with_rendered_keys": (["variables", "get", ROTATED_KEY], None),
            "rotated_with_new_key_only": (
                ["variables", "get", ROTATED_KEY],
                {"AIRFLOW__CORE__FERNET_KEY": ops.new_key},
            ),
            "rotated_with_old_key_only": (
                ["variables", "get", ROTATED_KEY],
                {"AIRFLOW__CORE__FERNET_KEY": old_key},
            ),
        }
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(airflow_cli, scheduler, args, overrides)
                for name, (args, overrides) in calls.items()
            }
            ops.reads = {name: future.result() for name, future in futures.items()}
        run.timings["cli_done"] = time.monotonic() - t0
    print(f"\n[e2e] operations stack: phases {run.timings}")
    yield ops
    run.stop()


def _pgbouncer_log(ops: OperationsRun) -> str:
    container = _pod(ops.run.cluster.infra_pods, "airflow-pgbouncer").containers[0]
    return Path(container.log_path).read_text(errors="replace")


def test_every_job_exited_zero(operations):
    names = {pod.workload.name: pod for pod in operations.run.cluster.job_pods}
    assert any(n.startswith("airflow-pools-") for n in names), sorted(names)
    assert any(n.startswith("airflow-rotate-fernet-") for n in names), sorted(names)
    for pod in names.values():
        for container in [*pod.init_containers, *pod.containers]:
            assert container.exit_code == 0, f"{container.label} exited {container.exit_code}"


def test_declared_pool_is_in_the_database(operations):
    client = operations.run.client
    assert client is not None
    pool = client.request("GET", "/api/v2/pools/e2e_pool")
    assert (pool["slots"], pool["description"]) == (3, "e2e"), pool


def test_declared_variable_and_connection_reach_airflow(operations):
    variable = operations.reads["declared_variable"]
    assert variable.code == 0 and DECLARED_VALUE in variable.lines(), variable.output[-3000:]
    connection = operations.reads["declared_connection"]
    assert connection.code == 0, connection.output[-3000:]
    start = connection.output.index("[") if "[" in connection.output else -1
    assert start >= 0, connection.output[-3000:]
    parsed = json.JSONDecoder().raw_decode(connection.output[start:])[0]
    conn = parsed[0] if isinstance(parsed, list) else parsed
    assert conn["conn_id"] == "e2e_conn"
    assert (conn["conn_type"], conn["host"], str(conn["port"])) == (
        "postgres",
        "db.example.com",
        "5432",
    )
    assert (conn["login"], conn["password"], conn["schema"]) == ("u", "p", "x")


def test_fernet_key_is_new_then_old(operations):
    """The kubelet's `$(VAR)` expansion assembled `[core] fernet_key` as `new,old`."""
    assert operations.new_key and operations.new_key != operations.old_key
    assert operations.rotation_env_key == f"{operations.new_key},{operations.old_key}"


def test_variable_written_before_rotation_reads_after_it(operations):
    reads = operations.reads
    both = reads["rotated_with_rendered_keys"]
    assert both.code == 0 and ROTATED_VALUE in both.lines(), both.output[-3000:]
    new_only = reads["rotated_with_new_key_only"]
    assert new_only.code == 0 and ROTATED_VALUE in new_only.lines(), (
        "after the rotation Job the Variable must decrypt with the new key alone (re-encrypted): "
        + new_only.output[-3000:]
    )
    old_only = reads["rotated_with_old_key_only"]
    assert ROTATED_VALUE not in old_only.lines(), "the old key alone still decrypts it"


def test_dag_runs_through_pgbouncer(operations):
    result = operations.run.result
    assert result is not None and result.state == "success", result
    log = _pgbouncer_log(operations)
    assert "login attempt: db=airflow user=airflow" in log, log[-3000:]
    operations.run.cluster.check_alive()


def test_a_team_option_takes_effect_in_the_running_scheduler(operations):
    """`airflowConfig: {core: {dagbag_import_timeout: 123}}`, read back by Airflow itself inside
    the running scheduler container."""
    read = operations.reads["team_option"]
    assert read.code == 0, read.output[-2000:]
    assert "123" in read.lines(), read.output[-2000:]

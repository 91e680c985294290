"""Each stack's rendered manifests, run as real Airflow 3 processes against a real PostgreSQL.

The `stack_run` fixture (conftest.py) renders the stack under Pulumi mocks, plays its database,
runs its Jobs to completion in registration order, starts every Deployment (init containers
first), waits for the rendered startup/readiness probes, logs in with the generated admin
credentials, sets a Variable and runs `tests/e2e/dags/e2e_smoke.py` through `/api/v2`, then runs
every rendered probe. These tests assert on what happened; the last one stops the processes and
checks the read-only root filesystems.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from .harness.api import DAG_ID, TASKS, run_final_state, task_state, trigger, wait_for

pytestmark = pytest.mark.e2e


def _airflow_containers(rendering) -> set[str]:
    names = set()
    for resource in rendering.kubernetes:
        if resource.kind not in ("Job", "Deployment", "StatefulSet"):
            continue
        spec = resource.inputs["spec"]["template"]["spec"]
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            if "airflow" in container["image"].split(":")[0].rsplit("/", 1)[-1]:
                names.add(f"{resource.object_name}-e2e/{container['name']}")
    return names


def test_every_rendered_airflow_container_ran(stack_run):
    """Nothing rendered is skipped: every Job/Deployment container (and init container) ran, and
    every Job and init container exited 0."""
    ran = {c.label for c in stack_run.cluster.all_containers if c.process is not None}
    assert _airflow_containers(stack_run.rendering) <= ran
    for container in stack_run.cluster.all_containers:
        if container.init or container.pod in stack_run.cluster.job_pods:
            assert container.exit_code == 0, f"{container.label} exited {container.exit_code}"


def test_admin_credentials_come_from_the_rendering(stack_run):
    """The password that logged in is the generated one the rendered admin Secret holds."""
    secrets = stack_run.rendering.secret_data()
    assert stack_run.admin_password in secrets.values()
    assert stack_run.client is not None and stack_run.client.token


def test_dag_run_succeeds(stack_run):
    result = stack_run.result
    assert result is not None
    assert result.state == "success", (
        f"DAG {DAG_ID} run {result.run_id} ended {result.state}; task states {result.task_states}"
    )
    assert result.task_states == dict.fromkeys(TASKS, "success")


def test_task_logs_are_served_through_the_api(stack_run):
    """The Variable reached the task (Execution API), the XCom reached the next task, and both
    task logs come back through the api-server from the scheduler's log server."""
    result = stack_run.result
    produce, consume = result.logs["produce"], result.logs["consume"]
    assert f"E2E-PRODUCE variable={result.variable_value}" in produce, produce[-3000:]
    assert f"E2E-CONSUME xcom={result.variable_value}-42" in consume, consume[-3000:]


def test_task_code_finds_only_the_secrets_its_executor_must_share(stack_run):
    """A hostile task searches its environment, its parent processes' environments and every
    file of its container for the deployment's secrets (README "Secret scope")."""
    assert stack_run.secret_scope is not None
    state, found, log = stack_run.secret_scope
    assert state == "success", log[-3000:]
    found = {"db-password" if label == "db-password-in-url" else label for label in found}
    assert "cfg-marker" in found, "the search did not read the container's mounted files"
    executor = stack_run.rendering.one("Deployment", "airflow-scheduler")
    env = {
        e["name"]: e for e in executor.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    default_executor = env["AIRFLOW__CORE__EXECUTOR"]["value"].split(",")[0]
    # Never where tasks run: the admin password.
    assert "admin-password" not in found
    if default_executor == "CeleryExecutor":
        # No token forging, no decrypting; the log server's key is forced on workers.
        assert not found & {"jwt-secret", "fernet-key"}, found
        assert "api-secret-key" in found
    else:
        # LocalExecutor tasks run inside the scheduler and see its secrets (documented).
        assert default_executor == "LocalExecutor"
        assert "jwt-secret" in found
    print(f"\n[e2e] stack {stack_run.stack}: a {default_executor} task found {sorted(found)}")


def test_rendered_probes_pass(stack_run):
    """Every liveness/readiness/startup probe of every running container, run like the kubelet."""
    assert stack_run.probes, "no probe rendered on any Deployment container"
    failed = [f"{p.container} {p.kind}: {p.detail}" for p in stack_run.probes if not p.ok]
    assert not failed, "\n".join(failed)
    probed = {p.container for p in stack_run.probes if p.kind == "livenessProbe"}
    unprobed = {c.label for c in stack_run.cluster.main_containers()} - probed
    assert not unprobed, f"containers without a livenessProbe: {sorted(unprobed)}"


def test_declared_container_ports_are_listening(stack_run):
    assert not stack_run.closed_ports, "\n".join(stack_run.closed_ports)


def test_metrics_reach_the_statsd_exporter(stack_run):
    """Where the stack renders a statsd exporter, the Airflow processes' metrics arrive there."""
    if not stack_run.cluster.played_statsd:
        print(f"\n[e2e] stack {stack_run.stack}: no statsd exporter rendered")
        return
    names = stack_run.statsd_metrics
    if not names:
        import subprocess

        has_statsd = subprocess.run(
            [str(stack_run.cluster.image.venv / "bin" / "python"), "-c", "import statsd"],
            capture_output=True,
            check=False,
        )
        assert has_statsd.returncode == 0, (
            "no metrics: the Airflow venv lacks the `statsd` package that the official image ships "
            "(install apache-airflow[...,statsd]); Airflow then silently sends nothing"
        )
    assert any(name.startswith("airflow.") for name in names), sorted(names)[:20]
    print(f"\n[e2e] stack {stack_run.stack}: {len(names)} statsd metric names received")


def _task_slots(stack_run) -> tuple[str, int]:
    """Where tasks run and how many at once, as the rendering configures it: a Celery worker's
    concurrency, else the scheduler's parallelism (LocalExecutor)."""
    for workload in ("airflow-worker", "airflow-scheduler"):
        matches = [
            r for r in stack_run.rendering.of_kind("Deployment") if r.object_name == workload
        ]
        if not matches:
            continue
        container = matches[0].inputs["spec"]["template"]["spec"]["containers"][0]
        where = f"{workload}-e2e/{container['name']}"
        if workload == "airflow-worker":
            # `airflow celery worker --concurrency N`, as the worker's own CLI reads it.
            args = list(container.get("args") or [])
            return where, int(args[args.index("--concurrency") + 1])
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        return where, int(env["AIRFLOW__CORE__PARALLELISM"])
    raise AssertionError("no worker and no scheduler rendered")


def test_a_full_executor_fits_its_memory_limits(stack_run):
    """Load: as many tasks at once as the rendering lets one container run (`parallelism` for
    LocalExecutor, worker `concurrency` for Celery), under the rendered memory limits enforced by
    the kernel. The run must succeed with every slot busy at the same moment, and the kernel must
    not have OOM-killed anything in any container. Peak memory per container is printed next to
    its limit (a benchmark, not asserted)."""
    cluster = stack_run.cluster
    if cluster.runtime is None:
        pytest.fail("containers ran as plain processes: no memory limit was enforced")
    runner, slots = _task_slots(stack_run)
    client, dag_id = stack_run.client, "e2e_load"
    run_id = trigger(client, dag_id, timeout=180, alive=cluster.check_alive, conf={"tasks": slots})
    state = run_final_state(
        client,
        dag_id,
        run_id,
        what=f"the load run ({slots} tasks at once in {runner})",
        timeout=420,
        alive=cluster.check_alive,
    )
    instances = client.request(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000"
    )["task_instances"]
    held = [ti for ti in instances if ti["task_id"] == "hold_a_slot"]
    reports = cluster.memory_reports()
    print(f"\n[e2e] stack {stack_run.stack}: load of {slots} tasks at once in {runner}: {state}")
    for report in reports:
        print(f"[e2e] stack {stack_run.stack}: memory {report.line()}")
        MEMORY.append(f"MEMORY stack={stack_run.stack} {report.line()}")
    killed = [r.line() for r in reports if r.oom_kills or r.oom_killed]
    assert not killed, "the kernel OOM-killed processes: " + "; ".join(killed)
    assert state == "success", {ti["map_index"]: ti["state"] for ti in held}
    assert len(held) == slots and all(ti["state"] == "success" for ti in held)
    assert any(r.container == runner and r.peak_bytes for r in reports), (
        f"no memory figures for {runner}"
    )


MEMORY: list[str] = []


def test_a_worker_rollout_lets_its_running_task_finish(stack_run):
    """A rollout stops a pod the Kubernetes way: SIGTERM to the container's first process
    (dumb-init), then terminationGracePeriodSeconds before SIGKILL. A Celery worker must stop
    taking tasks and finish the one it runs (warm shutdown), not kill it."""
    workers = [c for c in stack_run.cluster.main_containers() if c.label.endswith("/worker")]
    if not workers:
        print(f"\n[e2e] stack {stack_run.stack}: no Celery worker rendered")
        return
    (worker,) = workers
    deployment = stack_run.rendering.one("Deployment", "airflow-worker").inputs["spec"]
    grace = deployment["template"]["spec"]["terminationGracePeriodSeconds"]
    client, dag_id, task_id = stack_run.client, "e2e_long_task", "sleep_then_succeed"
    run_id = trigger(client, dag_id, timeout=180, alive=stack_run.cluster.check_alive)
    wait_for(
        "the long task running on the worker",
        lambda: task_state(client, dag_id, run_id, task_id) == "running" or None,
        120,
        interval=0.5,
    )
    started = time.monotonic()
    os.kill(worker.process.pid, signal.SIGTERM)
    final = wait_for(
        "the long task finished",
        lambda: ((s := task_state(client, dag_id, run_id, task_id)) in FINAL and s) or None,
        min(grace, 180),
        interval=0.5,
    )
    assert final == "success", f"the rollout ended the running task: {final}"
    code = worker.process.popen.wait(timeout=60)
    print(
        f"\n[e2e] stack {stack_run.stack}: rollout: task finished {final} and the worker exited "
        f"{code} {time.monotonic() - started:.1f}s after SIGTERM (grace {grace}s)"
    )


FINAL = {"success", "failed", "up_for_retry", "upstream_failed", "skipped"}


def _self_check_container(stack_run):
    found = [
        c
        for pod in stack_run.cluster.job_pods
        if pod.workload.name in stack_run.cluster.jobs_after_workloads
        for c in pod.containers
    ]
    assert len(found) == 1, [c.label for c in found]
    return found[0]


def test_the_self_check_job_runs_after_the_workloads_and_passes(stack_run):
    """The rendered self-check Job, run as `pulumi up` runs it (after the Deployments are ready),
    checks every flow a task depends on and passes on a working deployment."""
    container = _self_check_container(stack_run)
    assert container.exit_code == 0, stack_run.self_check_log
    log = stack_run.self_check_log
    assert "SELF-CHECK PASSED" in log, log
    expected = ["DNS", "metadata DB", "Execution API", "api-server login", "DAGs"]
    if stack_run.cluster.infrastructure and "Celery" in log:
        expected.append("Celery broker")
    if stack_run.git_server is not None:
        expected.append("DAG source (git) (TCP)")
        assert stack_run.git_server.connections > 0, "the git server was never contacted"
    missing = [name for name in expected if f"ok   {name}" not in log]
    assert not missing, f"checks that did not run: {missing}\n{log}"


def test_the_self_check_fails_naming_the_flow_a_policy_blocks(stack_run):
    """Every egress blocked (a container without a network, as a deny-all NetworkPolicy would
    leave it): the self-check exits non-zero with one line naming the first flow it needs and
    the config key to fix."""
    import subprocess

    container = _self_check_container(stack_run)
    argv, env = container.command(container.argv, network="none")
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    failed = [line for line in output.splitlines() if line.startswith("SELF-CHECK FAILED")]
    assert result.returncode != 0, output
    assert len(failed) == 1, output
    assert "metadata DB" in failed[0] and "fix: " in failed[0], failed[0]
    print(f"\n[e2e] stack {stack_run.stack}: blocked: {failed[0]}")


def _broken_database(container) -> dict[str, str]:
    """Env overrides that keep the DB path but give it a wrong password."""
    from urllib.parse import urlsplit, urlunsplit

    env = container.resolved_env
    if "AIRFLOW_METADATA_DB_PASSWORD" in env:  # the URL is composed from the password at runtime
        return {"AIRFLOW_METADATA_DB_PASSWORD": "wrong-password"}
    url = urlsplit(container.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    netloc = f"{url.username}:wrong-password@{url.hostname}:{url.port}"
    return {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urlunsplit(url._replace(netloc=netloc))}


def test_every_airflow_cron_job_runs_and_fails_on_a_wrong_password(stack_run):
    """What the CronJobs run, run now: each Airflow CronJob's Job template as a pod (its identity,
    mounts and limits) succeeds against the running deployment, and exits non-zero when the
    database rejects its credentials (a CronJob that hides failures fails silently for months)."""
    import subprocess

    cluster = stack_run.cluster
    names = [
        r.object_name
        for r in stack_run.rendering.of_kind("CronJob")
        if "airflow"
        in r.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"]
    ]
    assert names, "no Airflow CronJob rendered"
    for name in names:
        pod = cluster.cron_job_pod(name)
        pod.run_job(timeout=300)
        (container,) = pod.containers
        assert container.exit_code == 0
        argv, env = container.command(container.argv, _broken_database(container))
        broken = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        assert broken.returncode != 0, f"{name} succeeded with a wrong DB password"
        code = broken.returncode
        print(f"\n[e2e] stack {stack_run.stack}: CronJob {name}: ran; wrong password: exit {code}")


# --- Faults survived (day-2). They disturb the running deployment: after the tests that read
# it, before the one that stops it.


def _restart_exited(cluster) -> list[str]:
    """What the kubelet does for a pod with restartPolicy Always (or a Deployment for a pod an
    earlier test rolled): start again every main container that exited."""
    restarted = []
    for container in cluster.main_containers():
        if container.process is not None and container.process.poll() is not None:
            restarted.append(container.label)
            container.process.stop()
            container.pod._start(container)
    return restarted


def _kill_and_restart(cluster, suffix: str, restart_after: float):
    """SIGKILL to a container's process 1 (as `kill -9` or the OOM killer would), then the
    kubelet's restart of a container whose pod has restartPolicy Always (the same container
    spec, a new run) after `restart_after` seconds. Returns (container, time of the kill)."""
    (container,) = [c for c in cluster.main_containers() if c.label.endswith(suffix)]
    pid = container.process.root_pid
    assert pid, f"{container.label}: no process 1 found"
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    container.process.popen.wait(timeout=60)
    container.process.stop()
    time.sleep(restart_after)
    container.pod._start(container)
    return container, killed_at


def _ready_again(cluster, container, timeout: float = 240) -> float:
    """Seconds until the container's readiness probe (as rendered) passes again."""
    probe = container.manifest.get("readinessProbe") or container.manifest["livenessProbe"]
    started = time.monotonic()
    wait_for(
        f"{container.label} ready again",
        lambda: cluster.run_probe(container, probe)[0] or None,
        timeout,
        interval=1.0,
    )
    return time.monotonic() - started


def test_a_killed_scheduler_is_restarted_and_the_run_completes(stack_run):
    """SIGKILL to the scheduler while a task runs, restarted as the kubelet would. With Celery
    the task runs on a worker and finishes; the restarted scheduler completes the run. With the
    LocalExecutor the task ran inside the scheduler's container and died with it (Airflow then
    fails it by its heartbeat timeout, or retries it by the task's policy): there the check is
    that the restarted scheduler runs a new DAG run to success."""
    cluster, client = stack_run.cluster, stack_run.client
    _restart_exited(cluster)  # the worker an earlier test rolled
    celery = any(c.label.endswith("/worker") for c in cluster.main_containers())
    dag_id, task_id = "e2e_long_task", "sleep_then_succeed"
    run_id = trigger(client, dag_id, timeout=180, alive=cluster.check_alive)
    wait_for(
        "the long task running",
        lambda: task_state(client, dag_id, run_id, task_id) == "running" or None,
        120,
        interval=0.5,
    )
    scheduler, killed_at = _kill_and_restart(cluster, "airflow-scheduler-e2e/scheduler", 1.0)
    ready = _ready_again(cluster, scheduler)
    if celery:
        final = run_final_state(
            client,
            dag_id,
            run_id,
            what="the run finished after the scheduler's restart",
            timeout=240,
        )
        assert final == "success", final
        assert task_state(client, dag_id, run_id, task_id) == "success"
    else:
        fresh = trigger(client, DAG_ID, timeout=120)
        final = run_final_state(
            client,
            DAG_ID,
            fresh,
            what="a new run after the scheduler's restart",
            timeout=240,
        )
        assert final == "success", final
    recovered = time.monotonic() - killed_at
    line = (
        f"BENCHMARK stack={stack_run.stack} fault=scheduler-sigkill: ready again {ready:.1f}s "
        f"after restart, {'the running' if celery else 'a new'} run {final} "
        f"{recovered:.1f}s after the kill"
    )
    print(f"\n[e2e] {line}")
    FAULTS.append(line)


def test_a_killed_api_server_does_not_fail_a_running_task(stack_run):
    """SIGKILL to the api-server (the Execution API) while a task runs; the kubelet restarts it
    after 5 s. The task's calls to the Execution API fail meanwhile; the Task SDK retries them,
    so the task succeeds on its first try (asserted: no retry was needed or allowed)."""
    cluster, client = stack_run.cluster, stack_run.client
    _restart_exited(cluster)
    dag_id, task_id = "e2e_long_task", "sleep_then_succeed"
    run_id = trigger(client, dag_id, timeout=180, alive=cluster.check_alive)
    wait_for(
        "the long task running",
        lambda: task_state(client, dag_id, run_id, task_id) == "running" or None,
        120,
        interval=0.5,
    )
    api_server, killed_at = _kill_and_restart(cluster, "airflow-api-server-e2e/api-server", 5.0)
    ready = _ready_again(cluster, api_server)
    client.login(stack_run.admin_username, stack_run.admin_password)
    final = wait_for(
        "the long task finished",
        lambda: ((s := task_state(client, dag_id, run_id, task_id)) in FINAL and s) or None,
        240,
        interval=0.5,
    )
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
    tries = client.request("GET", path)["try_number"]
    assert (final, tries) == ("success", 1), (final, tries)
    line = (
        f"BENCHMARK stack={stack_run.stack} fault=api-server-sigkill: ready again {ready:.1f}s "
        f"after restart, task {final} on try {tries}, "
        f"{time.monotonic() - killed_at:.1f}s after the kill"
    )
    print(f"\n[e2e] {line}")
    FAULTS.append(line)


FAULTS: list[str] = []


def test_a_restarted_postgres_keeps_its_data_and_everything_reconnects(stack_run, postgres_server):
    """Postgres stops (fast shutdown: every connection cut), stays down 5 s and starts again on
    the same data. The kubelet restarts any container that exited meanwhile (restartPolicy
    Always; counted and printed). Then the API answers, the history is still there and a new
    run succeeds."""
    cluster, client = stack_run.cluster, stack_run.client
    _restart_exited(cluster)
    runs = f"/api/v2/dags/{DAG_ID}/dagRuns"
    before = client.request("GET", runs)["total_entries"]
    killed_at = time.monotonic()
    postgres_server.restart(down_seconds=5)
    restarted: list[str] = []

    def answering() -> bool | None:
        restarted.extend(_restart_exited(cluster))
        try:
            client.login(stack_run.admin_username, stack_run.admin_password)
            return bool(client.request("GET", runs))
        except Exception:  # down until it is not
            return None

    wait_for("the API answering after Postgres' restart", answering, 240, interval=2.0)
    answered = time.monotonic() - killed_at
    assert client.request("GET", runs)["total_entries"] >= before, "history lost"
    run_id = trigger(client, DAG_ID, timeout=180)

    try:
        final = run_final_state(
            client,
            DAG_ID,
            run_id,
            what="a run after Postgres' restart",
            timeout=300,
            # The kubelet restarts what exits meanwhile.
            alive=lambda: restarted.extend(_restart_exited(cluster)),
        )
    except TimeoutError:
        print(f"\n[e2e] restarted: {restarted}\n{cluster.log_tails(60)}")
        raise
    assert final == "success", final
    line = (
        f"BENCHMARK stack={stack_run.stack} fault=postgres-restart: API answering {answered:.1f}s "
        f"after the stop (5 s down), new run {final} {time.monotonic() - killed_at:.1f}s after; "
        f"containers the kubelet restarted: {sorted(set(restarted)) or 'none'}"
    )
    print(f"\n[e2e] {line}")
    FAULTS.append(line)


def test_nothing_written_to_the_read_only_root_filesystem(stack_run):
    """Stop everything, then compare each read-only image root with what the image shipped."""
    stack_run.stop()
    writes = stack_run.cluster.root_writes()
    assert not writes, (
        "files written outside writable mounts (readOnlyRootFilesystem): "
        + "; ".join(f"{container}: {', '.join(paths[:20])}" for container, paths in writes.items())
    )

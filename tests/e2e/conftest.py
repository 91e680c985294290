"""Fixtures of the end-to-end suite: the Airflow venv, one PostgreSQL server, the standalone
baseline, and one live local "cluster" per stack (module scope, one stack at a time).

Environment:
- AIRFLOW_E2E_VENV: the Airflow venv (default `<repo>/.venv-airflow`).
- AIRFLOW_E2E_STACKS: comma list of stacks to run live (default `local,prod`; `staging` adds
  ~5 minutes on 2 cores: Celery worker, Flower, Redis, git-sync, FAB, in-cluster Postgres).
- AIRFLOW_E2E_KEEP=1: keep the temp directory (pods, volumes, logs) after the session.
- CI=true: a missing prerequisite fails the suite instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness.procs import SESSION_MARKER, kill_marked
from .harness.runtime import podman_problem
from .harness.services import PostgresServer, RedisServer, find_postgres_bin, find_redis_server

REPO = Path(__file__).resolve().parents[2]
DAGS = sorted((Path(__file__).parent / "dags").glob("*.py"))
ALL_STACKS = ("local", "prod", "staging")
DEFAULT_LIVE_STACKS = ("local", "prod")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end tests that run rendered manifests as real Airflow processes"
    )


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Skip locally; in CI a missing prerequisite is a failure, never a silent skip."""
    if in_ci():
        pytest.fail(f"end-to-end prerequisite missing in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def selected_stacks() -> list[str]:
    raw = os.environ.get("AIRFLOW_E2E_STACKS")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else list(DEFAULT_LIVE_STACKS)


def venv_path() -> Path:
    raw = os.environ.get("AIRFLOW_E2E_VENV")
    return Path(raw).expanduser().resolve() if raw else REPO / ".venv-airflow"


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    venv = venv_path()
    if not (venv / "bin" / "airflow").exists() or not (venv / "bin" / "python").exists():
        unavailable(
            f"no Airflow venv at {venv} (set AIRFLOW_E2E_VENV or create it with "
            "apache-airflow[postgres,celery,cncf-kubernetes,fab,standard]==<AIRFLOW_VERSION>)"
        )
    return venv


PREVIOUS_AIRFLOW_VERSION = "3.2.2"


@pytest.fixture(scope="session")
def previous_airflow_venv() -> Path:
    """The previous minor release, for the upgrade scenario (scripts/test.sh builds it)."""
    raw = os.environ.get("AIRFLOW_E2E_PREVIOUS_VENV")
    venv = Path(raw).expanduser().resolve() if raw else REPO / ".venv-airflow-prev"
    if not (venv / "bin" / "airflow").exists():
        unavailable(
            f"no Airflow {PREVIOUS_AIRFLOW_VERSION} venv at {venv} (set "
            "AIRFLOW_E2E_PREVIOUS_VENV or run scripts/test.sh)"
        )
    return venv


@pytest.fixture(scope="session")
def postgres_bin() -> Path:
    found = find_postgres_bin()
    if found is None:
        unavailable(
            "no PostgreSQL server binaries (apt-get install postgresql) under /usr/lib/postgresql"
        )
    assert found is not None
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        unavailable("setpriv (util-linux) is needed to drop capabilities of the Airflow processes")
    problem = podman_problem()
    if problem is not None and os.environ.get("E2E_RUNTIME") != "process":
        unavailable(f"Airflow containers run under podman + runc: {problem}")
    return found


@pytest.fixture(scope="session")
def e2e_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="airflow-e2e-"))
    os.chmod(base, 0o755)  # the postgres OS user must traverse it
    print(f"\n[e2e] working directory: {base}")
    yield base
    kill_marked(SESSION_MARKER)
    if os.environ.get("AIRFLOW_E2E_KEEP") or request.session.testsfailed:
        print(f"\n[e2e] kept {base} (pods, volumes, process logs)")
    else:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(postgres_bin: Path, e2e_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(e2e_dir / "postgres", postgres_bin)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server(e2e_dir: Path) -> Iterator[RedisServer]:
    """For the Celery executor (not rendered by the component yet)."""
    if find_redis_server() is None:
        unavailable("redis-server not installed (apt-get install redis-server)")
    server = RedisServer(e2e_dir / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dag_files() -> list[Path]:
    assert DAGS, "tests/e2e/dags/ holds the suite's DAG"
    return DAGS


@pytest.fixture(scope="session")
def standalone_benchmark(
    airflow_venv: Path, postgres_server: PostgresServer, dag_files, e2e_dir: Path
):
    """One `airflow standalone` run per session, before any stack runs (no CPU contention)."""
    from .harness.standalone import run_standalone

    started = time.monotonic()
    result = run_standalone(airflow_venv, postgres_server, dag_files, e2e_dir / "standalone")
    print(
        f"\n[e2e] airflow standalone baseline: "
        f"{f'{result.seconds_to_first_success:.1f}s' if result.seconds_to_first_success else 'n/a'}"
        f" to first successful run ({time.monotonic() - started:.0f}s total)"
        + (f"; error: {result.error}" if result.error else "")
    )
    return result


@pytest.fixture(scope="module", params=selected_stacks())
def stack_run(request, airflow_venv, postgres_server, dag_files, e2e_dir, standalone_benchmark):
    """A stack, rendered and running: Jobs done, Deployments up, DAG run finished, probes run."""
    from .harness.stack import execute, prepare_stack, stopped_on_failure

    stack = request.param
    print(f"\n[e2e] stack {stack}: starting")
    run = prepare_stack(
        stack,
        base_dir=e2e_dir / stack,
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
    )
    with stopped_on_failure(f"stack {stack}", run):
        execute(run)
    print(f"[e2e] stack {stack}: phases (s since first process) {_fmt(run.timings)}")
    for note in run.deviations:
        print(f"[e2e] stack {stack}: deviation: {note}")
    for secret in run.cluster.placeholder_secrets:
        print(f"[e2e] stack {stack}: operator Secret played with placeholders: {secret}")
    for container in run.cluster.played_containers():
        print(f"[e2e] stack {stack}: played, not run (probes not exercised): {container.label}")
    BENCHMARKS.append(_benchmark_line(stack, run, standalone_benchmark))
    yield run
    run.stop()


# Benchmark figures, printed in the terminal summary (never asserted: machines differ).
BENCHMARKS: list[str] = []


def _benchmark_line(stack: str, run, standalone) -> str:
    ours = run.seconds_to_first_success
    theirs = standalone.seconds_to_first_success
    if not ours:
        return f"BENCHMARK stack={stack}: no successful run to time"
    ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
    baseline = f"{theirs:.1f}s" if theirs else "n/a"
    return (
        f"BENCHMARK stack={stack}: first successful DAG run {ours:.1f}s after the first process "
        f"started (Jobs, init containers, Deployments); airflow standalone: {baseline}; "
        f"ratio {ratio}"
    )


def pytest_terminal_summary(terminalreporter) -> None:
    from .test_stacks import FAULTS, MEMORY

    for line in [*BENCHMARKS, *MEMORY, *FAULTS]:
        terminalreporter.write_line(line)


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.1f}" for k, v in values.items())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    report = outcome.get_result()
    run = getattr(item, "funcargs", {}).get("stack_run")
    if report.failed and run is not None:
        report.sections.append((f"process logs of stack {run.stack}", run.cluster.log_tails()))

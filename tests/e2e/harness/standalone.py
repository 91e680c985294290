"""The benchmark baseline: the same DAG under `airflow standalone` (fresh AIRFLOW_HOME, its own
database on the same Postgres server), timed from process start to the first successful run."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .api import ApiClient, DagRunResult, run_smoke_dag, wait_for
from .procs import SESSION_MARKER, ManagedProcess, free_port, kill_marked, port_listening
from .services import PostgresServer


@dataclass
class StandaloneResult:
    seconds_to_first_success: float | None
    result: DagRunResult | None
    error: str | None
    log_path: Path


def run_standalone(
    venv: Path,
    postgres: PostgresServer,
    dag_files: list[Path],
    base_dir: Path,
    timeout: float = 300,
) -> StandaloneResult:
    home = base_dir / "airflow-home"
    dags = home / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    for dag in dag_files:
        shutil.copy(dag, dags / dag.name)
    password = secrets.token_urlsafe(16)
    passwords = home / "simple_auth_manager_passwords.json.generated"
    passwords.write_text(json.dumps({"admin": password}))
    db_password = secrets.token_urlsafe(16)
    db = postgres.provision("standalone_bench", "standalone_bench", db_password, superuser=False)
    api_port = free_port()
    env = {
        "PATH": f"{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
            f"postgresql+psycopg2://{db.user}:{db.password}@{db.host}:{db.port}/{db.name}"
        ),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # Its own ports, so it never collides with a stack's processes.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow.utils.net.get_host_ip_address",
    }
    marker = f"{SESSION_MARKER}:standalone"
    log_path = base_dir / "standalone.log"
    started = time.monotonic()
    process = ManagedProcess(
        "airflow standalone",
        ["airflow", "standalone"],
        env,
        home,
        log_path,
        drop_caps=False,
        marker=marker,
    )

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(
                f"airflow standalone exited with {process.poll()}:\n{process.tail(60)}"
            )

    try:
        wait_for("standalone api-server", lambda: port_listening(api_port), timeout, alive=alive)
        client = ApiClient(base_url=f"http://127.0.0.1:{api_port}")
        wait_for("standalone login", lambda: client.login("admin", password), timeout, alive=alive)
        result = run_smoke_dag(client, timeout=timeout, alive=alive)
        seconds = result.finished_at - started if result.state == "success" else None
        return StandaloneResult(seconds, result, None, log_path)
    except Exception as error:
        return StandaloneResult(None, None, f"{type(error).__name__}: {error}", log_path)
    finally:
        process.stop()
        kill_marked(marker)
        postgres.drop("standalone_bench", "standalone_bench")

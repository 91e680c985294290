"""DAG bundles, run for real: a Git bundle served by a real `git daemon` from a local bare
repository, parsed by its own dag-processor, next to the DAG-folder bundle and its processor.

A `local` rendering on the CeleryExecutor with `dags.bundles: [dags-folder, analytics]`, the
analytics bundle reading `git://git.e2e.example:9418/analytics.git` (the harness maps that
address to the daemon) with a connection from an operator Secret. Then:
- the smoke DAG (DAG folder) and `e2e_bundle_version` (Git) are each parsed by their own
  bundle's processor (the API's `bundle_name`), and run to success;
- versioning: run A starts on commit 1 and holds; commit 2 changes VERSION; once the processor
  has parsed it, run B starts; both are released: A reports v1 on commit 1, B v2 on commit 2.
  The worker fetches each run's version itself (it initializes the bundle at that commit).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .harness.api import ApiClient, ApiError, run_final_state, trigger, wait_for
from .harness.procs import free_port
from .harness.stack import StackRun, execute, prepare_stack, stopped_on_failure

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_bundle_version"
SOURCE = Path(__file__).parent / "bundle" / f"{DAG_ID}.py"
GIT_HOST, GIT_PORT = "git.e2e.example", 9418
CONNECTION_SECRET = ("analytics-git", "connection")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "e2e",
            "GIT_AUTHOR_EMAIL": "e2e@example.com",
            "GIT_COMMITTER_NAME": "e2e",
            "GIT_COMMITTER_EMAIL": "e2e@example.com",
            "HOME": str(repo),
            "PATH": "/usr/bin:/bin",
        },
    )
    return result.stdout.strip()


@dataclass
class GitServer:
    """A bare repository behind `git daemon`, and a working copy the test commits from."""

    base: Path
    port: int
    process: subprocess.Popen[bytes]
    work: Path

    def commit_version(self, version: str) -> str:
        text = SOURCE.read_text()
        changed = re.sub(r'^VERSION = "v1"$', f'VERSION = "{version}"', text, flags=re.M)
        assert f'VERSION = "{version}"' in changed
        (self.work / "dags").mkdir(exist_ok=True)
        (self.work / "dags" / SOURCE.name).write_text(changed)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", version)
        git(self.work, "push", "-q", "origin", "HEAD:main")
        return git(self.work, "rev-parse", "HEAD")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start_git_server(base: Path) -> GitServer:
    base.mkdir(parents=True, exist_ok=True)
    bare = base / "analytics.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work = base / "work"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True)
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={base}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return GitServer(base=base, port=port, process=process, work=work)


def bundles_cluster() -> dict[str, Any]:
    from tests.support.rendering import cluster_config

    raw = copy.deepcopy(cluster_config("local"))
    raw.update(
        {
            "executors": "CeleryExecutor",
            "celery": {"workers": {"concurrency": 4}},
            "dags": {
                **raw.get("dags", {}),
                "bundles": [
                    {"name": "dags-folder", "dagsFolder": {}},
                    {
                        "name": "analytics",
                        "git": {
                            "repo": f"git://{GIT_HOST}:{GIT_PORT}/analytics.git",
                            "trackingRef": "main",
                            "subdir": "dags",
                            "refreshInterval": 5,
                            "connectionSecret": {
                                "name": CONNECTION_SECRET[0],
                                "key": CONNECTION_SECRET[1],
                            },
                        },
                    },
                ],
            },
        }
    )
    return raw


@dataclass
class BundlesRun:
    run: StackRun
    server: GitServer
    first_commit: str


@pytest.fixture(scope="module")
def bundles(airflow_venv, postgres_server, dag_files, e2e_dir) -> Iterator[BundlesRun]:
    server = start_git_server(e2e_dir / "git")
    first = server.commit_version("v1")
    run = prepare_stack(
        "local",
        base_dir=e2e_dir / "bundles",
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=bundles_cluster(),
        external_hosts={(GIT_HOST, GIT_PORT): server.port},
    )
    cluster = run.cluster
    # Play the operator: the Secret with the bundle's Airflow `git` connection (no credentials
    # needed by a git daemon; the connection is what the processes must find).
    connection = json.dumps({"conn_type": "git"})
    cluster.store.secrets[(cluster.namespace, CONNECTION_SECRET[0])] = {
        CONNECTION_SECRET[1]: connection.encode()
    }
    with stopped_on_failure("bundles stack", run, server.stop):
        execute(run)
    yield BundlesRun(run=run, server=server, first_commit=first)
    run.stop()
    server.stop()


def _run_path(run_id: str) -> str:
    return f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}"


def _task_state(client: ApiClient, run_id: str, task_id: str) -> str | None:
    try:
        answer = client.request("GET", f"{_run_path(run_id)}/taskInstances/{task_id}")
    except ApiError:
        return None
    return answer.get("state")


def test_each_bundle_is_parsed_by_its_own_processor(bundles: BundlesRun) -> None:
    client = bundles.run.client
    assert client is not None
    assert bundles.run.result is not None and bundles.run.result.state == "success"
    wait_for(
        f"{DAG_ID} parsed from the Git bundle",
        lambda: client.request("GET", f"/api/v2/dags/{DAG_ID}"),
        180,
        alive=bundles.run.cluster.check_alive,
    )
    assert client.request("GET", f"/api/v2/dags/{DAG_ID}")["bundle_name"] == "analytics"
    assert client.request("GET", "/api/v2/dags/e2e_smoke")["bundle_name"] == "dags-folder"
    logs = {
        pod.name: Path(container.log_path).read_text(errors="replace")
        for pod in bundles.run.cluster.pods
        for container in pod.containers
        if container.name == "dag-processor"
    }
    assert sorted(logs) == [
        "airflow-dag-processor-analytics-e2e",
        "airflow-dag-processor-dags-folder-e2e",
    ], sorted(logs)
    # Each processor parses its own bundle's files only (its file-processing stats name them).
    own = {
        "airflow-dag-processor-analytics-e2e": ("e2e_bundle_version.py", "e2e_smoke.py"),
        "airflow-dag-processor-dags-folder-e2e": ("e2e_smoke.py", "e2e_bundle_version.py"),
    }
    for pod, (parsed, foreign) in own.items():
        assert parsed in logs[pod], (pod, logs[pod][-3000:])
        assert foreign not in logs[pod], (pod, logs[pod][-3000:])


def test_a_run_keeps_the_version_it_started_on(bundles: BundlesRun) -> None:
    run, server = bundles.run, bundles.server
    client, cluster = run.client, run.cluster
    assert client is not None
    first = bundles.first_commit
    run_a = trigger(client, DAG_ID, timeout=180, alive=cluster.check_alive)
    wait_for(
        "run A holding on commit 1",
        lambda: _task_state(client, run_a, "wait_for_release") == "running" or None,
        180,
        alive=cluster.check_alive,
    )
    second = server.commit_version("v2")
    wait_for(
        "commit 2 parsed by the analytics processor",
        lambda: (
            any(
                version.get("bundle_version") == second
                for version in client.request("GET", f"/api/v2/dags/{DAG_ID}/dagVersions")[
                    "dag_versions"
                ]
            )
            or None
        ),
        180,
        alive=cluster.check_alive,
    )
    run_b = trigger(client, DAG_ID, timeout=60, alive=cluster.check_alive)
    client.request("POST", "/api/v2/variables", {"key": "e2e_bundle_release", "value": "go"})
    states = {}
    for run_id in (run_a, run_b):
        states[run_id] = run_final_state(
            client,
            DAG_ID,
            run_id,
            what=f"run {run_id} finished",
            timeout=300,
            alive=cluster.check_alive,
        )
    assert set(states.values()) == {"success"}, states
    reported = {
        run_id: client.request(
            "GET", f"{_run_path(run_id)}/taskInstances/report/xcomEntries/return_value"
        )["value"]
        for run_id in (run_a, run_b)
    }
    assert reported == {run_a: "v1", run_b: "v2"}, reported
    versions = {
        run_id: client.request("GET", _run_path(run_id)).get("bundle_version")
        for run_id in (run_a, run_b)
    }
    assert versions == {run_a: first, run_b: second}, versions
    print(f"\n[e2e] bundles: run A on {first[:8]} reported v1, run B on {second[:8]} v2")
    from .test_worker_pools import print_api_server_memory

    print_api_server_memory("bundles", cluster, 1)


def test_processors_of_different_bundles_never_disable_each_other(
    bundles: BundlesRun, postgres_server
) -> None:
    """A processor that saw only its own bundle without `--bundle-name` would mark every other
    bundle inactive, and the processors would keep disabling each other (Airflow 3.3.2
    `DagBundlesManager.sync_bundles_to_db`). By now each has synced many times."""
    from airflow_component.config import parse_config

    logs = "".join(
        Path(container.log_path).read_text(errors="replace")
        for pod in bundles.run.cluster.pods
        for container in pod.containers
        if container.name == "dag-processor"
    )
    assert "has been disabled" not in logs
    database = parse_config(bundles_cluster()).database.in_cluster.database
    rows = postgres_server.psql("SELECT name, active FROM dag_bundle ORDER BY name;", database)
    assert rows.split() == ["analytics|t", "dags-folder|t"], rows


def _init_parameters(source: str, class_name: str) -> tuple[set[str], bool]:
    """The keyword parameters a class's __init__ takes, and whether it takes **kwargs."""
    import ast

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    arguments = item.args
                    names = {a.arg for a in [*arguments.args, *arguments.kwonlyargs]} - {"self"}
                    return names, arguments.kwarg is not None
    raise AssertionError(f"class {class_name} with an __init__ not found")


def test_object_store_bundle_kwargs_are_what_the_shipped_providers_take(
    airflow_venv: Path, tmp_path: Path
) -> None:
    """The official image ships the Amazon and Google providers; our venv does not (they pull
    in the cloud SDKs). Their released wheels are read instead: the class each rendered entry
    names must exist and take every kwarg we render (its own, or BaseDagBundle's through
    **kwargs, read from the installed Airflow)."""
    import zipfile

    from airflow_component.airflow_env import bundle_config_list
    from airflow_component.config import parse_config
    from airflow_component.resolve import resolve

    config = parse_config(
        {
            "dags": {
                "bundles": [
                    {"name": "s3", "objectStore": {"url": "s3://dags-b/p", "refreshInterval": 60}},
                    {"name": "gcs", "objectStore": {"url": "gs://dags-b/p", "refreshInterval": 60}},
                ]
            }
        }
    )
    entries = json.loads(bundle_config_list(resolve(config), ["s3", "gcs"]))
    subprocess.run(
        [
            str(airflow_venv / "bin" / "pip"),
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(tmp_path),
            "apache-airflow-providers-amazon",
            "apache-airflow-providers-google",
        ],
        check=True,
        timeout=300,
    )
    base = subprocess.run(
        [
            str(airflow_venv / "bin" / "python"),
            "-c",
            "import inspect, json; from airflow.dag_processing.bundles.base import BaseDagBundle;"
            "print(json.dumps(list(inspect.signature(BaseDagBundle.__init__).parameters)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    base_parameters = set(json.loads(base.stdout)) - {"self", "kwargs"}
    wheels = sorted(tmp_path.glob("*.whl"))
    assert len(wheels) == 2, wheels
    for entry in entries:
        module, class_name = entry["classpath"].rsplit(".", 1)
        member = module.replace(".", "/") + ".py"
        sources = [
            zipfile.ZipFile(wheel).read(member).decode()
            for wheel in wheels
            if member in zipfile.ZipFile(wheel).namelist()
        ]
        assert sources, f"{entry['classpath']}: no shipped provider has {member}"
        own, passes_on = _init_parameters(sources[0], class_name)
        accepted = own | (base_parameters if passes_on else set())
        assert set(entry["kwargs"]) <= accepted, (entry, sorted(accepted))
        print(f"\n[e2e] {class_name} in {[w.name for w in wheels]} takes {sorted(entry['kwargs'])}")

"""The Postgres pod's password sync, run for real: the rendered `sync-password` init container
under the kernel's rules (podman + runc, the pod's uid/gid and fsGroup, read-only root, its
memory limit, its mounts), with Debian's PostgreSQL binaries standing in for the image's.

What the real world enforces: the official image sets POSTGRES_PASSWORD only when it creates
the data directory, so a rotated Secret means nothing until something sets the role's password
on the data that exists. After the container has run, only the Secret's password logs in (over
TCP with scram, as Airflow and PgBouncer do); a password full of quotes, newlines and `$(` is
data, not SQL; and a failure fails the container and leaves no server running on the data.
"""

from __future__ import annotations

import copy
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.rendering import Rendering, cluster_config, render_stack

from .conftest import unavailable
from .harness.api import run_smoke_dag
from .harness.kubelet import ObjectStore, PodInfo, expand_command, resolve_env
from .harness.procs import free_port
from .harness.runtime import apply_fs_group, run_pod_container
from .harness.services import PostgresServer
from .harness.stack import StackRun, prepare_stack, start_and_log_in

pytestmark = pytest.mark.e2e

HOSTILE_PASSWORD = 'it\'s; DROP ROLE airflow; --\n\n$(id) \\\\ "q" ;\n\n%s #'
OWN_SECRET = ("my-postgres-password", "password")


@pytest.fixture
def work(e2e_dir: Path, request: pytest.FixtureRequest) -> Path:
    """A directory the host's postgres user can traverse (pytest's tmp_path is private)."""
    if os.geteuid() != 0:
        unavailable("the claim's ownership (the pod's uid) needs root to set up")
    path = e2e_dir / f"pg-password-{request.node.name}"
    path.mkdir()
    return path


def local_with(**database: Any) -> Rendering:
    raw = copy.deepcopy(cluster_config("local"))
    raw.setdefault("database", {}).setdefault("inCluster", {}).update(database)
    return render_stack("local", cluster=raw)


def postgres_pod(rendering: Rendering) -> dict[str, Any]:
    (postgres,) = [
        r for r in rendering.of_kind("StatefulSet") if (r.object_name or "").endswith("postgres")
    ]
    spec: dict[str, Any] = postgres.inputs["spec"]["template"]["spec"]
    return spec


def sync_env(rendering: Rendering, store: ObjectStore | None = None) -> dict[str, str]:
    (sync,) = postgres_pod(rendering)["initContainers"]
    pod = PodInfo(
        name="postgres-0", namespace=rendering.outputs["namespace"], labels={}, annotations={},
        service_account="",
    )  # fmt: skip
    return resolve_env(sync, store or ObjectStore.from_manifests(rendering.manifests()), pod, {})


class DataVolume:
    """The StatefulSet's claim: a data directory the image's entrypoint created on first start
    (initdb with POSTGRES_USER as superuser and POSTGRES_PASSWORD, local `trust` and host
    `scram-sha-256` as the entrypoint writes pg_hba.conf), owned by the pod's uid as it would
    be on the claim."""

    def __init__(self, root: Path, pod_spec: dict[str, Any], env: dict[str, str]) -> None:
        self.root = root
        (self.mount,) = [
            m["mountPath"] for m in pod_spec["containers"][0]["volumeMounts"] if m["name"] == "data"
        ]
        self.path = root / "data"
        self.path.mkdir(parents=True)
        self.pgdata = self.path / Path(env["PGDATA"]).relative_to(self.mount)
        security = pod_spec["securityContext"]
        self.uid, self.gid = int(security["runAsUser"]), int(security["runAsGroup"])
        self.fs_group = int(security["fsGroup"])
        apply_fs_group(self.path, "claim", self.fs_group)

    def initialise(self, postgres_bin: Path, user: str, password: str) -> None:
        os.chown(self.path, pwd.getpwnam("postgres").pw_uid, self.fs_group)
        pwfile = self.root / "pwfile"
        pwfile.write_text(password + "\n")
        os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, 0)
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(postgres_bin / "initdb"), "-D",
             str(self.pgdata), f"--username={user}", f"--pwfile={pwfile}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C.UTF-8"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        pwfile.unlink()
        assert done.returncode == 0, done.stderr
        with open(self.pgdata / "pg_hba.conf", "a") as hba:
            hba.write("host all all all scram-sha-256\n")
        self.own(self.uid)

    def own(self, uid: int) -> None:
        for path in [self.pgdata, *self.pgdata.rglob("*")]:
            os.chown(path, uid, self.fs_group, follow_symlinks=False)
        os.chown(self.path, uid, self.fs_group)

    def logins(self, postgres_bin: Path, user: str, passwords: dict[str, str]) -> dict[str, str]:
        """Start a server on the data (as the host's postgres user), try each password over TCP
        with scram as Airflow does, stop it. Name -> "ok" or the server's refusal."""
        self.own(pwd.getpwnam("postgres").pw_uid)
        port = free_port()
        server = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", str(postgres_bin / "postgres"), "-D",
             str(self.pgdata), "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
             "-c", "unix_socket_directories="],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while subprocess.run(
                [str(postgres_bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True, check=False,
            ).returncode != 0:  # fmt: skip
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "check server did not start"
                time.sleep(0.2)
            return {
                name: tcp_login(postgres_bin, "127.0.0.1", port, user, password, "postgres")
                for name, password in passwords.items()
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
            self.own(self.uid)


def run_sync(
    pod_spec: dict[str, Any], env: dict[str, str], volume: DataVolume, postgres_bin: Path
) -> subprocess.CompletedProcess[str]:
    """The init container as the kubelet starts it: its command (`$$` expanded), the pod's
    identity with fsGroup, the claim and the emptyDirs at their mounts, a read-only root."""
    (container,) = pod_spec["initContainers"]
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data"] == [
        volume.mount
    ]
    return run_pod_container(
        pod_spec,
        container,
        env,
        volume.root,
        claims={"data": volume.path},
        hostname="postgres-0",
        tools=postgres_bin,
    )


def test_a_new_data_directory_is_left_to_the_entrypoint(postgres_bin: Path, work: Path) -> None:
    rendering = local_with()
    pod_spec, env = postgres_pod(rendering), sync_env(rendering)
    volume = DataVolume(work, pod_spec, env)
    done = run_sync(pod_spec, env, volume, postgres_bin)
    assert done.returncode == 0, done.stderr
    assert "new data directory" in done.stdout
    assert not (volume.pgdata / "PG_VERSION").exists()


def test_after_a_rotation_only_the_new_password_logs_in(postgres_bin: Path, work: Path) -> None:
    first, rotated = local_with(), local_with(passwordGeneration=2)
    old_env, new_env = sync_env(first), sync_env(rotated)
    old, new = old_env["POSTGRES_PASSWORD"], new_env["POSTGRES_PASSWORD"]
    assert old != new
    pod_spec = postgres_pod(rotated)
    volume = DataVolume(work, pod_spec, new_env)
    volume.initialise(postgres_bin, old_env["POSTGRES_USER"], old)
    before = volume.logins(postgres_bin, new_env["POSTGRES_USER"], {"old": old, "new": new})
    assert before["old"] == "ok" and "password authentication failed" in before["new"], before

    done = run_sync(pod_spec, new_env, volume, postgres_bin)
    assert done.returncode == 0, done.stdout + done.stderr
    after = volume.logins(postgres_bin, new_env["POSTGRES_USER"], {"old": old, "new": new})
    assert after["new"] == "ok", after
    assert "password authentication failed" in after["old"], after
    # The server it started on the data is stopped again: the main container can start.
    assert not (volume.pgdata / "postmaster.pid").exists()


def test_a_password_of_quotes_newlines_and_dollars_is_data(postgres_bin: Path, work: Path) -> None:
    rendering = local_with()
    raw = copy.deepcopy(cluster_config("local"))
    raw["existingSecrets"] = {"postgresPassword": {"name": OWN_SECRET[0], "key": OWN_SECRET[1]}}
    rendering = render_stack("local", cluster=raw)
    store = ObjectStore.from_manifests(rendering.manifests())
    # Play the operator: their own Secret holds the password.
    store.secrets[(rendering.outputs["namespace"], OWN_SECRET[0])] = {
        OWN_SECRET[1]: HOSTILE_PASSWORD.encode()
    }
    env = sync_env(rendering, store)
    assert env["POSTGRES_PASSWORD"] == HOSTILE_PASSWORD
    pod_spec = postgres_pod(rendering)
    volume = DataVolume(work, pod_spec, env)
    volume.initialise(postgres_bin, env["POSTGRES_USER"], "before-the-operator-set-it")

    done = run_sync(pod_spec, env, volume, postgres_bin)
    assert done.returncode == 0, done.stdout + done.stderr
    logins = volume.logins(
        postgres_bin, env["POSTGRES_USER"], {"hostile": HOSTILE_PASSWORD, "truncated": "it's"}
    )
    # The role still exists and takes exactly the whole text: nothing in it was run as SQL.
    assert logins["hostile"] == "ok", logins
    assert "password authentication failed" in logins["truncated"], logins


def test_a_failed_sync_fails_the_container_and_stops_its_server(
    postgres_bin: Path, work: Path
) -> None:
    rendering = local_with()
    pod_spec, env = postgres_pod(rendering), sync_env(rendering)
    volume = DataVolume(work, pod_spec, env)
    volume.initialise(postgres_bin, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"])
    # A role the data does not have (a user renamed after the data was created).
    wrong = {**env, "POSTGRES_USER": "renamed_role"}
    done = run_sync(pod_spec, wrong, volume, postgres_bin)
    assert done.returncode != 0, done.stdout
    assert "renamed_role" in done.stderr, done.stderr
    assert not (volume.pgdata / "postmaster.pid").exists()


# -- the rotation, end to end on the local stack ------------------------------------------------


@dataclass
class Rotation:
    old: StackRun
    new: StackRun
    old_password: str
    new_password: str
    sync: subprocess.CompletedProcess[str] | None = None
    postgres_down_seconds: float = 0.0
    logins: dict[str, str] = field(default_factory=dict)
    old_run: dict[str, Any] = field(default_factory=dict)


def rotation_cluster(generation: int) -> dict[str, Any]:
    raw = copy.deepcopy(cluster_config("local"))
    raw.setdefault("database", {}).setdefault("inCluster", {})["passwordGeneration"] = generation
    return raw


def tcp_login(
    postgres_bin: Path, host: str, port: int, user: str, password: str, database: str
) -> str:
    """A password login over TCP (scram, as Airflow connects): "ok" or the server's refusal."""
    done = subprocess.run(
        [str(postgres_bin / "psql"), "-X", "-At", "-h", host, "-p", str(port),
         "-U", user, "-d", database, "-c", "SELECT 1"],
        env={"PGPASSWORD": password, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return "ok" if done.returncode == 0 else done.stderr.strip()


@pytest.fixture(scope="module")
def rotation(
    airflow_venv: Path, postgres_server: PostgresServer, dag_files: list[Path], e2e_dir: Path
) -> Iterator[Rotation]:
    """README, "Postgres password rotation", as Pulumi applies it: the Secrets change, Postgres
    restarts and its init container sets the new password, then the pods that read it roll."""
    old = prepare_stack(
        "local",
        base_dir=e2e_dir / "rotation-old",
        venv=airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=rotation_cluster(1),
    )
    new = None
    try:
        old_client = start_and_log_in(old)
        old.result = run_smoke_dag(old_client, timeout=240, alive=old.cluster.check_alive)
        assert old.result.state == "success"
        old_env = sync_env(old.rendering)
        # Deviation (documented): two renderings cannot hold the same fixed ports on one
        # machine, so the old processes stop before the new ones start; on a cluster they lose
        # their connections when Postgres restarts and roll right after it.
        old.stop()
        new = prepare_stack(
            "local",
            base_dir=e2e_dir / "rotation-new",
            venv=airflow_venv,
            postgres=postgres_server,
            dag_files=dag_files,
            cluster_override=rotation_cluster(2),
            keep_database=True,
        )
        new_env = sync_env(new.rendering)
        result = Rotation(old, new, old_env["POSTGRES_PASSWORD"], new_env["POSTGRES_PASSWORD"])
        (sync,) = postgres_pod(new.rendering)["initContainers"]
        command, _ = expand_command(sync, new_env)

        def init_container() -> None:
            # The rendered script as the data's owner, on the played Postgres' data directory
            # (its port is not 5432 here, hence PGPORT).
            env = {
                **new_env,
                "PGDATA": str(postgres_server.data_dir),
                "PGPORT": str(postgres_server.port),
                "PATH": f"{postgres_server.bin_dir}:/usr/bin:/bin",
            }
            result.sync = postgres_server.run_as_server_user(command, env)

        stopped = time.monotonic()
        postgres_server.restart(while_down=init_container)
        result.postgres_down_seconds = time.monotonic() - stopped
        assert result.sync is not None and result.sync.returncode == 0, result.sync

        user, database = new_env["POSTGRES_USER"], new_env["POSTGRES_DB"]
        server = postgres_server
        result.logins = {
            name: tcp_login(server.bin_dir, server.host, server.port, user, password, database)
            for name, password in (("old", result.old_password), ("new", result.new_password))
        }
        client = start_and_log_in(new)
        result.old_run = client.request(
            "GET", f"/api/v2/dags/e2e_smoke/dagRuns/{old.result.run_id}"
        )
        new.result = run_smoke_dag(client, timeout=240, alive=new.cluster.check_alive)
    except BaseException:
        for run in (old, new):
            if run is not None:
                print(f"\n[e2e] rotation failed; process log tails:\n{run.cluster.log_tails()}")
                run.stop()
        raise
    print(
        f"\nBENCHMARK postgres-password-rotation postgres_down_seconds="
        f"{result.postgres_down_seconds:.1f} (stop, password sync, start)"
    )
    yield result
    new.stop()


def test_rotation_sets_the_new_password_and_refuses_the_old(rotation: Rotation) -> None:
    assert rotation.old_password != rotation.new_password
    assert rotation.sync is not None and "password set" in rotation.sync.stdout
    assert rotation.logins["new"] == "ok", rotation.logins
    assert "password authentication failed" in rotation.logins["old"], rotation.logins


def test_after_the_rotation_history_survives_and_a_new_run_succeeds(rotation: Rotation) -> None:
    assert rotation.old_run["state"] == "success", rotation.old_run
    assert rotation.new.result is not None and rotation.new.result.state == "success"

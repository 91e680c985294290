"""The rendered backup CronJob, run for real under the kernel's rules (podman + runc, the pod's
identity, read-only root, memory limit): Debian's `pg_dump` against a real PostgreSQL with
the rendered credentials, then `pg_restore` of its dump into a fresh database (the restore drill
the README documents). A wrong password must fail the Job and leave the old dumps alone."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.rendering import render_stack

from .harness.kubelet import ObjectStore, PodInfo, resolve_env
from .harness.runtime import apply_fs_group, run_pod_container
from .harness.services import PostgresServer

pytestmark = pytest.mark.e2e


def backup_pod(rendering: Any) -> tuple[dict[str, Any], str]:
    cron = rendering.one("CronJob", "airflow-backup").inputs["spec"]
    spec = cron["jobTemplate"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "backups"]
    return spec, mount


def run_container(
    pod_spec: dict[str, Any],
    env: dict[str, str],
    mount: str,
    backups: Path,
    postgres_bin: Path,
) -> subprocess.CompletedProcess[str]:
    """The backup container under the kernel's rules (podman + runc): the pod's uid/gid with
    fsGroup, no capabilities, a read-only root with only its mounts (the claim, `/tmp`)
    writable, its memory limit. Debian's pg_dump stands in for the postgres image's (same major
    or newer)."""
    container = pod_spec["containers"][0]
    (claim,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == mount]
    apply_fs_group(backups, "claim", int(pod_spec["securityContext"]["fsGroup"]))
    return run_pod_container(
        pod_spec,
        container,
        env,
        backups.parent,
        claims={claim: backups},
        hostname="backup",
        tools=postgres_bin,
    )


def test_backup_job_dumps_restores_and_fails_on_a_wrong_password(
    postgres_server: PostgresServer, postgres_bin: Path, tmp_path: Path
) -> None:
    rendering = render_stack("staging")
    pod_spec, mount = backup_pod(rendering)
    container = pod_spec["containers"][0]
    namespace = rendering.outputs["namespace"]
    store = ObjectStore.from_manifests(rendering.manifests())
    pod = PodInfo(name="backup", namespace=namespace, labels={}, annotations={}, service_account="")
    env = resolve_env(container, store, pod, service_env={})
    # The Service name maps to the local server, as cluster DNS would resolve it.
    env["PGHOST"], env["PGPORT"] = postgres_server.host, str(postgres_server.port)
    postgres_server.provision(env["PGDATABASE"], env["PGUSER"], env["PGPASSWORD"], superuser=False)
    marker = "backed-up-row-7f3a"
    postgres_server.psql(
        f"SET ROLE {env['PGUSER']}; CREATE TABLE drill (value text);"
        f" INSERT INTO drill VALUES ('{marker}');",
        database=env["PGDATABASE"],
    )
    backups = tmp_path / "backups"
    backups.mkdir()

    done = run_container(pod_spec, env, mount, backups, postgres_bin)
    assert done.returncode == 0, done.stderr
    (dump,) = backups.glob("airflow-*.dump")

    restored = "airflow_restore_drill"
    postgres_server.provision(restored, "restorer", "restorer-pw", superuser=True)
    restore = subprocess.run(
        [
            str(postgres_bin / "pg_restore"),
            "--no-owner",
            "-h",
            postgres_server.host,
            "-p",
            str(postgres_server.port),
            "-U",
            "restorer",
            "-d",
            restored,
            str(dump),
        ],
        env={"PGPASSWORD": "restorer-pw", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert restore.returncode == 0, restore.stderr
    assert postgres_server.psql("SELECT value FROM drill;", database=restored).strip() == marker

    broken = run_container(pod_spec, {**env, "PGPASSWORD": "wrong"}, mount, backups, postgres_bin)
    assert broken.returncode != 0, "the Job reported success although pg_dump failed"
    assert "password authentication failed" in broken.stderr
    assert sorted(backups.iterdir()) == [dump], "a partial file was left or a dump was lost"


def test_the_pre_upgrade_snapshot_names_both_versions_restores_and_fails_loudly(
    postgres_server: PostgresServer, postgres_bin: Path, tmp_path: Path
) -> None:
    """The rendered snapshot Job (staging, image 3.4.0) against a database at a known Airflow
    schema revision: its dump is named after the target image and that revision, restores into
    a fresh database with the history intact, and a failing pg_dump fails the Job with nothing
    left behind (so `pulumi up` stops before the migration)."""
    import copy

    from tests.support.rendering import cluster_config

    cluster = copy.deepcopy(cluster_config("staging"))
    cluster["image"] = {**cluster.get("image", {}), "tag": "3.4.0"}
    rendering = render_stack("staging", cluster=cluster)
    (job,) = [j for j in rendering.of_kind("Job") if "-snapshot-" in str(j.object_name)]
    pod_spec = job.inputs["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "backups"]
    namespace = rendering.outputs["namespace"]
    store = ObjectStore.from_manifests(rendering.manifests())
    pod = PodInfo(
        name="snapshot", namespace=namespace, labels={}, annotations={}, service_account=""
    )
    env = resolve_env(container, store, pod, service_env={})
    env["PGHOST"], env["PGPORT"] = postgres_server.host, str(postgres_server.port)
    postgres_server.provision(env["PGDATABASE"], env["PGUSER"], env["PGPASSWORD"], superuser=False)
    revision, marker = "29ce7909c52b", "history-before-upgrade"
    postgres_server.psql(
        f"SET ROLE {env['PGUSER']};"
        " CREATE TABLE alembic_version (version_num varchar(32) NOT NULL);"
        f" INSERT INTO alembic_version VALUES ('{revision}');"
        f" CREATE TABLE dag_run (run_id text); INSERT INTO dag_run VALUES ('{marker}');",
        database=env["PGDATABASE"],
    )
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "airflow-20260101T000000Z.dump").write_text("a nightly dump, kept")

    done = run_container(pod_spec, env, mount, backups, postgres_bin)
    assert done.returncode == 0, done.stderr
    (snapshot,) = backups.glob("pre-upgrade-*.dump")
    assert snapshot.name.startswith(f"pre-upgrade-to-3-4-0-from-{revision}-"), snapshot.name
    assert f"SNAPSHOT {mount}/{snapshot.name}" in done.stdout

    restored = "airflow_snapshot_drill"
    postgres_server.provision(restored, "snapshot-restorer", "restorer-pw", superuser=True)
    restore = subprocess.run(
        [str(postgres_bin / "pg_restore"), "--no-owner", "-h", postgres_server.host, "-p",
         str(postgres_server.port), "-U", "snapshot-restorer", "-d", restored, str(snapshot)],
        env={"PGPASSWORD": "restorer-pw", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr
    assert postgres_server.psql("SELECT run_id FROM dag_run;", database=restored).strip() == marker

    kept = sorted(backups.iterdir())
    broken = run_container(pod_spec, {**env, "PGPASSWORD": "wrong"}, mount, backups, postgres_bin)
    assert broken.returncode != 0, "the snapshot Job reported success although pg_dump failed"
    assert sorted(backups.iterdir()) == kept, "a partial file was left or a dump was lost"

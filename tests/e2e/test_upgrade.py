"""An Airflow upgrade, run for real in Pulumi's order: 3.2.2 -> 3.3.2 on one database.

1. The `local` stack (with backups, so the snapshot is on) rendered for Airflow 3.2.2 runs on
   the 3.2.2 venv: migrations, processes, a DAG run, and a Variable stored through the API
   (encrypted with the Fernet key).
2. The same release rendered for 3.3.2, applied to the same database in the order Pulumi
   finishes the resources: the snapshot Job (the rendered pod, under podman, Debian's
   pg_dump), then the migration Job and the other Jobs, then the processes. Deviation: the old
   processes stop before the new rendering is laid out (both would hold the scheduler's fixed
   health port on this one machine), where a cluster keeps them serving until the rollout.
3. Checked: the snapshot is named after 3.3.2 and the schema revision 3.2.2 left; the schema
   moved on; the old run's history, the Variable and the admin login survive; a new run
   succeeds on 3.3.2.
4. Restore drill: the snapshot restored into a fresh database holds the old run at the old
   schema revision.
5. Downgrade: the 3.2.2 migration Job refuses the 3.3.2 schema; with `upgrade.allowDowngrade`
   the 3.3.2 image's `airflow db downgrade` takes it back and the 3.2.2 migration succeeds.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import PREVIOUS_AIRFLOW_VERSION
from .harness.api import run_smoke_dag
from .harness.kubelet import ObjectStore, PodInfo, resolve_env
from .harness.stack import StackRun, execute, log_in, prepare_stack
from .test_backups import run_container

pytestmark = pytest.mark.e2e

VARIABLE = ("e2e_upgrade_variable", "stored-on-3.2.2")


def upgrade_cluster(tag: str) -> dict[str, Any]:
    from tests.support.rendering import cluster_config

    raw = copy.deepcopy(cluster_config("local"))
    raw["image"] = {**raw.get("image", {}), "tag": tag}
    # Backups give the snapshot its claim (off by default in local).
    raw["backups"] = {**raw.get("backups", {}), "enabled": True}
    return raw


def snapshot_job(run: StackRun) -> tuple[Any, list[Any]]:
    """The rendered snapshot Job, and the Jobs the harness runs (the others)."""
    snapshots = [j for j in run.cluster.jobs if "-snapshot-" in j[0].name]
    assert len(snapshots) == 1, [j[0].name for j in run.cluster.jobs]
    return snapshots[0], [j for j in run.cluster.jobs if j not in snapshots]


def run_snapshot(
    run: StackRun, workload: Any, postgres_server: Any, postgres_bin: Path, claim: Path
) -> str:
    """The snapshot Job's pod as the kubelet would run it (podman, the pod's identity, the claim
    at its mount), against the played in-cluster Postgres; returns its stdout."""
    pod_spec = workload.pod_spec
    container = pod_spec["containers"][0]
    (mount,) = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "backups"]
    store = ObjectStore.from_manifests(run.rendering.manifests())
    pod = PodInfo(
        name="snapshot", namespace=run.cluster.namespace, labels={}, annotations={},
        service_account="",
    )  # fmt: skip
    env = resolve_env(container, store, pod, service_env={})
    env["PGHOST"], env["PGPORT"] = postgres_server.host, str(postgres_server.port)
    done = run_container(dict(pod_spec), env, mount, claim, postgres_bin)
    assert done.returncode == 0, done.stderr
    return done.stdout


def migration_waits_for_snapshot(rendering: Any) -> bool:
    from tests.test_structure import ordered_before

    jobs = {str(j.object_name): j for j in rendering.of_kind("Job")}
    (snapshot,) = [j for name, j in jobs.items() if "-snapshot-" in name]
    return snapshot.urn in ordered_before(rendering)[jobs["airflow-db-migrate"].urn]


def schema_revision(postgres_server: Any, database: str) -> str:
    return postgres_server.psql("SELECT version_num FROM alembic_version;", database).strip()


@dataclass
class Upgrade:
    old: StackRun
    new: StackRun
    database: str
    claim: Path
    old_revision: str = ""
    new_revision: str = ""
    old_run_id: str = ""
    snapshot_output: str = ""
    checks: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def upgrade(
    airflow_venv, previous_airflow_venv, postgres_server, postgres_bin, dag_files, e2e_dir
) -> Iterator[Upgrade]:
    from airflow_component.config import parse_config

    database = parse_config(upgrade_cluster("x")).database.in_cluster.database
    claim = e2e_dir / "upgrade-backups-claim"
    claim.mkdir()
    old = prepare_stack(
        "local",
        base_dir=e2e_dir / "upgrade-old",
        venv=previous_airflow_venv,
        postgres=postgres_server,
        dag_files=dag_files,
        cluster_override=upgrade_cluster(PREVIOUS_AIRFLOW_VERSION),
    )
    new = None
    try:
        # First install: the snapshot (of an empty database) first, as Pulumi orders it.
        (snapshot, _), others = snapshot_job(old)
        run_snapshot(old, snapshot, postgres_server, postgres_bin, claim)
        old.cluster.jobs = others
        execute(old)
        assert old.result is not None and old.result.state == "success"
        assert old.client is not None
        old.client.request("POST", "/api/v2/variables", {"key": VARIABLE[0], "value": VARIABLE[1]})
        result = Upgrade(old=old, new=old, database=database, claim=claim)
        result.old_run_id = old.result.run_id
        result.old_revision = schema_revision(postgres_server, database)
        # Deviation (documented): on a cluster the old pods serve until the rollout replaces
        # them; here two Airflow versions cannot hold the same fixed ports (the scheduler's
        # health port), so the old processes stop before the new rendering is laid out.
        old.stop()

        new = prepare_stack(
            "local",
            base_dir=e2e_dir / "upgrade-new",
            venv=airflow_venv,
            postgres=postgres_server,
            dag_files=dag_files,
            cluster_override=upgrade_cluster(_current_version()),
            keep_database=True,
        )
        result.new = new
        # Pulumi's order, read from the rendering's dependencies: the snapshot first if the
        # migration Job waits for it (else after the Jobs, as Pulumi would run it then).
        snapshot_first = migration_waits_for_snapshot(new.rendering)
        (snapshot, _), others = snapshot_job(new)
        new.cluster.jobs = others
        new.cluster.start_infrastructure()
        if snapshot_first:
            result.snapshot_output = run_snapshot(
                new, snapshot, postgres_server, postgres_bin, claim
            )
        new.cluster.run_jobs()
        if not snapshot_first:
            result.snapshot_output = run_snapshot(
                new, snapshot, postgres_server, postgres_bin, claim
            )
        result.new_revision = schema_revision(postgres_server, database)
        new.cluster.start_workloads()
        new.cluster.wait_started(network_probes_only=True)
        client = log_in(new)
        result.checks["old_run"] = client.request(
            "GET", f"/api/v2/dags/e2e_smoke/dagRuns/{result.old_run_id}"
        )
        result.checks["variable"] = client.request("GET", f"/api/v2/variables/{VARIABLE[0]}")
        new.result = run_smoke_dag(client, timeout=240, alive=new.cluster.check_alive)
    except BaseException:
        for run in (old, new):
            if run is not None:
                print(f"\n[e2e] upgrade failed; process log tails:\n{run.cluster.log_tails()}")
                run.stop()
        raise
    yield result
    new.stop()


def _current_version() -> str:
    from airflow_component.versions import AIRFLOW_VERSION

    return AIRFLOW_VERSION


def test_the_snapshot_is_taken_before_the_migration_and_named_after_both(
    upgrade: Upgrade,
) -> None:
    target = _current_version().replace(".", "-")
    snapshots = sorted(upgrade.claim.glob(f"pre-upgrade-to-{target}-from-*.dump"))
    assert len(snapshots) == 1, sorted(p.name for p in upgrade.claim.iterdir())
    # Taken before the migration: it names the revision 3.2.2 left, not the new one.
    assert upgrade.old_revision and upgrade.new_revision != upgrade.old_revision
    assert f"-from-{upgrade.old_revision}-" in snapshots[0].name, snapshots[0].name


def test_history_variables_and_login_survive_and_a_new_run_succeeds(upgrade: Upgrade) -> None:
    assert upgrade.checks["old_run"]["state"] == "success"
    assert upgrade.checks["variable"]["value"] == VARIABLE[1]
    assert upgrade.new.result is not None and upgrade.new.result.state == "success"
    versions = subprocess.run(
        [str(upgrade.new.cluster.image.venv / "bin" / "python"), "-c",
         "import airflow; print(airflow.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert versions.stdout.strip() == _current_version()


def test_the_snapshot_restores_the_old_history(
    upgrade: Upgrade, postgres_server: Any, postgres_bin: Path
) -> None:
    target = _current_version().replace(".", "-")
    (snapshot,) = upgrade.claim.glob(f"pre-upgrade-to-{target}-from-*.dump")
    drill = "airflow_upgrade_restore"
    postgres_server.provision(drill, "upgrade-restorer", "restorer-pw", superuser=True)
    restore = subprocess.run(
        [str(postgres_bin / "pg_restore"), "--no-owner", "-h", postgres_server.host, "-p",
         str(postgres_server.port), "-U", "upgrade-restorer", "-d", drill, str(snapshot)],
        env={"PGPASSWORD": "restorer-pw", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert restore.returncode == 0, restore.stderr[-3000:]
    assert schema_revision(postgres_server, drill) == upgrade.old_revision
    found = postgres_server.psql(
        f"SELECT count(*) FROM dag_run WHERE run_id = '{upgrade.old_run_id}';", drill
    ).strip()
    assert found == "1", found


def _run_in(container: Any, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """A command in a copy of a rendered container (its env, identity, mounts and limits)."""
    command, env = container.command(argv)
    return subprocess.run(
        command, env=env, cwd=str(container.cwd), capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip


def test_a_downgrade_is_refused_and_an_allowed_downgrade_goes_back(
    upgrade: Upgrade, postgres_server: Any
) -> None:
    """Last in the module: it moves the shared database back. The 3.2.2 rendering's migration
    Job against the 3.3.2 schema fails with the refusal and changes nothing. The same rendering
    with `upgrade.allowDowngrade` (downgradeFrom 3.3.2) adds a downgrade Job on the 3.3.2 image;
    its args, run in a copy of the 3.3.2 rendering's migration container (same image, same
    needs: the jobs identity and the metadata database), take the schema back; then the 3.2.2
    migration Job succeeds at the revision 3.2.2 left."""
    from tests.support.rendering import render_stack

    (old_migrate,) = [
        pod.containers[0]
        for pod in upgrade.old.cluster.job_pods
        if pod.workload.name == "airflow-db-migrate"
    ]
    refused = _run_in(old_migrate, list(old_migrate.argv))
    assert refused.returncode != 0, refused.stdout[-2000:]
    output = refused.stderr + refused.stdout
    assert "DOWNGRADE REFUSED" in output, refused.stderr[-3000:]
    assert "upgrade.allowDowngrade: true and upgrade.downgradeFrom" in output, output[-3000:]
    assert schema_revision(postgres_server, upgrade.database) == upgrade.new_revision

    allowed = upgrade_cluster(PREVIOUS_AIRFLOW_VERSION)
    allowed["upgrade"] = {"allowDowngrade": True, "downgradeFrom": _current_version()}
    rendering = render_stack("local", cluster=allowed)
    job = rendering.one("Job", "airflow-db-downgrade")
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].endswith(f":{_current_version()}"), container["image"]
    (new_migrate,) = [
        pod.containers[0]
        for pod in upgrade.new.cluster.job_pods
        if pod.workload.name == "airflow-db-migrate"
    ]
    downgraded = _run_in(new_migrate, upgrade.new.cluster.image.entrypoint(container["args"]))
    assert downgraded.returncode == 0, (downgraded.stdout + downgraded.stderr)[-3000:]
    migrated = _run_in(old_migrate, list(old_migrate.argv))
    assert migrated.returncode == 0, (migrated.stdout + migrated.stderr)[-3000:]
    assert schema_revision(postgres_server, upgrade.database) == upgrade.old_revision

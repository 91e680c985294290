"""Upgrades as a transaction (issue: day-2). The rules `pulumi up` must follow when the Airflow
image changes, as Pulumi orders resources:
- a snapshot of in-cluster Postgres is taken and finished before the migration Job starts, and
  the migration before any Deployment rolls (a failed dump or migration stops there, with the
  old pods serving);
- a new image means a new snapshot Job; re-running `pulumi up` on the same image runs none;
- the snapshot pod may reach Postgres (the backup's identity and NetworkPolicy);
- an external database cannot be snapshotted from here: the config must say so.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from airflow_component.config import parse_config
from tests.support.rendering import Rendering, cluster_config, render_stack
from tests.test_network_and_availability import allowed, pods, policies_of
from tests.test_structure import ordered_before


def staging(tag: str | None = None, **changes: Any) -> Rendering:
    cluster = copy.deepcopy(cluster_config("staging"))
    if tag is not None:
        cluster["image"] = {**cluster.get("image", {}), "tag": tag}
    cluster.update(changes)
    return render_stack("staging", cluster=cluster)


def snapshot_jobs(rendering: Rendering) -> list[Any]:
    return [j for j in rendering.of_kind("Job") if "-snapshot-" in str(j.object_name)]


def test_the_snapshot_finishes_before_the_migration_and_the_migration_before_any_rollout() -> None:
    rendering = staging()
    (snapshot,) = snapshot_jobs(rendering)
    (migrate,) = [j for j in rendering.of_kind("Job") if j.object_name == "airflow-db-migrate"]
    before = ordered_before(rendering)
    assert snapshot.urn in before[migrate.urn]
    for deployment in rendering.of_kind("Deployment"):
        if deployment.object_name in ("airflow-pgbouncer",):
            continue
        spec = deployment.inputs["spec"]["template"]["spec"]
        if not any("airflow" in c["image"] for c in spec["containers"]):
            continue
        assert migrate.urn in before[deployment.urn], deployment.object_name
    # The Postgres server it dumps is up first, and the claim it writes to exists.
    server = rendering.one("StatefulSet", "airflow-postgres")
    claim = rendering.one("PersistentVolumeClaim", "airflow-backups")
    assert {server.urn, claim.urn} <= before[snapshot.urn]


def test_a_new_image_is_a_new_snapshot_and_the_same_image_none() -> None:
    first, again, upgraded = staging("3.3.2"), staging("3.3.2"), staging("3.4.0")
    (one,), (same,), (new,) = snapshot_jobs(first), snapshot_jobs(again), snapshot_jobs(upgraded)
    assert one.inputs == same.inputs
    assert one.object_name != new.object_name
    assert "3-4-0" in str(new.object_name)
    script = new.inputs["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    assert "pre-upgrade-to-3-4-0-from-" in script
    # It never joins the nightly rotation (`airflow-*.dump`), so `keep` cannot delete it.
    assert "/backups/airflow-" not in script


def test_the_snapshot_pod_reaches_postgres_and_runs_restricted() -> None:
    from tests.test_pod_security import restricted_violations

    rendering = staging()
    (snapshot,) = snapshot_jobs(rendering)
    template = snapshot.inputs["spec"]["template"]
    policies, by = policies_of(rendering), pods(rendering)
    from tests.test_network_and_availability import pod

    labels = template["metadata"]["labels"]
    assert allowed(policies, pod(labels), by["postgres"], 5432)
    assert not restricted_violations(template["spec"])


def test_local_without_backups_takes_no_snapshot() -> None:
    assert not snapshot_jobs(render_stack("local"))


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        (
            {"upgrade": {}},
            r"upgrade\.snapshot: with an external database nothing here can snapshot it",
        ),
        ({"upgrade": {"snapshot": True}}, r"upgrade\.snapshot: true is for in-cluster"),
    ],
)
def test_an_external_database_needs_an_explicit_answer(changes: dict[str, Any], named: str) -> None:
    cluster = {**copy.deepcopy(cluster_config("prod")), **changes}
    with pytest.raises(pulumi.RunError, match=named):
        parse_config(cluster)


def test_a_snapshot_without_a_claim_to_hold_it_is_refused() -> None:
    with pytest.raises(pulumi.RunError, match=r"upgrade\.snapshot: .*enable backups"):
        parse_config({"environment": "local", "upgrade": {"snapshot": True}})


def _run_migration_script(
    rendering: Rendering, airflow_exit: int, tmp_path: Any, airflow_says: str = "migrating"
) -> Any:
    """The migration container's script as the kubelet expands it (`$$` -> `$`), run by bash
    with an `airflow` on PATH that exits with `airflow_exit`."""
    import subprocess

    from tests.e2e.harness.kubelet import expand_command

    (migrate,) = [j for j in rendering.of_kind("Job") if j.object_name == "airflow-db-migrate"]
    container = migrate.inputs["spec"]["template"]["spec"]["containers"][0]
    _, args = expand_command(container, {})
    assert args[:2] == ["bash", "-c"], args
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "airflow").write_text(f'#!/bin/sh\necho "{airflow_says}"\nexit {airflow_exit}\n')
    (fake / "airflow").chmod(0o755)
    return subprocess.run(
        ["bash", "-c", args[2]],
        env={"PATH": f"{fake}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    ), container


def test_a_failed_migration_names_the_snapshot_and_how_to_restore_it(tmp_path: Any) -> None:
    """The migration's exit code is kept (the Job fails, `pulumi up` stops before any rollout)
    and its last lines, which Kubernetes keeps as the termination message, name the dump the
    snapshot Job wrote (same name pattern), its claim and the restore command."""
    import fnmatch

    rendering = staging("3.4.0")
    failed, container = _run_migration_script(rendering, 3, tmp_path)
    assert failed.returncode == 3, failed
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    message = failed.stderr
    assert "MIGRATION FAILED (exit 3)" in message
    assert "claim airflow-backups" in message and "pg_restore --clean" in message
    pattern = message.split("Snapshot taken before it: ", 1)[1].split(" ", 1)[0]
    written = "/backups/pre-upgrade-to-3-4-0-from-1d6611b6ab7c-20261122T070928Z.dump"
    assert fnmatch.fnmatch(written, pattern), (pattern, written)
    script = snapshot_jobs(rendering)[0].inputs["spec"]["template"]["spec"]["containers"][0]
    assert "pre-upgrade-to-3-4-0-from-" in script["command"][-1]
    succeeded, _ = _run_migration_script(rendering, 0, tmp_path)
    assert succeeded.returncode == 0, succeeded
    # Its output is shown as it runs, and nothing claims a failure.
    assert "migrating" in succeeded.stderr and "FAILED" not in succeeded.stderr


# What alembic (inside `airflow db migrate`) prints when the database is at a revision this
# Airflow does not know, as Airflow 3.2.2 did against a 3.3.2 schema (tests/e2e/test_upgrade.py
# runs that for real).
ALEMBIC_UNKNOWN_REVISION = (
    "alembic.util.exc.CommandError: Can't locate revision identified by 'd2f4e1b3c5a7'"
)


def test_a_downgrade_is_refused_with_the_way_back(tmp_path: Any) -> None:
    rendering = staging("3.2.2")
    refused, _ = _run_migration_script(rendering, 1, tmp_path, ALEMBIC_UNKNOWN_REVISION)
    assert refused.returncode == 1, refused
    assert "DOWNGRADE REFUSED (exit 1)" in refused.stderr
    assert "airflow db downgrade --to-version 3.2.2 --yes" in refused.stderr
    assert "upgrade.allowDowngrade: true and upgrade.downgradeFrom" in refused.stderr
    # Any other failure is not called a downgrade.
    failed, _ = _run_migration_script(rendering, 1, tmp_path, "could not connect to server")
    assert failed.returncode == 1 and "DOWNGRADE" not in failed.stderr, failed.stderr
    assert "MIGRATION FAILED (exit 1)" in failed.stderr


def downgrade_to_322(**changes: Any) -> Rendering:
    upgrade = {"allowDowngrade": True, "downgradeFrom": "3.3.2", **changes}
    return staging("3.2.2", upgrade=upgrade)


def test_an_allowed_downgrade_runs_the_newer_airflow_after_the_snapshot_before_the_migration() -> (
    None
):
    """Only the newer Airflow knows the revisions to undo: the Job runs the deployed image's
    `airflow db downgrade` to the older version, after the snapshot has finished and before the
    older image's migration Job (which then finds a schema it knows) and any rollout."""
    rendering = downgrade_to_322()
    downgrade = rendering.one("Job", "airflow-db-downgrade")
    container = downgrade.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "apache/airflow:3.3.2"
    assert container["args"] == ["db", "downgrade", "--to-version", "3.2.2", "--yes"]
    before = ordered_before(rendering)
    (snapshot,) = snapshot_jobs(rendering)
    migrate = rendering.one("Job", "airflow-db-migrate")
    assert snapshot.urn in before[downgrade.urn]
    assert downgrade.urn in before[migrate.urn]
    # It reaches the database as the migration does: same Secrets, same policies.
    reads = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in container.get("env", [])
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    migration_container = migrate.inputs["spec"]["template"]["spec"]["containers"][0]
    migration_reads = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in migration_container.get("env", [])
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert reads == migration_reads and reads, reads
    from tests.test_network_and_availability import pod
    from tests.test_pod_security import restricted_violations

    template = downgrade.inputs["spec"]["template"]
    policies, by = policies_of(rendering), pods(rendering)
    assert allowed(policies, pod(template["metadata"]["labels"]), by["postgres"], 5432)
    assert not restricted_violations(template["spec"])
    # Without the setting, no such Job.
    assert not [
        j for j in staging("3.2.2").of_kind("Job") if j.object_name == "airflow-db-downgrade"
    ]


@pytest.mark.parametrize(
    ("upgrade", "tag", "named"),
    [
        (
            {"allowDowngrade": True},
            "3.2.2",
            r"upgrade\.allowDowngrade needs upgrade\.downgradeFrom",
        ),
        ({"downgradeFrom": "3.3.2"}, "3.2.2", r"upgrade\.downgradeFrom is read only with"),
        (
            {"allowDowngrade": True, "downgradeFrom": "3.2.2"},
            "3.3.2",
            r"upgrade\.downgradeFrom 3\.2\.2 is not a newer Airflow than image\.tag 3\.3\.2",
        ),
        (
            {"allowDowngrade": True, "downgradeFrom": "3.3.2"},
            "3.3.2-python3.12",
            r"upgrade\.downgradeFrom 3\.3\.2 is not a newer Airflow",
        ),
        (
            {"allowDowngrade": True, "downgradeFrom": "latest"},
            "3.2.2",
            r"upgrade\.downgradeFrom: 'latest' is not an Airflow image tag",
        ),
        (
            {"allowDowngrade": True, "downgradeFrom": "3.3.2"},
            "slim",
            r"image\.tag 'slim': a downgrade needs a tag that starts with the Airflow version",
        ),
    ],
)
def test_a_downgrade_setting_that_cannot_work_is_refused_naming_it(
    upgrade: dict[str, Any], tag: str, named: str
) -> None:
    cluster = copy.deepcopy(cluster_config("staging"))
    cluster["image"] = {**cluster.get("image", {}), "tag": tag}
    cluster["upgrade"] = upgrade
    with pytest.raises(pulumi.RunError, match=named):
        parse_config(cluster)

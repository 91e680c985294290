"""Rotating the generated Postgres password: `database.inCluster.passwordGeneration`.

The rules a cluster enforces, stated without reading our code:
- a container reads a Secret's value when it starts (env `secretKeyRef`, `envFrom`, files read
  once such as PgBouncer's userlist): a long-running pod that reads a Secret whose value changed
  keeps the old value until its pod template changes and it is replaced;
- a pod that reads nothing that changed has no reason to restart;
- pulumi-random regenerates a value whenever its `keepers` change, adding keepers included;
- the consumers of the new password may start only after Postgres has restarted with it.
Postgres setting its role's password from the Secret on every start runs for real in
`tests/e2e/test_postgres_password.py`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support.rendering import Rendering, cluster_config, render_stack
from tests.test_structure import ordered_before

LONG_RUNNING = ("Deployment", "StatefulSet")


def staging_with(generation: int | None) -> Rendering:
    raw = copy.deepcopy(cluster_config("staging"))
    raw["pgbouncer"] = {"enabled": True}
    if generation is not None:
        raw["database"]["inCluster"]["passwordGeneration"] = generation
    return render_stack("staging", cluster=raw)


def secrets_read(spec: dict[str, Any]) -> set[str]:
    """Names of the Secrets a pod's containers read (env, envFrom, volumes, projections)."""
    names: set[str] = set()
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for projected in (volume.get("projected") or {}).get("sources", []):
            if "secret" in projected:
                names.add(projected["secret"]["name"])
    return names


def changed_secrets(before: Rendering, after: Rendering) -> set[str]:
    old, new = before.secret_data(), after.secret_data()
    return {
        name
        for (name, key) in old.keys() | new.keys()
        if old.get((name, key)) != new.get((name, key))
    }


def templates(rendering: Rendering) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r.kind or "", r.object_name or ""): r.inputs["spec"]["template"]
        for r in rendering.kubernetes
        if r.kind in LONG_RUNNING
    }


def postgres_password_secret(rendering: Rendering) -> str:
    for resource in rendering.of_kind("StatefulSet"):
        container = resource.inputs["spec"]["template"]["spec"]["containers"][0]
        for env in container.get("env", []):
            if env["name"] == "POSTGRES_PASSWORD":
                return str(env["valueFrom"]["secretKeyRef"]["name"])
    raise AssertionError("no StatefulSet reads POSTGRES_PASSWORD")


def test_a_new_generation_changes_the_password_and_every_reader_of_it_rolls() -> None:
    before, after = staging_with(None), staging_with(2)
    changed = changed_secrets(before, after)
    assert postgres_password_secret(before) in changed, changed
    old_templates, new_templates = templates(before), templates(after)
    assert old_templates.keys() == new_templates.keys()
    readers = {
        workload: secrets_read(template["spec"]) & changed
        for workload, template in new_templates.items()
        if secrets_read(template["spec"]) & changed
    }
    # Postgres, PgBouncer and the Airflow processes at least: not a vacuous check.
    assert {name for _, name in readers} >= {
        "airflow-postgres",
        "airflow-pgbouncer",
        "airflow-scheduler",
        "airflow-api-server",
        "airflow-worker",
    }, sorted(readers)
    stale = [
        f"{kind}/{name} reads {sorted(secrets)} but its pod template did not change"
        for (kind, name), secrets in readers.items()
        if old_templates[(kind, name)] == new_templates[(kind, name)]
    ]
    assert not stale, "\n".join(stale)


def test_pods_that_read_no_changed_secret_do_not_restart() -> None:
    before, after = staging_with(None), staging_with(2)
    changed = changed_secrets(before, after)
    old_templates, new_templates = templates(before), templates(after)
    bystanders = [
        workload
        for workload, template in new_templates.items()
        if not secrets_read(template["spec"]) & changed
    ]
    assert bystanders, "expected some workloads that read no changed Secret (Redis, Flower...)"
    restarted = [w for w in bystanders if old_templates[w] != new_templates[w]]
    assert not restarted, restarted


def test_the_same_generation_keeps_the_password_and_generation_1_adds_no_keepers() -> None:
    """A deployment made before this setting existed must keep its password: pulumi-random
    replaces the value when keepers are added, so generation 1 must have none."""
    implicit, explicit = staging_with(None), staging_with(1)
    assert implicit.secret_data() == explicit.secret_data()
    assert staging_with(3).secret_data() == staging_with(3).secret_data()
    (password,) = [
        r
        for r in implicit.resources
        if r.typ == "random:index/randomPassword:RandomPassword" and "postgres" in r.name
    ]
    assert not password.inputs.get("keepers"), json.dumps(password.inputs.get("keepers"))
    rotated = staging_with(2).secret_data()[(postgres_password_secret(implicit), "password")]
    assert rotated != implicit.secret_data()[(postgres_password_secret(implicit), "password")]


def test_every_reader_of_the_password_starts_after_postgres_has_it() -> None:
    rendering = staging_with(2)
    before = ordered_before(rendering)
    changed = changed_secrets(staging_with(None), rendering)
    (postgres,) = [
        r for r in rendering.of_kind("StatefulSet") if r.object_name == "airflow-postgres"
    ]
    early = [
        f"{r.kind}/{r.object_name}"
        for r in rendering.kubernetes
        if r.kind in LONG_RUNNING
        and r is not postgres
        and secrets_read(r.inputs["spec"]["template"]["spec"]) & changed
        and postgres.urn not in before[r.urn]
    ]
    assert not early, early

"""The deployment guard refuses, at preview, what the deployed state cannot take.

The rules it must hold, stated without its code:
- a deployment never takes the image below the deployed Airflow unless the downgrade procedure
  names that deployed version (the database holds its schema);
- the engine refuses to delete an object its state marks protected, and to replace one the new
  program still protects (pulumi.com/docs/iac/concepts/resources/options/protect; the check on
  the new flag: pulumi/pulumi#8873): the guard refuses exactly those changes, with the setting
  and the procedure, and nothing else. For every single setting of the staging stack (the one
  that protects data) changed to another accepted value, the guard's verdict is compared with
  the provider's replacement rules of `tests/test_day2_replacements.py`;
- the key that encrypts Connections and Variables changes only while the key in use stays
  readable (listed in `fernet.previousKeys`, README: Fernet key rotation);
- nothing else is touched before the guard has been checked: every resource waits for it;
- its provider runs in a process of its own (the engine's dynamic-provider host): the check
  works there from the serialized provider the program stored, and a refusal comes back as a
  check failure with the reason, not a traceback.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from airflow_component.config import AirflowConfig, parse_config
from airflow_component.guard import guard_failures
from tests.support.model_tree import model_types
from tests.support.rendering import (
    Rendering,
    Resource,
    cluster_config,
    render_stack,
    run_under_mocks,
)
from tests.test_day2_replacements import protected_replacements

ROOT = Path(__file__).resolve().parents[1]
GUARD_TYPE = "pulumi-python:dynamic/airflow-k8s:DeploymentGuard"


def guard_of(rendering: Rendering) -> Resource:
    (guard,) = [r for r in rendering.resources if r.typ == GUARD_TYPE]
    return guard


def record(rendering: Rendering) -> dict[str, Any]:
    return {k: v for k, v in guard_of(rendering).inputs.items() if k != "__provider"}


def with_changes(stack: str, **changes: Any) -> Rendering:
    cluster = copy.deepcopy(cluster_config(stack))
    cluster.update(changes)
    return render_stack(stack, cluster=cluster)


def test_every_resource_waits_for_the_guard() -> None:
    rendering = render_stack("staging")
    guard = guard_of(rendering)
    waiting = [
        r.name
        for r in rendering.resources
        if r.custom and r is not guard and guard.urn not in r.options["dependencies"]
    ]
    assert waiting == []
    assert sum(r.custom for r in rendering.resources) > 40


def _image(tag: str) -> dict[str, Any]:
    return {**cluster_config("local").get("image", {}), "tag": tag}


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"image": _image("3.3.2")}, None),
        ({"image": _image("3.4.0")}, None),
        ({"image": _image("3.3.2-python3.12")}, None),
        (
            {"image": _image("3.2.2")},
            r"image\.tag: Airflow 3\.2\.2 is older than the deployed 3\.3\.2.*"
            r"upgrade\.allowDowngrade: true and upgrade\.downgradeFrom: '3\.3\.2'",
        ),
        (
            {
                "image": _image("3.2.2"),
                "upgrade": {"allowDowngrade": True, "downgradeFrom": "3.3.2"},
            },
            None,
        ),
        (
            {
                "image": _image("3.2.2"),
                "upgrade": {"allowDowngrade": True, "downgradeFrom": "3.4.0"},
            },
            r"upgrade\.downgradeFrom: '3\.4\.0', but the deployed Airflow is '3\.3\.2'",
        ),
    ],
)
def test_a_downgrade_needs_the_procedure_naming_the_deployed_version(
    changes: dict[str, Any], refused: str | None
) -> None:
    deployed = record(with_changes("local", image=_image("3.3.2")))
    failures = guard_failures(deployed, record(with_changes("local", **changes)))
    if refused is None:
        assert failures == []
    else:
        assert len(failures) == 1 and re.search(refused, failures[0][1]), failures


def test_a_first_deployment_has_nothing_to_break() -> None:
    assert guard_failures({}, record(with_changes("local", image=_image("3.2.2")))) == []


def engine_refusals(before: Rendering, after: Rendering) -> list[str]:
    """`<resource name>: <reasons>` for each change the engine refuses (its protect rules over
    the provider's replacement rules, `tests/test_day2_replacements.py`)."""
    return [
        f"{urn.rsplit('::', 1)[-1]}: {reasons}"
        for urn, reasons in protected_replacements(before, after).items()
    ]


def _other_values(path: tuple[str, ...], held: Any) -> list[Any]:
    """Values to try in a scalar field (none for models, dicts and list items)."""
    if any("[" in step for step in path):
        return []
    if get_origin(held) is Literal:
        return list(get_args(held))
    if held is bool:
        return [True, False]
    if held is int:
        return [2]
    if path[-1] == "size":
        return ["40Gi"]
    if isinstance(held, type) and issubclass(held, str):
        return ["changed-x"]
    return []


def single_setting_changes(stack: str) -> typing.Iterator[tuple[str, dict[str, Any]]]:
    """Every scalar setting of the model set to another value, where the config accepts it."""
    base = cluster_config(stack)
    seen = set()
    for path, held in model_types(AirflowConfig):
        for value in _other_values(path, held):
            raw = copy.deepcopy(base)
            node: Any = raw
            for step in path[:-1]:
                node = node.setdefault(step, {})
            if not isinstance(node, dict) or node.get(path[-1]) == value:
                continue
            node[path[-1]] = value
            try:
                parse_config(raw)
            except Exception:  # refused by the config: not a deployable change
                continue
            change = (path, repr(value))
            if change not in seen:
                seen.add(change)
                yield f"{'.'.join(path)}={value!r}", raw


def test_the_guard_refuses_exactly_what_the_engine_would_refuse_on_protected_data() -> None:
    before = render_stack("staging")
    deployed = record(before)
    assert any(o["protected"] for o in deployed["dataObjects"].values()), "nothing protected"
    verdicts: dict[str, tuple[bool, bool]] = {}
    for label, raw in single_setting_changes("staging"):
        after = render_stack("staging", cluster=raw)
        refused_by_engine = bool(engine_refusals(before, after))
        refused_by_guard = any(
            field == "dataObjects" for field, _ in guard_failures(deployed, record(after))
        )
        verdicts[label] = (refused_by_engine, refused_by_guard)
    disagreements = {label: v for label, v in verdicts.items() if v[0] != v[1]}
    assert disagreements == {}
    refused = sorted(label for label, (engine, _) in verdicts.items() if engine)
    # Not vacuous: many settings were changed, and the dangerous ones are among them.
    assert len(verdicts) > 80, len(verdicts)
    assert any(label.startswith("namespace.name=") for label in refused), refused
    assert any(label.startswith("backups.enabled=") for label in refused), refused
    assert any("inCluster.storage.storageClassName" in label for label in refused), refused
    assert not any(label.startswith("database.inCluster.storage.size=") for label in refused)


def test_a_refusal_names_the_setting_the_object_and_the_procedure() -> None:
    before = render_stack("staging")
    after = with_changes("staging", backups={**cluster_config("staging").get("backups", {})})
    assert guard_failures(record(before), record(after)) == []
    cluster = copy.deepcopy(cluster_config("staging"))
    cluster.setdefault("backups", {})["enabled"] = False
    ((field, reason),) = guard_failures(record(before), record(render_stack("staging", cluster)))
    assert field == "dataObjects"
    assert reason.startswith("backups: this change deletes the protected PersistentVolumeClaim")
    assert "database.inCluster.protect: false" in reason and "on its own" in reason
    cluster = copy.deepcopy(cluster_config("staging"))
    cluster["namespace"] = {**cluster.get("namespace", {}), "name": "airflow-moved"}
    reasons = [
        r for _, r in guard_failures(record(before), record(render_stack("staging", cluster)))
    ]
    assert any("StatefulSet airflow-postgres" in r and "its namespace" in r for r in reasons)


def test_lifting_protection_on_its_own_then_changing_passes() -> None:
    """The documented procedure goes through: protection lifted first (nothing deleted), then
    the change against the unprotected record."""
    base = copy.deepcopy(cluster_config("staging"))
    unprotected = copy.deepcopy(base)
    unprotected.setdefault("database", {}).setdefault("inCluster", {})["protect"] = False
    moved = copy.deepcopy(unprotected)
    moved.setdefault("backups", {})["enabled"] = False
    first, second, third = (render_stack("staging", cluster=c) for c in (base, unprotected, moved))
    assert guard_failures(record(first), record(third)) != []
    assert guard_failures(record(first), record(second)) == []
    assert guard_failures(record(second), record(third)) == []
    assert engine_refusals(first, second) == [] and engine_refusals(second, third) == []


def test_the_guard_provider_answers_from_its_own_process() -> None:
    """The engine runs a dynamic provider in `python -m pulumi.dynamic` in the program's
    directory and sends it the serialized provider the program stored: here the same host
    process answers Check over gRPC, refusing a downgrade with the reason as a check failure."""
    import asyncio

    import grpc  # type: ignore[import-untyped]
    from pulumi.runtime import rpc
    from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

    deployed = with_changes("local", image=_image("3.3.2"))
    downgraded = with_changes("local", image=_image("3.2.2"))
    host = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.dynamic"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline().strip())
        stub = provider_pb2_grpc.ResourceProviderStub(grpc.insecure_channel(f"127.0.0.1:{port}"))
        stub.Configure(provider_pb2.ConfigureRequest(), timeout=30)

        def check(olds: Resource, news: Resource) -> Any:
            loop = asyncio.new_event_loop()
            try:
                old_props, new_props = (
                    loop.run_until_complete(rpc.serialize_properties(r.inputs, {}))
                    for r in (olds, news)
                )
            finally:
                loop.close()
            return stub.Check(
                provider_pb2.CheckRequest(
                    urn=guard_of(downgraded).urn, olds=old_props, news=new_props
                ),
                timeout=60,
            )

        refused = check(guard_of(deployed), guard_of(downgraded))
        assert [f.property for f in refused.failures] == ["airflowVersion"]
        assert "older than the deployed 3.3.2" in refused.failures[0].reason
        assert "Traceback" not in refused.failures[0].reason
        allowed = check(guard_of(deployed), guard_of(deployed))
        assert list(allowed.failures) == []
    finally:
        host.kill()
        host.wait(timeout=30)


def test_the_record_is_updated_in_place_and_never_replaced() -> None:
    from airflow_component.guard import DeploymentGuard

    old = guard_of(with_changes("local", image=_image("3.3.2"))).inputs
    new = guard_of(with_changes("local", image=_image("3.4.0"))).inputs
    assert DeploymentGuard().diff("id", old, old).changes is False
    bumped = DeploymentGuard().diff("id", old, new)
    assert bumped.changes is True and not bumped.replaces
    reserialized = DeploymentGuard().diff("id", old, {**old, "__provider": "other"})
    assert reserialized.changes is True and not reserialized.replaces


def _fernet(**settings: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(cluster_config("local"))
    cluster.update(settings)
    return record(render_stack("local", cluster=cluster))


OLD_KEY = [{"name": "fernet-old", "key": "fernet-key"}]
OWN_KEY = {"fernetKey": {"name": "team-keys", "key": "fernet"}}


@pytest.mark.parametrize(
    ("deployed", "next_deployment", "refused"),
    [
        ({}, {"fernet": {"generation": 2, "previousKeys": OLD_KEY}}, False),
        (
            {"fernet": {"generation": 2, "previousKeys": OLD_KEY}},
            {"fernet": {"generation": 2, "rotatedGeneration": 2}},
            False,
        ),
        (
            {"fernet": {"generation": 2, "rotatedGeneration": 2}},
            {"fernet": {"generation": 3, "rotatedGeneration": 3}},
            True,
        ),
        ({}, {"existingSecrets": OWN_KEY}, True),
        ({}, {"existingSecrets": OWN_KEY, "fernet": {"previousKeys": OLD_KEY}}, False),
        ({"existingSecrets": OWN_KEY}, {}, True),
        ({}, {"image": _image("3.4.0")}, False),
    ],
)
def test_the_fernet_key_changes_only_while_the_old_one_stays_readable(
    deployed: dict[str, Any], next_deployment: dict[str, Any], refused: bool
) -> None:
    failures = guard_failures(_fernet(**deployed), _fernet(**next_deployment))
    assert [field for field, _ in failures] == (["fernetKey"] if refused else []), failures
    if refused:
        assert "fernet.previousKeys" in failures[0][1] and "unreadable" in failures[0][1]


def _component(name: str, stack: str, **changes: Any) -> Rendering:
    from airflow_component import AirflowCluster, AirflowClusterArgs

    raw = {**copy.deepcopy(cluster_config(stack)), **changes}
    args = AirflowClusterArgs(config=parse_config(raw))
    return run_under_mocks(lambda: AirflowCluster(name, args), stack=stack)


def _seed(rendering: Rendering) -> Resource:
    (seed,) = [r for r in rendering.resources if r.name.endswith("-fernet-seed")]
    return seed


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_the_fernet_key_cannot_be_regenerated_by_a_rename(stack: str) -> None:
    """Where data is protected the key that encrypts it is too: renaming the component (a new
    identity for every resource, the guard's record included) is refused by the engine rather
    than answered with a new key; a rotation that lists the old key may replace it."""
    before, renamed = _component("airflow", stack), _component("airflow-new", stack)
    assert any(
        r.endswith("airflow-fernet-seed: ['deleted']") for r in engine_refusals(before, renamed)
    )
    rotating = _component("airflow", stack, fernet={"generation": 2, "previousKeys": OLD_KEY})
    assert _seed(before).options["protect"] and not _seed(rotating).options["protect"]
    assert engine_refusals(before, rotating) == []
    local = _component("airflow", "local")
    assert not _seed(local).options["protect"]

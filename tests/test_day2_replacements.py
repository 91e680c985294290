"""A documented day-2 procedure must be something `pulumi up` will carry out.

The engine refuses any deployment that would delete a protected resource, a replacement
included ("any deployment that would delete it (including a replacement) fails with an error",
pulumi.com/docs/iac/operations/stack-management/protecting-against-undesired-changes; the check is
on the new `protect`, pulumi/pulumi#8873). Mocks do not enforce that, so this test does, with the
providers' own rules for what forces a replacement:
- pulumi-random: every input of a `RandomPassword` (length, specials, keepers) forces a new one;
- Kubernetes: a new name or namespace is a new object; immutable fields (a StatefulSet's
  selector, serviceName, volumeClaimTemplates and podManagementPolicy; a claim's spec other than
  its storage request; a Deployment's selector; an immutable Secret's data) can only change by
  replacing the object.
A path in a resource's `ignoreChanges` keeps its value from the state: the engine diffs with the
old value there ("Pulumi ignores a property by using the old value from the state",
pulumi.com/docs/iac/concepts/options/ignorechanges; nested paths: /docs/reference/property-paths).
Each procedure the README documents is rendered before and after, for the stacks where data is
protected; no protected resource may need a replacement.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.rendering import Rendering, Resource, cluster_config, render_stack
from tests.test_manifests import KUBERNETES_VERSIONS, strict_errors

# The stacks that protect something: `local` protects nothing, `prod` runs on an external
# database (the provider's snapshots and deletion protection guard it).
PROTECTED_STACKS = ["staging"]

# Kubernetes fields the API server refuses to change in place (the provider replaces instead).
IMMUTABLE_SPEC_FIELDS = {
    "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
    "Deployment": ("selector",),
    "Job": ("selector", "template"),
}


def _password_rotation(cluster: dict[str, Any]) -> None:
    cluster.setdefault("database", {}).setdefault("inCluster", {})["passwordGeneration"] = 2


def _fernet_rotation_started(cluster: dict[str, Any]) -> None:
    cluster["fernet"] = {
        "generation": 2,
        "previousKeys": [{"name": "fernet-old", "key": "fernet-key"}],
    }


def _fernet_rotation_finished(cluster: dict[str, Any]) -> None:
    cluster["fernet"] = {"generation": 2, "rotatedGeneration": 2}


def _grow_postgres_storage(cluster: dict[str, Any]) -> None:
    in_cluster = cluster.setdefault("database", {}).setdefault("inCluster", {})
    in_cluster["storage"] = {**in_cluster.get("storage", {}), "size": "40Gi"}


def _upgrade(cluster: dict[str, Any]) -> None:
    cluster["image"] = {**cluster.get("image", {}), "tag": "3.4.0"}


def _downgrade(cluster: dict[str, Any]) -> None:
    cluster["image"] = {**cluster.get("image", {}), "tag": "3.2.2"}
    cluster["upgrade"] = {"allowDowngrade": True, "downgradeFrom": "3.3.2"}


PROCEDURES: dict[str, Callable[[dict[str, Any]], None]] = {
    "postgres password rotation": _password_rotation,
    "grow postgres storage": _grow_postgres_storage,
    "fernet rotation, step 2": _fernet_rotation_started,
    "fernet rotation, step 3": _fernet_rotation_finished,
    "upgrade": _upgrade,
    "downgrade": _downgrade,
}
# A step that follows another starts from the state the earlier step left.
STARTS_FROM: dict[str, Callable[[dict[str, Any]], None]] = {
    "fernet rotation, step 3": _fernet_rotation_started,
}


def rendered(stack: str, change: Callable[[dict[str, Any]], None] | None = None) -> Rendering:
    cluster = copy.deepcopy(cluster_config(stack))
    if change is not None:
        change(cluster)
    return render_stack(stack, cluster=cluster)


def _claim_spec_without_storage(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec.get("resources", {}).get("requests", {}).pop("storage", None)
    return spec


_PATH_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def path_steps(path: str) -> list[str | int]:
    """A Pulumi property path (`spec.volumeClaimTemplates[0].spec`) as keys and indexes."""
    return [int(index) if index else key for key, index in _PATH_STEP.findall(path)]


def value_at(value: Any, path: str) -> Any:
    for step in path_steps(path):
        value = value[step]
    return value


def as_engine_diffs(before: Resource, after: Resource) -> dict[str, Any]:
    """`after`'s inputs with every ignored path holding `before`'s value, as the engine sends
    them to the provider's diff."""
    inputs = copy.deepcopy(after.inputs)
    for path in after.options.get("ignore_changes") or []:
        try:
            old = value_at(before.inputs, path)
            *parents, last = path_steps(path)
            node: Any = inputs
            for step in parents:
                node = node[step]
        except (KeyError, IndexError):
            continue  # no old value (or no new place for it): the program's value is used
        node[last] = old
    return inputs


def replacement_reasons(before: Resource, after: Resource | None) -> list[str]:
    """Why the provider would replace (or delete) `before` to reach `after`."""
    if after is None:
        return ["deleted"]
    after = copy.copy(after)
    after.inputs = as_engine_diffs(before, after)
    if before.typ.startswith("random:"):
        return [
            f"input {key}"
            for key in sorted(before.inputs.keys() | after.inputs.keys())
            if before.inputs.get(key) != after.inputs.get(key)
        ]
    if not before.typ.startswith("kubernetes:"):
        return []
    reasons = []
    old_meta, new_meta = before.inputs.get("metadata") or {}, after.inputs.get("metadata") or {}
    for key in ("name", "namespace"):
        if old_meta.get(key) != new_meta.get(key):
            reasons.append(f"metadata.{key}")
    kind = before.kind or ""
    old_spec, new_spec = before.inputs.get("spec") or {}, after.inputs.get("spec") or {}
    for key in IMMUTABLE_SPEC_FIELDS.get(kind, ()):
        if old_spec.get(key) != new_spec.get(key):
            reasons.append(f"spec.{key}")
    if kind == "PersistentVolumeClaim" and _claim_spec_without_storage(
        old_spec
    ) != _claim_spec_without_storage(new_spec):
        reasons.append("spec (other than the storage request)")
    if before.inputs.get("immutable") and before.inputs.get("data") != after.inputs.get("data"):
        reasons.append("data of an immutable object")
    return reasons


def protected_replacements(before: Rendering, after: Rendering) -> dict[str, list[str]]:
    """What the engine refuses: deleting what the state protects, replacing what the new
    program protects (the check is on the new flag, pulumi/pulumi#8873)."""
    new = {resource.urn: resource for resource in after.resources}
    found = {}
    for resource in before.resources:
        successor = new.get(resource.urn)
        if not (successor or resource).options.get("protect"):
            continue
        reasons = replacement_reasons(resource, successor)
        if reasons:
            found[resource.urn] = reasons
    return found


@pytest.mark.parametrize("stack", PROTECTED_STACKS)
@pytest.mark.parametrize("procedure", sorted(PROCEDURES))
def test_no_documented_procedure_replaces_a_protected_resource(stack: str, procedure: str) -> None:
    start = STARTS_FROM.get(procedure)

    def after_procedure(cluster: dict[str, Any]) -> None:
        if start is not None:
            start(cluster)
        PROCEDURES[procedure](cluster)

    before, after = rendered(stack, start), rendered(stack, after_procedure)
    assert any(r.options.get("protect") for r in before.resources), "nothing protected"
    changed = {r.urn for r in before.resources} & {r.urn for r in after.resources}
    assert any(
        r.inputs != a.inputs
        for r in before.resources
        for a in after.resources
        if r.urn == a.urn and r.urn in changed
    ), f"{procedure} changes nothing: the procedure is not applied"
    assert protected_replacements(before, after) == {}


def test_the_rules_see_a_replacement() -> None:
    """The rules themselves: a renamed claim and new keepers are replacements."""
    claim = Resource(
        typ="kubernetes:core/v1:PersistentVolumeClaim",
        name="c",
        inputs={
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "a"},
            "spec": {"resources": {"requests": {"storage": "20Gi"}}},
        },
        secret_paths=[],
        custom=True,
    )
    renamed = copy.deepcopy(claim)
    renamed.inputs["metadata"]["name"] = "b"
    assert replacement_reasons(claim, renamed) == ["metadata.name"]
    grown = copy.deepcopy(claim)
    grown.inputs["spec"] = {"resources": {"requests": {"storage": "40Gi"}}}
    assert replacement_reasons(claim, grown) == []
    password = Resource(
        typ="random:index/randomPassword:RandomPassword",
        name="p",
        inputs={"length": 32},
        secret_paths=[],
        custom=True,
    )
    rekept = copy.deepcopy(password)
    rekept.inputs["keepers"] = {"generation": "2"}
    assert replacement_reasons(password, rekept) == ["input keepers"]


def _with_persistent_redis(stack: str, size: str | None = None) -> Rendering:
    def change(cluster: dict[str, Any]) -> None:
        cluster["executors"] = "CeleryExecutor"
        celery = cluster.setdefault("celery", {})
        celery["redis"] = {"storage": {"ephemeral": False, **({"size": size} if size else {})}}
        if size:
            _grow_postgres_storage(cluster)

    return rendered(stack, change)


@pytest.mark.parametrize("stack", ["local", "staging"])
def test_growing_a_data_store_grows_its_live_claim_and_keeps_the_statefulset(stack: str) -> None:
    """Kubernetes names a StatefulSet's claim `<template>-<StatefulSet>-<ordinal>` and refuses
    changes to the templates. A new size must reach that live claim (a server-side patch, after
    the StatefulSet is ready so the claim exists), while the StatefulSet's diff stays empty."""
    before, after = _with_persistent_redis(stack), _with_persistent_redis(stack, "8Gi")
    sets = [s for s in after.of_kind("StatefulSet") if s.inputs["spec"].get("volumeClaimTemplates")]
    assert {s.object_name for s in sets} == {"airflow-postgres", "airflow-redis"}
    expected_sizes = {"airflow-postgres": "40Gi", "airflow-redis": "8Gi"}
    for statefulset in sets:
        spec = statefulset.inputs["spec"]
        (template,) = spec["volumeClaimTemplates"]
        claim = f"{template['metadata']['name']}-{statefulset.object_name}-0"
        (patch,) = [p for p in after.patches if p.object_name == claim]
        assert patch.kind == "PersistentVolumeClaim"
        assert patch.inputs["metadata"]["namespace"] == statefulset.inputs["metadata"]["namespace"]
        size = patch.inputs["spec"]["resources"]["requests"]["storage"]
        assert size == expected_sizes[statefulset.object_name or ""]
        assert statefulset.urn in patch.options["dependencies"]
        # Taking the request over from the controller that created the claim, and leaving the
        # claim alone when the patch goes.
        assert patch.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
        assert patch.options["retain_on_delete"]
        for version in KUBERNETES_VERSIONS:
            assert strict_errors(patch.manifest, version) is None, (claim, version)
        (old,) = [s for s in before.of_kind("StatefulSet") if s.urn == statefulset.urn]
        assert as_engine_diffs(old, statefulset) == old.inputs, statefulset.object_name
    assert len(after.patches) == len(sets)


def test_an_ephemeral_store_has_no_claim_to_grow() -> None:
    rendering = rendered("staging")
    redis = rendering.one("StatefulSet", "airflow-redis")
    assert "volumeClaimTemplates" not in redis.inputs["spec"]
    assert not redis.options.get("ignore_changes")
    assert [p.object_name for p in rendering.patches] == ["data-airflow-postgres-0"]

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
Each procedure the README documents is rendered before and after, for the stacks where data is
protected; no protected resource may need a replacement.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.rendering import Rendering, Resource, cluster_config, render_stack

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


def _upgrade(cluster: dict[str, Any]) -> None:
    cluster["image"] = {**cluster.get("image", {}), "tag": "3.4.0"}


def _downgrade(cluster: dict[str, Any]) -> None:
    cluster["image"] = {**cluster.get("image", {}), "tag": "3.2.2"}
    cluster["upgrade"] = {"allowDowngrade": True, "downgradeFrom": "3.3.2"}


PROCEDURES: dict[str, Callable[[dict[str, Any]], None]] = {
    "postgres password rotation": _password_rotation,
    "fernet rotation, step 2": _fernet_rotation_started,
    "fernet rotation, step 3": _fernet_rotation_finished,
    "upgrade": _upgrade,
    "downgrade": _downgrade,
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


def replacement_reasons(before: Resource, after: Resource | None) -> list[str]:
    """Why the provider would replace (or delete) `before` to reach `after`."""
    if after is None:
        return ["deleted"]
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
    new = {resource.urn: resource for resource in after.resources}
    found = {}
    for resource in before.resources:
        if not resource.options.get("protect"):
            continue
        reasons = replacement_reasons(resource, new.get(resource.urn))
        if reasons:
            found[resource.urn] = reasons
    return found


@pytest.mark.parametrize("stack", PROTECTED_STACKS)
@pytest.mark.parametrize("procedure", sorted(PROCEDURES))
def test_no_documented_procedure_replaces_a_protected_resource(stack: str, procedure: str) -> None:
    before, after = rendered(stack), rendered(stack, PROCEDURES[procedure])
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

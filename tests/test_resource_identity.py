"""Pulumi knows a resource by its identity: its name and the chain of types from the stack down
to it (its URN). A changed identity without an alias is a delete and a create. For what holds
keys or data that is loss, not churn: a new `RandomPassword` value (a new Fernet key strands
every encrypted connection and variable; a new Postgres password locks Airflow out of data that
kept the old one), or a new claim for Postgres or the backups.

So the identity of every key-bearing or protected resource is recorded per stack in
`tests/data/key_resource_identities.json`. A refactor that moves or renames one must add
`aliases` (the old identity) in the same change, then update the record: this test names the
resources whose identity moved.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.rendering import Rendering, Resource, render_stack

RECORD = Path(__file__).parent / "data" / "key_resource_identities.json"
STACKS = ["local", "staging", "prod"]


def key_bearing(resource: Resource) -> bool:
    """Generated values, and whatever the component protects or keeps on delete (data). A
    patch is kept on delete only so that its object stays as it is: it holds no data."""
    if resource.is_patch:
        return False
    return (
        resource.typ.startswith("random:")
        or bool(resource.options.get("protect"))
        or bool(resource.options.get("retain_on_delete"))
    )


def identity(rendering: Rendering, resource: Resource) -> str:
    """`<ancestor types>$<type>::<name>`: what the engine's URN is made of, from the parent
    links (the Stack's own type is not part of a URN)."""
    by_urn = {r.urn: r for r in rendering.resources}
    types = [resource.typ]
    parent = by_urn.get(resource.parent or "")
    while parent is not None:
        types.insert(0, parent.typ)
        parent = by_urn.get(parent.parent or "")
    return "$".join(types) + "::" + resource.name


def identities(stack: str) -> list[str]:
    rendering = render_stack(stack)
    return sorted(identity(rendering, r) for r in rendering.resources if key_bearing(r))


@pytest.mark.parametrize("stack", STACKS)
def test_key_bearing_resources_keep_their_identity(stack: str) -> None:
    recorded = set(json.loads(RECORD.read_text())[stack])
    current = set(identities(stack))
    assert current, "no key-bearing resource found: the selection is broken"
    moved = sorted(recorded - current)
    assert not moved, (
        "these key-bearing resources would be deleted and recreated (their values or data "
        "lost); add aliases from the old identity, then update "
        f"{RECORD.name}:\n" + "\n".join(moved)
    )
    added = sorted(current - recorded)
    assert not added, f"new key-bearing resources: record them in {RECORD.name}:\n" + "\n".join(
        added
    )


def test_the_record_covers_the_generated_values_of_every_stack() -> None:
    """Not vacuous: the Fernet seed and, in-cluster, the Postgres password are recorded."""
    record = json.loads(RECORD.read_text())
    assert any(i.endswith("::airflow-fernet-seed") for i in record["staging"])
    assert any(i.endswith("::airflow-postgres-password") for i in record["staging"])


if __name__ == "__main__":  # regenerate: python -m tests.test_resource_identity
    RECORD.write_text(json.dumps({s: identities(s) for s in STACKS}, indent=1) + "\n")

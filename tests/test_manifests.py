"""Every rendered manifest is strict-valid for the oldest and newest supported Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.rendering import Rendering

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")


def strict_errors(manifest: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        name = f"{manifest['kind']}/{manifest['metadata'].get('name')}"
        return f"{name}: {error.message} at {list(error.path)}"
    return None


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_strict_valid(stack_rendering: Rendering, version: str) -> None:
    manifests = stack_rendering.manifests()
    assert manifests
    errors = [e for m in manifests if (e := strict_errors(m, version))]
    assert not errors, "\n".join(errors)


def test_validation_catches_a_misspelled_field() -> None:
    """The validator is strict for real: an unknown field in a pod spec is an error."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicyy": "Always"}]},
    }
    assert strict_errors(manifest, KUBERNETES_VERSIONS[0]) is not None


def test_written_yaml_round_trips(stack_rendering: Rendering, tmp_path: Path) -> None:
    paths = stack_rendering.write_yaml(tmp_path)
    assert len(paths) == len(stack_rendering.kubernetes)
    assert [yaml.safe_load(p.read_text()) for p in paths] == stack_rendering.manifests()

"""The committed JSON Schema and config reference match the models; stack files validate."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from tests.support.rendering import ROOT


def test_generated_schema_and_reference_are_fresh() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/generate_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_stack_files_point_at_and_satisfy_the_schema(stack: str) -> None:
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    first_line = path.read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schema/pulumi-stack.schema.json"
    schema = json.loads((ROOT / "schema/pulumi-stack.schema.json").read_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_schema_rejects_an_unknown_key() -> None:
    schema = json.loads((ROOT / "schema/pulumi-stack.schema.json").read_text())
    document = {"config": {"airflow-k8s:cluster": {"schedular": {"replicas": 2}}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)

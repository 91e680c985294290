"""Generate the config JSON Schema and the Markdown config reference from the pydantic models.

python scripts/generate_docs.py          # write schema/ and docs/
python scripts/generate_docs.py --check  # fail if they are stale (used by the tests)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from airflow_component.config import AirflowConfig  # noqa: E402

SCHEMA_PATH = ROOT / "schema" / "pulumi-stack.schema.json"
REFERENCE_PATH = ROOT / "docs" / "config-reference.md"


def json_schema() -> str:
    """Schema of a whole stack file: editors validate `airflow-k8s:cluster` inside it."""
    cluster = AirflowConfig.model_json_schema(by_alias=True)
    definitions = cluster.pop("$defs", {})
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "airflow-k8s Pulumi stack file",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": {"airflow-k8s:cluster": cluster},
            }
        },
        "$defs": definitions,
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " \\| ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return " \\| ".join(f"`{json.dumps(arg)}`" for arg in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "map"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default_text = "(object)"
        elif field.is_required():
            default_text = "**required**"
        else:
            default_text = f"`{json.dumps(default)}`"
        description = (field.description or "").replace("|", "\\|")
        rows.append(
            f"| `{key}` | {_type_name(field.annotation)} | {default_text} | {description} |"
        )
        for nested in _nested_models(field.annotation):
            rows += _rows(nested, f"{key}.")
    return rows


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
    return found


def reference() -> str:
    lines = [
        "# Config reference: `airflow-k8s:cluster`",
        "",
        "Generated from the pydantic models by `scripts/generate_docs.py`; do not edit by hand.",
        "Resources left unset take per-environment defaults (`DEFAULT_RESOURCES` in",
        "`airflow_component/config/`).",
        "",
        "| key | type | default | description |",
        "|---|---|---|---|",
        *_rows(AirflowConfig, ""),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    outputs = {SCHEMA_PATH: json_schema(), REFERENCE_PATH: reference()}
    if "--check" in sys.argv:
        stale = [
            str(p.relative_to(ROOT))
            for p, text in outputs.items()
            if not p.exists() or p.read_text() != text
        ]
        if stale:
            print(f"stale: {', '.join(stale)}; run python scripts/generate_docs.py")
            return 1
        return 0
    for path, text in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

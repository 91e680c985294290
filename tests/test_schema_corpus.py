"""The JSON Schema editors check stack files with and the pydantic models accept the same values
(issue: whole-value matching everywhere, one set of constrained types for both).

Every value slot of the model tree is found by walking the models from `AirflowConfig`: each
field, each list item, each map key and map value whose type is not only a model. Each slot gets
a corpus: ordinary values (every string in the stack files and examples, every string default
and enum member of the models), the same values made hostile (trailing newline, spaces around,
quotes, `$(`, `%`, `#`, `;`, Unicode digits and whitespace, fullwidth letters, upper case),
lengths at and past every bound the schema and the patterns state (63/64 included), and numbers
(0, negatives, huge, bounds +-1, booleans, floats, numeric strings) and other JSON types.

Three verdicts per (slot, value):
- schema: Ajv (draft 2020-12) on the slot's part of `schema/pulumi-stack.schema.json`, run by
  Node once for the whole corpus: `pattern` is an ECMA-262 RegExp with the `u` flag, unanchored,
  as editors read it (not Python's `re`);
- type: pydantic on the slot's declared type and field constraints, inside a `StrictModel` (so
  its rules for every field apply: no booleans for numbers), without the validators that check
  meaning rather than form (CIDR, cron, quantity magnitude, the model's `field_validator`s):
  those cannot be written in a JSON Schema;
- model: pydantic on the real model holding the field (errors at that field only: rules across
  fields are not the field's).

Required: schema == type for every value (fields whose schema is written by hand with
`WithJsonSchema` excepted), and whatever the model accepts the schema accepts.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    WrapValidator,
    create_model,
)
from pydantic.fields import FieldInfo

from airflow_component.config import AirflowConfig
from airflow_component.config.types import StrictModel
from tests.support.rendering import ROOT

SCHEMA_PATH = ROOT / "schema" / "pulumi-stack.schema.json"
CLUSTER_POINTER = "/properties/config/properties/airflow-k8s:cluster"
MODULES = Path(os.environ.get("ACTIONLINT_MODULES", ROOT / ".tools" / "node_modules"))
AJV_SCRIPT = Path(__file__).parent / "support" / "ajv_verdicts.js"
SEMANTIC = (AfterValidator, BeforeValidator, PlainValidator, WrapValidator)

# ---------------------------------------------------------------------------------------------
# The slots: walked from the models


@dataclass(frozen=True)
class Slot:
    owner: type[StrictModel]
    name: str
    alias: str
    steps: tuple[str, ...]  # "item", "key", "value": from the field down to the slot
    annotation: Any  # the slot's type
    fillers: tuple[Any, ...]  # for each "key" step: a valid value to put under the key

    @property
    def label(self) -> str:
        return f"{self.owner.__name__}.{self.alias}" + "".join(f"[{s}]" for s in self.steps)

    @property
    def pointer(self) -> str:
        alias = self.alias.replace("~", "~0").replace("/", "~1")
        if self.owner is AirflowConfig:
            return f"{CLUSTER_POINTER}/properties/{alias}"
        return f"/$defs/{self.owner.__name__}/properties/{alias}"

    def document(self, value: Any) -> Any:
        """The field's value with `value` in the slot."""
        fillers = list(self.fillers)
        for step in reversed(self.steps):
            if step == "item":
                value = [value]
            elif step == "value":
                value = {"k": value}
            else:
                value = {value: fillers.pop()}
        return value


def _members(annotation: Any) -> list[Any]:
    """Optional/Union members (None left out); Annotated kept whole."""
    if get_origin(annotation) in (Union, UnionType):
        return [m for arg in get_args(annotation) for m in _members(arg)]
    return [] if annotation is type(None) else [annotation]


def _bare(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _is_model(annotation: Any) -> bool:
    bare = _bare(annotation)
    return isinstance(bare, type) and issubclass(bare, BaseModel)


def _valid_instance(annotation: Any) -> Any:
    """Some value the type accepts (for the values under a map key being probed)."""
    adapter = TypeAdapter(annotation)
    candidates: list[Any] = ["a", 1, True, {}, []]
    models = [m for m in _members(annotation) if _is_model(m)]
    for model in models:  # its required fields, then with each optional one besides
        fields = _bare(model).model_fields
        required = {
            field.alias or name: _valid_instance(field.annotation)
            for name, field in fields.items()
            if field.is_required()
        }
        candidates.append(required)
        for name, field in fields.items():
            if not field.is_required():
                candidates.append(
                    {**required, field.alias or name: _valid_instance(field.annotation)}
                )
    for candidate in candidates:
        try:
            adapter.validate_python(candidate)
        except ValidationError:
            continue
        return candidate
    raise AssertionError(f"no valid value found for {annotation}: extend the candidates")


def _slots_of(
    owner: type[StrictModel],
    name: str,
    field: FieldInfo,
    annotation: Any,
    steps: tuple[str, ...],
    fillers: tuple[Any, ...],
) -> Iterator[Slot | type[BaseModel]]:
    members = _members(annotation)
    containers = [m for m in members if get_origin(_bare(m)) in (list, dict)]
    models = [m for m in members if _is_model(m)]
    for container in containers:
        bare = _bare(container)
        if get_origin(bare) is list:
            yield from _slots_of(owner, name, field, get_args(bare)[0], (*steps, "item"), fillers)
        else:
            key, value = get_args(bare)
            yield from _slots_of(
                owner, name, field, key, (*steps, "key"), (*fillers, _valid_instance(value))
            )
            yield from _slots_of(owner, name, field, value, (*steps, "value"), fillers)
    yield from (_bare(m) for m in models)
    if len(containers) + len(models) < len(members) or (not members):
        yield Slot(owner, name, field.alias or name, steps, annotation, fillers)


@functools.cache
def slots() -> tuple[Slot, ...]:
    found: list[Slot] = []
    seen: set[type[BaseModel]] = set()
    pending: list[type[BaseModel]] = [AirflowConfig]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        assert issubclass(model, StrictModel), model
        for name, field in model.model_fields.items():
            for item in _slots_of(model, name, field, field.annotation, (), ()):
                if isinstance(item, Slot):
                    found.append(item)
                else:
                    pending.append(item)
    return tuple(found)


# ---------------------------------------------------------------------------------------------
# The pydantic verdicts


def _formal(annotation: Any) -> Any:
    """The type without validators that check meaning (their refusals a schema cannot state)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        kept = [m for m in annotation.__metadata__ if not isinstance(m, SEMANTIC)]
        base = _formal(args[0])
        return Annotated[(base, *kept)] if kept else base
    if origin in (Union, UnionType):
        return functools.reduce(operator.or_, [_formal(arg) for arg in args])
    if origin is list:
        return list[_formal(args[0])]  # type: ignore[misc]
    if origin is dict:
        return dict[_formal(args[0]), _formal(args[1])]  # type: ignore[misc]
    return annotation


def _hand_written_schema(field: FieldInfo) -> bool:
    return any(isinstance(m, WithJsonSchema) for m in field.metadata)


@functools.cache
def _type_model(owner: type[StrictModel], name: str) -> type[StrictModel]:
    field = owner.model_fields[name]
    kept = [m for m in field.metadata if not isinstance(m, SEMANTIC)]
    formal = _formal(field.annotation)
    annotation = Annotated[(formal, *kept)] if kept else formal
    return create_model(  # type: ignore[call-overload]
        f"Formal{owner.__name__}",
        __base__=StrictModel,
        __module__=owner.__module__,  # its forward references resolve there
        **{name: (annotation, Field(alias=field.alias))},
    )


def _accepted(
    model: type[BaseModel], alias: str, values: list[Any], others: dict[str, Any] | None = None
) -> list[bool]:
    """For each value, whether `model` accepts it as the field `alias` (other fields left
    missing, and rules across fields, are not its verdict). One validation for all."""
    refused: set[int] = set()
    try:
        documents = [{**(others or {}), alias: value} for value in values]
        TypeAdapter(list[model]).validate_python(documents)  # type: ignore[valid-type]
    except ValidationError as error:
        for problem in error.errors():
            index, *location = problem["loc"]
            assert isinstance(index, int)
            # StrictModel's own checks on the raw mapping (`replicas: true`) have no location.
            own_check = not location and problem["msg"].startswith(f"Value error, {alias}: ")
            if location[:1] == [alias] or own_check:
                refused.add(index)
    return [index not in refused for index in range(len(values))]


def type_accepts(slot: Slot, values: list[Any]) -> list[bool]:
    model = _type_model(slot.owner, slot.name)
    return _accepted(model, slot.alias, [slot.document(value) for value in values])


@functools.cache
def _built_defaults(owner: type[BaseModel]) -> dict[str, BaseModel]:
    """The owner's sections left at their defaults, built once (pydantic does not validate an
    instance again): else every validation of `AirflowConfig` builds the whole tree."""
    defaults = {}
    for name, field in owner.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            defaults[field.alias or name] = default
    return defaults


def model_accepts(slot: Slot, values: list[Any]) -> list[bool]:
    defaults = _built_defaults(slot.owner)
    return _accepted(slot.owner, slot.alias, [slot.document(value) for value in values], defaults)


# ---------------------------------------------------------------------------------------------
# The corpus


def _strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings_in(key)
            yield from _strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings_in(item)


@functools.cache
def ordinary_strings() -> tuple[str, ...]:
    """Every string in the stack files and examples, every string default and enum member."""
    found: set[str] = set()
    for path in [*ROOT.glob("stacks/*.yaml"), *ROOT.glob("examples/**/*.yaml")]:
        for document in yaml.safe_load_all(path.read_text()):
            found.update(_strings_in(document))
    for slot in slots():
        field = slot.owner.model_fields[slot.name]
        default = field.get_default(call_default_factory=True)
        found.update(
            _strings_in(default.model_dump(by_alias=True))
            if isinstance(default, BaseModel)
            else _strings_in(default)
        )
        for member in _members(slot.annotation):
            if get_origin(_bare(member)) is Literal:
                found.update(a for a in get_args(_bare(member)) if isinstance(a, str))
    return tuple(sorted(s for s in found if len(s) < 300))


FULLWIDTH: dict[str, str | int | None] = {
    c: chr(ord(c) + 0xFEE0)
    for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
}
HOSTILE_EDGES = ["\n", "\r\n", " ", "\t", "\u00a0", "\u0085", "\ufeff", "\u2028", "\u3000"]
HOSTILE_INSIDE = [
    '"',
    "'",
    "$(id)",
    "`id`",
    "%",
    "%s",
    "#",
    ";",
    " ",
    "\n",
    "/",
    "..",
    ",",
    "*",
    "\\",
    "\u0663",
    "\uff41",
    "\u00e9",
    "\u0130",
]


def _variants(seed: str) -> list[str]:
    out = [
        seed,
        seed.upper(),
        seed.lower(),
        seed.swapcase(),
        seed.translate(str.maketrans(FULLWIDTH)),
    ]
    for edge in HOSTILE_EDGES:
        out += [seed + edge, edge + seed]
    middle = len(seed) // 2
    for inner in HOSTILE_INSIDE:
        out += [seed + inner, inner + seed, seed[:middle] + inner + seed[middle:]]
    out += [seed + "\u0663", "\u0663" + seed, seed.replace("1", "\u0661").replace("0", "\u0660")]
    return out


def _numbers_in(schema: Any, keys: tuple[str, ...]) -> Iterator[int]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in keys and isinstance(value, int) and not isinstance(value, bool):
                yield value
            else:
                yield from _numbers_in(value, keys)
    elif isinstance(schema, list):
        for item in schema:
            yield from _numbers_in(item, keys)


def _pattern_lengths(schema: Any) -> set[int]:
    """Lengths a pattern's `{m,n}` quantifiers bound (plus the characters around them)."""
    lengths: set[int] = set()
    for pattern in _patterns_in(schema):
        for low, high in re.findall(r"\{(\d+),(\d+)\}", pattern):
            for bound in (int(low), int(high)):
                lengths.update(bound + extra for extra in range(4))
    return lengths


def _patterns_in(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _patterns_in(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _patterns_in(item)


def corpus(slot: Slot, subschema: Any) -> list[Any]:
    values: list[Any] = [
        None,
        True,
        False,
        0,
        1,
        -1,
        1.5,
        2.0,
        -0.0,
        [],
        {},
        "",
        "0",
        "1",
        "-1",
        "08",
        " 2",
        "1e3",
        "0x10",
        "\uff13",
        "\u0663",
    ]
    # Numbers around every bound the schema states, and far outside any.
    bounds = set(
        _numbers_in(subschema, ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
    )
    for bound in bounds:
        values += [bound - 1, bound, bound + 1, float(bound), bound + 0.5, str(bound)]
    values += [2**31, 2**53 + 1, 2**63, 2**64 + 1, 10**30, -(2**63), 1e308, -1e308]
    # Ordinary strings, and hostile variants of those this slot accepts.
    ordinary = ordinary_strings()
    values += ordinary
    seeds = [s for s, ok in zip(ordinary, type_accepts(slot, list(ordinary)), strict=True) if ok][
        :3
    ]
    for seed in seeds:
        values += _variants(seed)
    # Lengths at and past every bound: the schema's, the patterns', 63/64 and very long.
    lengths = {63, 64, 253, 254, 5000} | _pattern_lengths(subschema)
    for bound in set(_numbers_in(subschema, ("maxLength", "minLength"))):
        lengths.update(n for n in (bound - 1, bound, bound + 1) if n >= 0)
    for length in sorted(lengths):
        values += ["a" * length, "1" * length, "a" + "-" * max(length - 2, 0) + "a"[: length - 1]]
        values += ["example.com/" + "a" * length, "/" + "a" * length, "a" * (length - 1) + "\n"]
        values += [seed + "a" * (length - len(seed)) for seed in seeds if length > len(seed)]
    unique: dict[str, Any] = {}
    for value in values:
        if isinstance(value, float) and not math.isfinite(value):
            continue  # not JSON
        if slot.steps[-1:] == ("key",) and not isinstance(value, str):
            continue  # a key in YAML/JSON is a string
        unique.setdefault(json.dumps(value) + type(value).__name__, value)
    return list(unique.values())


# ---------------------------------------------------------------------------------------------
# The schema verdicts: Ajv, in Node, once


def _resolve(schema: Any, pointer: str) -> Any:
    node = schema
    for part in pointer.split("/")[1:]:
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "node is not installed"
    elif not (MODULES / "ajv" / "package.json").is_file():
        problem = f"ajv is not installed in {MODULES}: scripts/test.sh installs it"
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(problem)
        pytest.skip(problem)
    assert node is not None
    return node


def schema_verdicts(schema: Any, probes: list[tuple[str, list[Any]]]) -> list[list[bool]]:
    request = {
        "schema": schema,
        "probes": [{"pointer": p, "documents": documents} for p, documents in probes],
    }
    result = subprocess.run(
        [_node(), str(AJV_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NODE_PATH": str(MODULES)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    verdicts: list[list[bool]] = json.loads(result.stdout)
    return verdicts


@dataclass(frozen=True)
class Case:
    slot: Slot
    value: Any
    schema: bool
    type: bool
    model: bool


@functools.cache
def cases() -> tuple[Case, ...]:
    schema = json.loads(SCHEMA_PATH.read_text())
    planned: list[tuple[Slot, list[Any]]] = []
    for slot in slots():
        try:
            subschema = _resolve(schema, slot.pointer)
        except KeyError:
            raise AssertionError(f"{slot.label}: no {slot.pointer} in the schema") from None
        planned.append((slot, corpus(slot, subschema)))
    verdicts = schema_verdicts(
        schema, [(slot.pointer, [slot.document(v) for v in values]) for slot, values in planned]
    )
    return tuple(
        Case(slot, value, *verdict)
        for (slot, values), by_schema in zip(planned, verdicts, strict=True)
        for value, *verdict in zip(
            values, by_schema, type_accepts(slot, values), model_accepts(slot, values), strict=True
        )
    )


def _report(found: list[Case]) -> str:
    lines = [
        f"{c.slot.label} {c.value!r}: schema {'accepts' if c.schema else 'refuses'}, "
        f"pydantic {'accepts' if c.type else 'refuses'} "
        f"(model: {'accepts' if c.model else 'refuses'})"
        for c in found[:40]
    ]
    return f"{len(found)} disagreements:\n" + "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The tests


def test_every_kind_of_constraint_is_in_the_walk() -> None:
    """The walk reaches the model tree's constraints: patterns, lengths, bounds, enums, maps."""
    schema = json.loads(SCHEMA_PATH.read_text())
    parts = [json.dumps(_resolve(schema, slot.pointer)) for slot in slots()]
    for keyword in (
        '"pattern"',
        '"maxLength"',
        '"minLength"',
        '"minimum"',
        '"maximum"',
        '"enum"',
        '"propertyNames"',
        '"minItems"',
    ):
        assert any(keyword in part for part in parts), keyword
    assert len(slots()) > 150, len(slots())


def test_the_schema_and_the_types_accept_the_same_values() -> None:
    found = [
        c
        for c in cases()
        if c.schema != c.type and not _hand_written_schema(c.slot.owner.model_fields[c.slot.name])
    ]
    assert not found, _report(found)


def test_the_schema_accepts_whatever_a_model_accepts() -> None:
    found = [c for c in cases() if c.model and not c.schema]
    assert not found, _report(found)


def test_the_corpus_is_not_one_sided() -> None:
    """Each slot's corpus has values on both sides of its constraints (so the comparison above
    compares something): every constrained slot accepts some and refuses some."""
    accepted: dict[str, set[bool]] = {}
    for case in cases():
        accepted.setdefault(case.slot.label, set()).add(case.type)
    unconstrained = {slot.label for slot in slots() if slot.annotation is str}
    one_sided = sorted(
        label
        for label, verdicts in accepted.items()
        if verdicts != {True, False} and label not in unconstrained
    )
    assert not one_sided, one_sided

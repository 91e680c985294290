"""Constrained types and the model base shared by every config section (and the JSON Schema)."""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from .cron import validate_cron

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource.Quantity, as the API server parses it.
QUANTITY = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"
# Label keys: optional DNS-1123 subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"

# Unicode White_Space: what pydantic's Rust regex calls `\s`. Python's `\s` (ASCII here) and
# ECMA-262's `\s` (editors reading the JSON Schema) each mean another set.
WHITESPACE = r"\x09-\x0d\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SHORTHANDS = {"s": WHITESPACE, "d": "0-9", "w": "A-Za-z0-9_"}


def explicit_classes(pattern: str) -> str:
    r"""`pattern` with `\s`, `\d`, `\w` (and negations) spelled out as ASCII-escaped classes,
    so that Python `re`, Rust `regex` and ECMA-262 read it alike."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            members = _SHORTHANDS.get(escape.lower())
            if members is None:
                out.append(pattern[i : i + 2])
            elif in_class and escape.isupper():
                raise ValueError(f"{pattern!r}: a negated shorthand inside [...] is ambiguous")
            elif in_class:
                out.append(members)
            else:
                out.append(f"[^{members}]" if escape.isupper() else f"[{members}]")
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 2
                continue
            if pattern[i + 1 : i + 2] == "]":
                out.append("[]")
                i += 2
                continue
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class Matching:
    """The whole value matches `pattern` (`fullmatch`: `$` would also accept a trailing
    newline). The JSON Schema gets the same pattern: ECMA-262 `pattern` is unanchored, so every
    pattern here starts with `^` and ends with `$` (without the `m` flag `$` is the end of the
    value there), and its shorthand classes are spelled out (`explicit_classes`)."""

    pattern: str
    what: str

    def __post_init__(self) -> None:
        if not (self.pattern.startswith("^") and self.pattern.endswith("$")):
            raise ValueError(f"{self.pattern!r}: anchor it with ^...$ (the schema needs both)")

    @property
    def schema_pattern(self) -> str:
        return explicit_classes(self.pattern)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        compiled = re.compile(self.schema_pattern, re.ASCII)
        what = self.what

        def check(value: str) -> str:
            if not compiled.fullmatch(value):
                raise ValueError(f"{value!r} is not {what}")
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if "pattern" in json_schema:
            json_schema.setdefault("allOf", []).append({"pattern": self.schema_pattern})
        else:
            json_schema["pattern"] = self.schema_pattern
        return json_schema


def _matching(pattern: str, what: str) -> Matching:
    return Matching(pattern, what)


DnsLabel = Annotated[
    str,
    StringConstraints(max_length=63),
    _matching(DNS1123_LABEL, "a DNS-1123 label (lower-case letters, digits and '-')"),
]
DnsSubdomain = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
]
# Kubernetes keeps quantities as 64-bit integers (CPU in millicores): anything larger is
# silently capped by the API server, so it is refused here instead.
MAX_QUANTITY = Decimal(2**63 - 1) / 1000


def _representable(value: str) -> str:
    if quantity_value(value) > MAX_QUANTITY:
        raise ValueError(f"{value!r} is larger than Kubernetes can represent")
    return value


Quantity = Annotated[
    str,
    _matching(QUANTITY, "a Kubernetes quantity (e.g. 500m, 1, 512Mi, 20Gi)"),
    AfterValidator(_representable),
]


def _positive_size(value: str) -> str:
    if quantity_value(value) <= 0:
        raise ValueError(f"size {value!r} must be greater than zero")
    return value


StorageSize = Annotated[
    str,
    _matching(QUANTITY, "a Kubernetes quantity (e.g. 1Gi, 20Gi)"),
    AfterValidator(_representable),
    AfterValidator(_positive_size),
]
Hostname = Annotated[
    str,
    StringConstraints(
        pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        max_length=253,
    ),
]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]

Environment = Literal["local", "staging", "prod"]
ExecutorName = Literal["LocalExecutor", "CeleryExecutor", "KubernetesExecutor"]
IMPLEMENTED_EXECUTORS: frozenset[str] = frozenset(
    {"LocalExecutor", "CeleryExecutor", "KubernetesExecutor"}
)


def _is_number(annotation: Any) -> bool:
    """int, float, Decimal, or an Optional/Union of them (bool excluded)."""
    if annotation in (int, float, Decimal):
        return True
    args = [a for a in get_args(annotation) if a is not type(None)]
    return (
        get_origin(annotation) in (Union, UnionType)
        and bool(args)
        and all(_is_number(a) for a in args)
    )


def _is_switch(annotation: Any) -> bool:
    """bool, or bool | None."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    return annotation is bool or (get_origin(annotation) in (Union, UnionType) and args == [bool])


# Integers without a bound of their own stay where JSON numbers are exact (editors, and the
# JSON Schema, read them as doubles): pydantic would take 2**64 but not the float 1e19.
MAX_INTEGER = 2**53 - 1


@functools.cache
def _scalar_fields(model: type[BaseModel]) -> tuple[tuple[str, str, str, bool, bool], ...]:
    """(name, alias, "number" | "switch", unbounded below, unbounded above) of the model's
    number and switch fields."""
    found = []
    for name, field in model.model_fields.items():
        kind = "number" if _is_number(field.annotation) else "switch"
        if kind == "number" or _is_switch(field.annotation):
            integer = kind == "number" and int in (field.annotation, *get_args(field.annotation))
            below = integer and not any(isinstance(m, Ge | Gt) for m in field.metadata)
            above = integer and not any(isinstance(m, Le | Lt) for m in field.metadata)
            found.append((name, field.alias or name, kind, below, above))
    return tuple(found)


@functools.cache
def _lax_reading(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    annotation: Any = model.model_fields[name].annotation
    return TypeAdapter(annotation)


def _lax(model: type[BaseModel], name: str, value: Any) -> bool:
    """Whether pydantic's lax mode reads `value` as the field's type (`"2"` as 2, `1` as true)."""
    try:
        _lax_reading(model, name).validate_python(value)
    except ValidationError:
        return False
    return True


def _schema_as_validated(schema: dict[str, Any]) -> None:
    r"""A model's JSON Schema, made to accept what the model accepts:
    - every `pattern` with its shorthand classes spelled out: pydantic checks
      `StringConstraints(pattern=...)` with Rust regex, where `\s` is Unicode White_Space, and
      editors read `\s` as ECMA-262 whitespace (not U+0085, but U+FEFF);
    - a map whose keys have a pattern as `propertyNames` + `additionalProperties`: pydantic
      writes `patternProperties`, which lets any key that does not match through."""
    pattern_properties = schema.get("patternProperties")
    if (
        isinstance(pattern_properties, dict)
        and len(pattern_properties) == 1
        and "additionalProperties" not in schema
    ):
        ((key_pattern, value_schema),) = pattern_properties.items()
        del schema["patternProperties"]
        schema["additionalProperties"] = value_schema
        names = schema.setdefault("propertyNames", {})
        if "pattern" in names:
            names.setdefault("allOf", []).append({"pattern": key_pattern})
        else:
            names["pattern"] = key_pattern
    if schema.get("type") == "integer":
        if "maximum" not in schema and "exclusiveMaximum" not in schema:
            schema["maximum"] = MAX_INTEGER
        if "minimum" not in schema and "exclusiveMinimum" not in schema:
            schema["minimum"] = -MAX_INTEGER
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            schema[key] = explicit_classes(value)
        elif isinstance(value, dict):
            _schema_as_validated(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _schema_as_validated(item)


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, camelCase keys in stack files."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
        json_schema_extra=_schema_as_validated,
    )

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """`true` is not a count: pydantic's lax mode would read it as 1 (`replicas: true`).
        Nor is `"2"` a count, nor `1` or `"yes"` a switch: what the JSON Schema refuses (an
        editor marks it), the model refuses too."""
        if not isinstance(data, dict):
            return data
        for name, alias, kind, unbounded_below, unbounded_above in _scalar_fields(cls):
            for key in {name, alias}:
                if key not in data:
                    continue
                value = data[key]
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if number and (
                    (unbounded_above and value > MAX_INTEGER)
                    or (unbounded_below and value < -MAX_INTEGER)
                ):
                    raise ValueError(
                        f"{to_camel(name)}: {value} is out of range (at most {MAX_INTEGER})"
                    )
                # Only what the lax reading would take: anything else gets pydantic's own error.
                if kind == "number" and (
                    isinstance(value, bool) or (isinstance(value, str) and _lax(cls, name, value))
                ):
                    raise ValueError(
                        f"{to_camel(name)}: expected a number, got {json.dumps(value)}"
                    )
                if (
                    kind == "switch"
                    and not isinstance(value, bool)
                    and isinstance(value, str | int | float)
                    and _lax(cls, name, value)
                ):
                    raise ValueError(
                        f"{to_camel(name)}: expected true or false, got {json.dumps(value)}"
                    )
        return data

    @model_validator(mode="after")
    def _nothing_set_for_a_switched_off_feature(self) -> Any:
        """`enabled: false` with other settings beside it: they would be silently ignored, and
        the user believes something is configured that is not."""
        fields = type(self).model_fields
        if "enabled" in fields and self.__dict__.get("enabled") is False:
            others = sorted(
                (fields[name].alias or name) for name in self.model_fields_set - {"enabled"}
            )
            if others:
                raise ValueError(
                    f"{', '.join(others)} set while enabled is false: they would be ignored; "
                    "remove them or enable the feature"
                )
        return self

    @model_validator(mode="after")
    def _no_nul_characters(self) -> Any:
        """No env var, argument, file or label can carry a NUL: the container would not start.
        (Nested models check their own fields; maps and lists are checked here.)"""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, dict):
                texts = [*value, *value.values()]
            elif isinstance(value, list):
                texts = value
            else:
                texts = [value]
            if any(isinstance(text, str) and "\x00" in text for text in texts):
                raise ValueError(f"`{to_camel(name)}` contains a NUL character")
        return self


class SecretKeyRef(StrictModel):
    """A key in an existing Kubernetes Secret in the deployment's namespace."""

    name: DnsSubdomain = Field(description="Name of the existing Secret.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key inside the Secret's data."
    )


class ComputeResources(StrictModel):
    """CPU and memory for one side (requests or limits) of a container."""

    cpu: Quantity = Field(description="CPU quantity, e.g. `250m` or `1`.")
    memory: Quantity = Field(description="Memory quantity, e.g. `512Mi`.")


_FACTORS: dict[str, int | str] = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": "1e-9", "u": "1e-6", "m": "1e-3", "": 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
}  # fmt: skip
_SUFFIXES = {suffix: Decimal(factor) for suffix, factor in _FACTORS.items()}


def quantity_value(quantity: str) -> Decimal:
    """The number a Kubernetes quantity stands for (for comparisons only)."""
    match = re.fullmatch(r"\+?([0-9.]+)([eE][-+]?[0-9]+|[A-Za-z]*)", quantity, re.ASCII)
    if not match:
        raise ValueError(f"{quantity!r} is not a Kubernetes quantity")
    number, suffix = match.groups()
    if suffix[:1] in {"e", "E"} and suffix[1:].lstrip("+-").isdigit():
        exponent = int(suffix[1:])
        if abs(exponent) > 64:  # far outside any quantity; Decimal would overflow
            return Decimal("Infinity") if exponent > 0 else Decimal(0)
        return Decimal(number) * Decimal(10) ** exponent
    return Decimal(number) * _SUFFIXES[suffix]


class Resources(StrictModel):
    """Container resource requests and limits."""

    requests: ComputeResources = Field(description="Guaranteed resources (scheduling).")
    limits: ComputeResources = Field(description="Hard ceiling; memory over it is OOM-killed.")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        for resource in ("cpu", "memory"):
            request = getattr(self.requests, resource)
            limit = getattr(self.limits, resource)
            if quantity_value(request) > quantity_value(limit):
                raise ValueError(
                    f"requests.{resource} {request} is above limits.{resource} {limit}"
                )
        return self


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR (e.g. 10.0.0.0/16)") from None


Cidr = Annotated[str, AfterValidator(_cidr)]


Cron = Annotated[str, AfterValidator(validate_cron)]
AirflowIdentifier = Annotated[
    str, _matching(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$", "an Airflow id (letters, digits, _ . -)")
]
# Celery queue names: they reach `--queues` (comma-separated) and the KEDA query as SQL
# literals, so only characters neither of them treats specially.
QueueName = Annotated[
    str,
    _matching(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$", "a Celery queue name (letters, digits, _ . -)"
    ),
]
# A worker pool's name, in its objects' names after "<release>-worker-" (whether it fits with
# the release name is checked where both are known).
WorkerPoolName = Annotated[
    str,
    _matching(
        r"^[a-z]([-a-z0-9]{0,18}[a-z0-9])?$",
        "a pool name (lower-case letters, digits and '-', starting with a letter, at most 20)",
    ),
]
# An image tag that names its Airflow version first (3.3.2, 3.3.2-python3.12).
AirflowVersionTag = Annotated[
    str,
    _matching(
        r"^[0-9]+[.][0-9]+[.][0-9]+[A-Za-z0-9_.-]{0,100}$",
        "an Airflow image tag that starts with its version (e.g. 3.3.2, 3.3.2-python3.12)",
    ),
]
ConfigKeyName = Annotated[
    str, _matching(r"^[A-Za-z][A-Za-z0-9_]{0,127}$", "a stack config key name (e.g. warehouseUri)")
]

"""Constrained types and the model base shared by every config section (and the JSON Schema)."""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .cron import validate_cron

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Kubernetes resource.Quantity, as the API server parses it.
QUANTITY = r"^[+]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$"
# Label keys: optional DNS-1123 subdomain prefix, then a name of at most 63 characters.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"


def _matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern, re.ASCII)

    def check(value: str) -> str:
        # Whole value: `$` in a pattern would also accept a trailing newline.
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


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


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, camelCase keys in stack files."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """`true` is not a count: pydantic's lax mode would read it as 1 (`replicas: true`)."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            if not _is_number(field.annotation):
                continue
            for key in {name, field.alias or name}:
                if isinstance(data.get(key), bool):
                    raise ValueError(
                        f"{to_camel(name)}: expected a number, got {str(data[key]).lower()}"
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
ConfigKeyName = Annotated[
    str, _matching(r"^[A-Za-z][A-Za-z0-9_]{0,127}$", "a stack config key name (e.g. warehouseUri)")
]

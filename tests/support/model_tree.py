"""The config model as a tree of types, for tests that must reach every field of it."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel


def model_types(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(camelCase path, type) for every type a field can hold, at any depth: an Optional or
    union gives each member, a list its items at `name[0]`, a nested model itself and then its
    fields. Postponed annotations are resolved (`get_type_hints`)."""
    hints = typing.get_type_hints(model)
    for name, field in model.model_fields.items():
        yield from _types_at(hints[name], (*prefix, field.alias or name))


def _types_at(annotation: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            if member is not type(None):
                yield from _types_at(member, path)
        return
    if origin is list:
        (item,) = typing.get_args(annotation)
        yield from _types_at(item, (*path[:-1], f"{path[-1]}[0]"))
        return
    yield path, annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield from model_types(annotation, path)

"""Validation of the five-field cron expressions Kubernetes CronJobs accept."""

from __future__ import annotations

import re

_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (
        "day of week",
        0,
        6,
        {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    ),
)
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    ascii_digits = text.isascii() and text.isdigit()
    number = names.get(text.lower()) if text.isalpha() else int(text) if ascii_digits else None
    if number is None or not low <= number <= high:
        raise ValueError(f"cron {field} {text!r} is outside {low}-{high}")
    return number


def validate_cron(expression: str) -> str:
    """Return the expression if it is a valid CronJob schedule, else raise ValueError."""
    if expression in _MACROS:
        return expression
    # Kubernetes' parser: five fields separated by single spaces, ASCII only.
    parts = expression.split(" ")
    if not expression.isascii() or "" in parts:
        raise ValueError(
            f"cron schedule {expression!r} must be ASCII fields separated by single spaces"
        )
    if len(parts) != len(_FIELDS):
        raise ValueError(
            f"cron schedule {expression!r} needs 5 fields (minute hour day month weekday)"
        )
    for part, (field, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            match = re.fullmatch(r"(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/([0-9]+))?", item)
            if not match:
                raise ValueError(f"cron {field} {item!r} is not a valid cron field")
            span, step = match.groups()
            if step is not None and int(step) == 0:
                raise ValueError(f"cron {field} step in {item!r} must be at least 1")
            if span != "*":
                bounds = [_value(bound, low, high, names, field) for bound in span.split("-")]
                if len(bounds) == 2 and bounds[0] > bounds[1]:
                    raise ValueError(f"cron {field} range {span!r} runs backwards")
    return expression

"""Property: no number a user writes breaks the deployment or escapes as a traceback (issue:
hostile input).

Hypothesis puts adversarial numbers (0, negatives, 2**63 and beyond, floats with fractions,
NaN and infinity, booleans, numeric strings) into any number field of the whole model tree
(every field at any depth, found by walking the models), on top of the staging stack. For
every draw either the config is refused with `pulumi.RunError` naming the field (or the section
that cannot hold it), and nothing else escapes; or it is accepted and the rendering is
strict-valid Kubernetes with every reference resolvable.

Two runs: a fixed seed (the same examples every time) and a fresh random seed per run.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pulumi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_component.config import AirflowConfig, parse_config
from tests.support.rendering import cluster_config, render_stack
from tests.test_input_rules import _numeric_paths
from tests.test_properties import strict_errors
from tests.test_references import dangling

PATHS = _numeric_paths(AirflowConfig)
hostile_number = st.one_of(
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**64 + 1, 10**30, True, False]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1", "08", "1e3", " 2", "\uff13", "0x10"]),
)


@st.composite
def number_in_config(draw: st.DrawFn) -> tuple[tuple[str, ...], Any, dict[str, Any]]:
    path = draw(st.sampled_from(PATHS))
    value = draw(hostile_number)
    raw = copy.deepcopy(cluster_config("staging"))
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[path[-1]] = value
    return path, value, raw


def check(path: tuple[str, ...], value: Any, raw: dict[str, Any]) -> None:
    # `replicas: true` is a typo, not 1; NaN and infinity are no quantity of anything.
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        # Refused, whatever the rendering would be.
        try:
            parse_config(raw)
        except pulumi.RunError as error:
            assert any(part in str(error) for part in path), (path, value, str(error))
            return
        raise AssertionError(f"{'.'.join(path)} accepted {value!r}")
    try:
        parse_config(raw)
    except pulumi.RunError as error:
        message = str(error)
        assert any(f"{part}" in message for part in path), (path, value, message)
        assert "Traceback" not in message
        return
    rendering = render_stack("staging", cluster=raw)
    errors = strict_errors(rendering)
    assert not errors, (path, value, errors[:3])
    unresolved = dangling(rendering, raw)
    assert not unresolved, (path, value, unresolved[:3])


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(number_in_config())
def test_hostile_numbers_fixed_seed(case: tuple[tuple[str, ...], Any, dict[str, Any]]) -> None:
    check(*case)


@settings(
    max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(number_in_config())
def test_hostile_numbers_random_seed(case: tuple[tuple[str, ...], Any, dict[str, Any]]) -> None:
    check(*case)


def test_the_walk_reaches_the_number_fields() -> None:
    keys = {".".join(path) for path in PATHS}
    assert {"parallelism", "scheduler.replicas", "celery.workers.concurrency"} <= keys
    assert len(keys) > 20, len(keys)

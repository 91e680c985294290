"""Shared fixtures: each stack rendered once per session under Pulumi mocks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.rendering import Rendering, render_stack

STACKS = ("local", "staging", "prod")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cluster: needs a real Kubernetes cluster (opt-in)")
    config.addinivalue_line("markers", "pulumi_cli: needs the Pulumi CLI (opt-in)")


@pytest.fixture(scope="session")
def rendered_stack() -> Callable[[str], Rendering]:
    cache: dict[str, Rendering] = {}

    def get(stack: str) -> Rendering:
        if stack not in cache:
            cache[stack] = render_stack(stack)
        return cache[stack]

    return get


@pytest.fixture(params=STACKS)
def stack_rendering(
    request: pytest.FixtureRequest, rendered_stack: Callable[[str], Rendering]
) -> Rendering:
    return rendered_stack(request.param)

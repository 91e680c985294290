"""The rendered settings against the installed Airflow: version pin, every `AIRFLOW__*` option."""

from __future__ import annotations

import pytest

from airflow_component.versions import AIRFLOW_VERSION

from .conftest import ALL_STACKS
from .harness.cluster import image_role, image_tag
from .harness.config_check import airflow_env_entries, check_with_airflow, installed_airflow_version
from .harness.kubelet import ObjectStore

pytestmark = pytest.mark.e2e


def _airflow_images(rendering) -> set[str]:
    images = set()
    for _, pod_spec in rendering.pod_specs():
        for container in [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]:
            if image_role(container["image"]) == "airflow":
                images.add(container["image"])
    return images


def test_installed_airflow_is_the_pinned_version_and_the_image_tag(airflow_venv):
    from tests.support.rendering import render_stack

    installed = installed_airflow_version(airflow_venv)
    images = _airflow_images(render_stack("local"))
    assert images, "the local stack renders no Airflow container"
    tags = {image_tag(image) for image in images}
    assert installed == AIRFLOW_VERSION, (
        f"the e2e venv has apache-airflow {installed}, the component pins {AIRFLOW_VERSION}"
    )
    assert tags == {AIRFLOW_VERSION}, (
        f"local stack images {sorted(images)} vs pin {AIRFLOW_VERSION}"
    )


@pytest.mark.parametrize("stack", ALL_STACKS)
def test_every_airflow_option_exists_with_a_valid_value(stack, airflow_venv):
    """Each `AIRFLOW__S__K` (and `_CMD`/`_SECRET`) of each rendered container names an option of the
    installed Airflow or its providers, is not deprecated, is set once, uses `_CMD`/`_SECRET` only
    where Airflow honours it (sensitive options), and its value parses with Airflow's getters."""
    from tests.support.rendering import render_stack

    rendering = render_stack(stack)
    manifests = [r.manifest for r in rendering.kubernetes]
    entries = airflow_env_entries(manifests, ObjectStore.from_manifests(manifests))
    assert entries, f"stack {stack} renders no AIRFLOW__* variable"
    answer = check_with_airflow(airflow_venv, entries)
    assert answer["airflow_version"] == AIRFLOW_VERSION
    assert not answer["problems"], "\n".join(answer["problems"])
    assert len(answer["checked"]) == len(entries)


def test_the_option_catalog_matches_the_installed_airflow(airflow_venv):
    """`airflowConfig` is validated against airflow_component/data/airflow_options.json; it
    must be what the pinned Airflow (and the installed providers) really accept."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [str(airflow_venv / "bin" / "python"), "scripts/generate_airflow_catalog.py", "--print"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    committed = (root / "airflow_component" / "data" / "airflow_options.json").read_text()
    assert result.stdout == committed, (
        "the option catalog is stale: run "
        "`.venv-airflow/bin/python scripts/generate_airflow_catalog.py` and commit the file"
    )

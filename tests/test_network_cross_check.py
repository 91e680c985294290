"""Our NetworkPolicy evaluator, cross-checked by an independent one.

`tests/test_network_and_availability.py` judges the rendered policies with our own reading of
Kubernetes' NetworkPolicy semantics. Here IBM's network-config-analyzer (PyPI
`network-config-analyzer`, `nca`; its own venv, like checkov: `NCA_BIN`, installed by
scripts/test.sh) computes the connectivity map of the same rendered manifests, and for every pair
of our workloads and every port any of them serves, both must agree on allowed or denied.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.rendering import ROOT, render_stack
from tests.test_network_and_availability import allowed, pods, policies_of

LINE = re.compile(
    r"^(?P<src>\S+)\[(?P<src_kind>\w+)\] => (?P<dst>\S+)\[(?P<dst_kind>\w+)\] : (?P<conn>.*)$"
)
CONNECTION = re.compile(r"\{protocols:(?P<protocols>[A-Z, ]+),dst_ports:(?P<ports>[0-9,\-]+)\}")


def nca_binary() -> Path:
    path = Path(os.environ.get("NCA_BIN") or ROOT / ".venv-nca" / "bin" / "nca")
    if not path.exists():
        message = f"network-config-analyzer not found at {path}: set NCA_BIN (scripts/test.sh)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def nca_connectivity(directory: Path) -> dict[tuple[str, str], set[tuple[str, int]]]:
    """(source object, destination object) -> allowed (protocol, port), between workloads."""
    result = subprocess.run(
        [
            str(nca_binary()),
            "--connectivity",
            str(directory),
            "--resource_list",
            str(directory),
            "--output_format",
            "txt_no_fw_rules",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found: dict[tuple[str, str], set[tuple[str, int]]] = {}
    for line in result.stdout.splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        flows = found.setdefault((match["src"], match["dst"]), set())
        if match["conn"].strip() == "All connections":
            flows.add(("ALL", 0))
            continue
        for connection in CONNECTION.finditer(match["conn"]):
            for protocol in connection["protocols"].replace(" ", "").split(","):
                for part in connection["ports"].split(","):
                    low, _, high = part.partition("-")
                    for port in range(int(low), int(high or low) + 1):
                        flows.add((protocol, port))
    return found


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_both_evaluators_agree_on_every_flow_between_workloads(stack: str, tmp_path: Path) -> None:
    rendering = render_stack(stack)
    rendering.write_yaml(tmp_path)
    theirs = nca_connectivity(tmp_path)
    policies, endpoints = policies_of(rendering), pods(rendering)
    namespace = rendering.outputs["namespace"]
    # Workload object -> component, as its pods are labelled.
    component_of = {}
    ports: set[tuple[str, int]] = set()
    for resource, spec in rendering.pod_specs():
        template = (
            resource.inputs["spec"].get("template")
            or resource.inputs["spec"]["jobTemplate"]["spec"]["template"]
        )
        labels = (template.get("metadata") or {}).get("labels") or {}
        component_of[f"{namespace}/{resource.object_name}"] = labels["app.kubernetes.io/component"]
        for container in spec["containers"]:
            for declared in container.get("ports") or []:
                ports.add((declared.get("protocol") or "TCP", int(declared["containerPort"])))
    assert len(component_of) > 8 and len(ports) > 4
    disagreements = []
    for source, src_component in component_of.items():
        for destination, dst_component in component_of.items():
            if source == destination:
                continue
            nca = theirs.get((source, destination), set())
            for protocol, port in ports:
                ours = allowed(
                    policies, endpoints[src_component], endpoints[dst_component], port, protocol
                )
                if ours != (("ALL", 0) in nca or (protocol, port) in nca):
                    disagreements.append(
                        f"{src_component} -> {dst_component} {protocol}/{port}: ours {ours}"
                    )
    assert not disagreements, "\n".join(sorted(disagreements))

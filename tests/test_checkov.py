"""checkov (`--framework kubernetes`) finds nothing in any stack's rendered manifests.

Skips live in one list, `tests/checkov_skips.yaml`, each with a reason and the stacks it
applies to. Each stack is scanned on its own (object names and namespaces repeat between
stacks, and checkov's graph checks would match across them) and in full; the skips are applied
to the JSON report here rather than with `--skip-check`, so the same scan also proves that every
skip still matches a finding. A known-bad pod proves the scan and its parsing report failures.

checkov cannot share a virtualenv with Pulumi, so it runs as a separate program: `CHECKOV_BIN`
(default `<repo>/.venv-checkov/bin/checkov`, installed by scripts/test.sh). Without it the
tests are skipped locally and fail in CI (`CI=true`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.rendering import render_stack

ROOT = Path(__file__).resolve().parents[1]
STACKS = ("local", "staging", "prod")
SKIPS_FILE = Path(__file__).with_name("checkov_skips.yaml")
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")
MAX_PROD_SKIPS = 8
TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Skip:
    id: str
    stacks: tuple[str, ...]
    reason: str


def load_skips() -> list[Skip]:
    document = yaml.safe_load(SKIPS_FILE.read_text()) or {}
    return [
        Skip(
            id=str(entry.get("id", "")),
            stacks=tuple(entry.get("stacks") or STACKS),
            reason=str(entry.get("reason") or "").strip(),
        )
        for entry in document.get("skips") or []
    ]


def skipped_ids(stack: str) -> list[str]:
    return sorted({skip.id for skip in load_skips() if stack in skip.stacks})


def checkov_binary() -> Path:
    path = Path(os.environ.get("CHECKOV_BIN") or ROOT / ".venv-checkov" / "bin" / "checkov")
    if not (path.is_file() and os.access(path, os.X_OK)):
        message = f"checkov not found at {path}: set CHECKOV_BIN (scripts/test.sh installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _integral_floats_to_int(value: Any) -> Any:
    """Pulumi's mock transport (protobuf Struct) turns every number into a float; the provider
    sends `50000`, not `50000.0`, to the API server, and checkov compares with `isinstance(int)`.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_to_int(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_to_int(item) for item in value]
    return value


def write_manifests(stack: str, directory: Path) -> int:
    paths = render_stack(stack).write_yaml(directory)
    for path in paths:
        manifest = _integral_floats_to_int(yaml.safe_load(path.read_text()))
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return len(paths)


INSECURE_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "insecure", "namespace": "default"},
    "spec": {
        "hostNetwork": True,
        "containers": [
            {
                "name": "c",
                "image": "busybox:latest",
                "securityContext": {"privileged": True, "allowPrivilegeEscalation": True},
            }
        ],
    },
}


@dataclass
class Scan:
    """One checkov run: its command, parsed JSON report and failures."""

    command: list[str]
    summary: dict[str, Any]
    failed: list[dict[str, Any]]


def _parse(command: list[str], completed: subprocess.CompletedProcess[str]) -> Scan:
    # checkov exits 1 when a check fails; anything else (or no JSON) is a broken run.
    assert completed.returncode in (0, 1), (
        f"checkov failed ({completed.returncode}): {' '.join(command)}\n{completed.stderr[-3000:]}"
    )
    try:
        data = json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"checkov printed no JSON: {completed.stdout[:2000]}") from error
    reports = data if isinstance(data, list) else [data]
    summary: Counter[str] = Counter()
    failed: list[dict[str, Any]] = []
    for report in reports:
        for key in ("passed", "failed", "skipped", "parsing_errors", "resource_count"):
            summary[key] += int((report.get("summary") or report).get(key, 0))
        failed += (report.get("results") or {}).get("failed_checks", [])
    assert summary["failed"] == len(failed), "summary and failed_checks disagree"
    return Scan(command=command, summary=dict(summary), failed=failed)


@dataclass(frozen=True)
class Job:
    directory: Path
    only: tuple[str, ...] = ()


def run_scans(binary: Path, jobs: dict[str, Job]) -> dict[str, Scan]:
    """Run several checkov scans in parallel (checkov's start-up dominates a scan)."""
    # Offline: no download of Prisma Cloud guideline mappings.
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    running = {}
    for name, job in jobs.items():
        command = [str(binary), "--framework", "kubernetes", "-d", str(job.directory)]
        command += ["-o", "json", "--quiet", "--compact", "--skip-download"]
        if job.only:
            command += ["--check", ",".join(job.only)]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=job.directory,
        )
        running[name] = (command, process)
    scans = {}
    for name, (command, process) in running.items():
        try:
            stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        completed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
        scans[name] = _parse(command, completed)
    return scans


CANARY_CHECKS = ("CKV_K8S_16", "CKV_K8S_19", "CKV_K8S_20")  # privileged, hostNetwork, escalation


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scan]:
    """Every stack scanned with all checks; plus a canary directory with an insecure pod."""
    binary = checkov_binary()
    root = tmp_path_factory.mktemp("checkov")
    jobs: dict[str, Job] = {}
    for stack in STACKS:
        assert write_manifests(stack, root / stack) > 0
        jobs[stack] = Job(root / stack)
    (root / "canary").mkdir()
    (root / "canary" / "pod.yaml").write_text(yaml.safe_dump(INSECURE_POD))
    jobs["canary"] = Job(root / "canary", only=CANARY_CHECKS)
    return run_scans(binary, jobs)


def unskipped(stack: str, scan: Scan) -> list[dict[str, Any]]:
    skipped = set(skipped_ids(stack))
    return [finding for finding in scan.failed if finding["check_id"] not in skipped]


def _describe(finding: dict[str, Any]) -> str:
    return (
        f"{finding['check_id']} {finding.get('check_name', '')} -- "
        f"{finding.get('resource')} ({finding.get('file_path')})"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_checkov_finds_nothing_unskipped(scans: dict[str, Scan], stack: str) -> None:
    scan = scans[stack]
    failed = unskipped(stack, scan)
    skipped = Counter(f["check_id"] for f in scan.failed if f not in failed)
    print(
        f"\ncheckov {stack}: {scan.summary['resource_count']} resources, "
        f"{scan.summary['passed']} passed, {len(failed)} failed, skipped {dict(skipped) or 'none'}",
        *(f"\n  FAILED {_describe(finding)}" for finding in failed),
    )
    assert scan.summary["parsing_errors"] == 0
    assert scan.summary["resource_count"] > 0 and scan.summary["passed"] > 0
    by_check = Counter(f"{f['check_id']} {f.get('check_name', '')}" for f in failed)
    assert not failed, (
        f"{len(failed)} checkov failures in {stack} ({dict(by_check)}):\n"
        + "\n".join(_describe(finding) for finding in failed)
    )


def test_skip_list_is_short_and_explained() -> None:
    skips = load_skips()
    for skip in skips:
        assert CHECK_ID.match(skip.id), f"not a checkov Kubernetes check id: {skip.id!r}"
        assert skip.reason, f"{skip.id} has no reason"
        assert "\n" not in skip.reason, f"{skip.id}: the reason must be one line"
        assert len(skip.reason) >= 20, f"{skip.id}: say why, not just that"
        assert set(skip.stacks) <= set(STACKS) and skip.stacks, f"{skip.id}: {skip.stacks}"
    ids = [skip.id for skip in skips]
    assert len(ids) == len(set(ids)), f"duplicate entries: {ids}"
    prod = [skip.id for skip in skips if "prod" in skip.stacks]
    assert len(prod) <= MAX_PROD_SKIPS, f"{len(prod)} checks skipped for prod: {prod}"


def test_every_skip_is_still_needed(scans: dict[str, Scan]) -> None:
    """A skip whose check no longer fails in any of its stacks must leave the list."""
    failing = {(f["check_id"], stack) for stack in STACKS for f in scans[stack].failed}
    stale = [
        skip.id
        for skip in load_skips()
        if not any((skip.id, stack) in failing for stack in skip.stacks)
    ]
    assert not stale, f"skipped checks that no longer fail anywhere: {stale}"


def test_checkov_scan_reports_failures_of_an_insecure_pod(scans: dict[str, Scan]) -> None:
    """The scan and its JSON parsing are live: a privileged host-network pod fails."""
    failed = {finding["check_id"] for finding in scans["canary"].failed}
    assert set(CANARY_CHECKS) <= failed, failed

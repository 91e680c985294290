"""Run the real Pulumi program under mocks and capture every resource it registers.

`render_stack("local")` feeds a stack file's config through `__main__.py`; `render_component`
builds an `AirflowCluster` directly. Both return a `Rendering`: every resource with its inputs
(the Kubernetes manifest, camelCase as the provider sees it) and which input paths were secret.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import runpy
import string
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.mocks import MockMonitor

ROOT = Path(__file__).resolve().parents[2]
STACKS = ROOT / "stacks"
PROJECT = "airflow-k8s"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]
    secret_paths: list[str]
    custom: bool
    parent: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    urn: str = ""

    @property
    def kind(self) -> str | None:
        return self.inputs.get("kind") if self.typ.startswith("kubernetes:") else None

    @property
    def is_patch(self) -> bool:
        return self.typ.startswith("kubernetes:") and self.typ.endswith("Patch")

    @property
    def object_name(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("name")

    @property
    def manifest(self) -> dict[str, Any]:
        return self.inputs


@dataclass
class Rendering:
    resources: list[Resource]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    stack: str = "test"

    @property
    def kubernetes(self) -> list[Resource]:
        """The Kubernetes objects this rendering creates (patches of live objects apart)."""
        return [r for r in self.resources if r.typ.startswith("kubernetes:") and not r.is_patch]

    @property
    def patches(self) -> list[Resource]:
        """Server-side apply patches of objects that exist in the cluster (`...Patch` types)."""
        return [r for r in self.resources if r.typ.startswith("kubernetes:") and r.is_patch]

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for r in self.kubernetes if r.kind == kind]

    def one(self, kind: str, object_name: str) -> Resource:
        matches = [r for r in self.of_kind(kind) if r.object_name == object_name]
        assert len(matches) == 1, f"expected one {kind} {object_name}, got {len(matches)}"
        return matches[0]

    def manifests(self) -> list[dict[str, Any]]:
        return [r.manifest for r in self.kubernetes]

    def pod_specs(self) -> Iterator[tuple[Resource, dict[str, Any]]]:
        """Every pod spec in the rendering: workloads, Jobs (and CronJobs)."""
        for resource in self.kubernetes:
            spec = resource.inputs.get("spec") or {}
            if resource.kind == "CronJob":
                yield resource, spec["jobTemplate"]["spec"]["template"]["spec"]
            elif "template" in spec:
                yield resource, spec["template"]["spec"]

    def secret_data(self) -> dict[tuple[str, str], str]:
        """(Secret name, key) -> value for every rendered Secret."""
        values: dict[tuple[str, str], str] = {}
        for secret in self.of_kind("Secret"):
            for key, value in (secret.inputs.get("stringData") or {}).items():
                values[(secret.object_name or "", key)] = value
        return values

    def write_yaml(self, directory: Path) -> list[Path]:
        """One YAML file per Kubernetes object (also handy to debug a rendering)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for index, resource in enumerate(self.kubernetes):
            path = directory / f"{index:03d}-{resource.kind}-{resource.object_name}.yaml"
            path.write_text(yaml.safe_dump(resource.manifest, sort_keys=False))
            paths.append(path)
        return paths


def _unwrap(value: Any, path: str, secret_paths: list[str]) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG_KEY) == SECRET_SIG_VALUE:
            secret_paths.append(path)
            return _unwrap(value.get("value"), path, [])
        return {k: _unwrap(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        # The mock transport (protobuf Struct) turns every number into a float.
        return int(value)
    return value


def fake_password(name: str, inputs: dict[str, Any]) -> str:
    """What RandomPassword would return: the asked length and alphabet, seeded by the name."""
    # Keepers are part of the seed: changing them regenerates the value, as in pulumi-random.
    seed = f"{name}|{json.dumps(inputs.get('keepers') or {}, sort_keys=True)}"
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    alphabet = string.ascii_letters + string.digits
    if inputs.get("special", True):
        alphabet += inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?"
    return "".join(rng.choice(alphabet) for _ in range(int(inputs["length"])))


class CapturingMonitor(MockMonitor):
    """Also records the resource options the plain mock API does not show (parent, protect...)."""

    def __init__(self, mocks: CapturingMocks) -> None:
        super().__init__(mocks)
        self.capturing = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        # Thread-local: the SDK calls the monitor from a thread pool, so registrations run
        # concurrently; `new_resource` runs inside this call, on this thread.
        self.capturing.pending.options = {
            "parent": request.parent or None,
            "protect": bool(getattr(request, "protect", False)),
            "retain_on_delete": bool(getattr(request, "retainOnDelete", False)),
            "dependencies": list(request.dependencies),
            "delete_before_replace": bool(getattr(request, "deleteBeforeReplace", False)),
            "ignore_changes": list(getattr(request, "ignoreChanges", [])),
        }
        response = super().RegisterResource(request)
        for resource in self.capturing.resources:
            if (resource.typ, resource.name) == (request.type, request.name) and not resource.urn:
                resource.urn = response.urn
        return response


class CapturingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[Resource] = []
        self.pending = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secret_paths: list[str] = []
        options: dict[str, Any] = getattr(self.pending, "options", {})
        inputs = _unwrap(copy.deepcopy(args.inputs), "", secret_paths)
        self.resources.append(
            Resource(
                typ=args.typ,
                name=args.name,
                inputs=inputs,
                secret_paths=secret_paths,
                custom=bool(args.custom),
                parent=options.get("parent"),
                options={**options, "provider": args.provider or ""},
            )
        )
        state = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            state["result"] = fake_password(args.name, inputs)
        return f"{args.name}-id", state

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def _reset_runtime() -> None:
    pulumi_settings.SETTINGS.outputs.clear()
    pulumi_settings.set_root_resource(None)  # type: ignore[arg-type]


def run_under_mocks(
    program: Callable[[], Any],
    config: dict[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    stack: str = "test",
    mocks: CapturingMocks | None = None,
) -> Rendering:
    """Run `program` against capturing mocks; errors from the program propagate unchanged."""
    _reset_runtime()
    mocks = mocks if mocks is not None else CapturingMocks()
    pulumi.runtime.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=CapturingMonitor(mocks)
    )
    pulumi.runtime.set_all_config(
        {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in (config or {}).items()
        },
        secret_keys or [],
    )
    exported: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    original_export = pulumi.export

    def capture_export(name: str, value: Any) -> None:
        exported[name] = value

    @pulumi.runtime.test
    def run() -> Any:
        pulumi.export = capture_export
        try:
            program()
        finally:
            pulumi.export = original_export
        return pulumi.Output.all(
            *[_resolve(name, value, secret_outputs) for name, value in exported.items()]
        )

    resolved: dict[str, Any] = {}

    def _resolve(name: str, value: Any, secrets: set[str]) -> pulumi.Output[Any]:
        output = pulumi.Output.from_input(value)

        async def is_secret() -> None:
            if await output.is_secret():
                secrets.add(name)

        return pulumi.Output.all(output, pulumi.Output.from_input(is_secret())).apply(  # type: ignore[arg-type]
            lambda pair: resolved.__setitem__(name, pair[0])
        )

    run()
    return Rendering(
        resources=mocks.resources, outputs=resolved, secret_outputs=secret_outputs, stack=stack
    )


def stack_config(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((STACKS / f"Pulumi.{stack}.yaml").read_text())
    return dict(document.get("config") or {})


def cluster_config(stack: str) -> dict[str, Any]:
    return copy.deepcopy(stack_config(stack)[f"{PROJECT}:cluster"])


def render_program(
    config: dict[str, Any],
    secret_keys: list[str] | None = None,
    stack: str = "test",
    mocks: CapturingMocks | None = None,
) -> Rendering:
    """Run `__main__.py` with the given stack config map."""
    return run_under_mocks(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        config=config,
        secret_keys=secret_keys,
        stack=stack,
        mocks=mocks,
    )


def render_stack(
    stack: str,
    cluster: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> Rendering:
    """Run `__main__.py` with a stack file's config, optionally replacing the cluster object."""
    config = stack_config(stack)
    if cluster is not None:
        config[f"{PROJECT}:cluster"] = cluster
    secret_keys = []
    if extra_config:
        config.update(extra_config)
        secret_keys = [key for key in extra_config if key.endswith("Password")]
    return render_program(config, secret_keys=secret_keys, stack=stack)

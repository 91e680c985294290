"""The structure holds by construction: every pod starts after what it reads, the package has a
bottom layer and no import cycles, and refactoring keeps every Kubernetes object's name."""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.rendering import ROOT, Rendering, Resource, cluster_config, render_stack

PACKAGE = ROOT / "airflow_component"
AIRFLOW_IMAGE = "apache/airflow:"


def rich_config() -> dict[str, Any]:
    """Staging with every feature that adds objects pods read: PgBouncer, backups, the
    KubernetesExecutor, KEDA, a ServiceMonitor, declared connections, Fernet rotation."""
    cluster = copy.deepcopy(cluster_config("staging"))
    cluster["executors"] = "CeleryExecutor,KubernetesExecutor"
    cluster["pgbouncer"] = {"enabled": True}
    cluster["autoscaling"] = {"celeryWorkers": {"enabled": True, "minReplicas": 1}}
    cluster["metrics"] = {"serviceMonitor": True}
    cluster["connections"] = {"warehouse": {"fromConfig": "warehouseUri"}}
    cluster["fernet"] = {"previousKeys": [{"name": "old-fernet", "key": "key"}]}
    return cluster


def rich_rendering() -> Rendering:
    return render_stack(
        "staging",
        cluster=rich_config(),
        extra_config={"airflow-k8s:warehouseUri": "postgresql://u:p@warehouse:5432/db"},
    )


RENDERINGS = {
    "local": lambda: render_stack("local"),
    "staging": lambda: render_stack("staging"),
    "prod": lambda: render_stack("prod"),
    "rich": rich_rendering,
}


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    spec = resource.inputs.get("spec") or {}
    if resource.kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if resource.kind in {"Deployment", "StatefulSet", "Job"}:
        return spec["template"]["spec"]
    return None


def objects_read(spec: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every Secret, ConfigMap and claim the kubelet needs to start the pod."""
    read: set[tuple[str, str]] = set()
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for item in container.get("env", []):
            source = item.get("valueFrom") or {}
            if "secretKeyRef" in source:
                read.add(("Secret", source["secretKeyRef"]["name"]))
            if "configMapKeyRef" in source:
                read.add(("ConfigMap", source["configMapKeyRef"]["name"]))
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                read.add(("Secret", source["secretRef"]["name"]))
            if "configMapRef" in source:
                read.add(("ConfigMap", source["configMapRef"]["name"]))
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            read.add(("Secret", volume["secret"]["secretName"]))
        if "configMap" in volume:
            read.add(("ConfigMap", volume["configMap"]["name"]))
        if "persistentVolumeClaim" in volume:
            read.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
    return read


def ordered_before(rendering: Rendering) -> dict[str, set[str]]:
    """URN -> every URN Pulumi finishes first (the transitive closure of the dependencies)."""
    direct = {r.urn: set(r.options.get("dependencies") or []) for r in rendering.resources}
    closure: dict[str, set[str]] = {}

    def visit(urn: str) -> set[str]:
        if urn not in closure:
            closure[urn] = set()
            found: set[str] = set()
            for dependency in direct.get(urn, ()):
                found |= {dependency, *visit(dependency)}
            closure[urn] = found
        return closure[urn]

    for urn in direct:
        visit(urn)
    return closure


def missing_dependencies(rendering: Rendering) -> tuple[list[str], int]:
    """Pods that could start before an object they read, or an Airflow pod before migrations."""
    rendered = {(r.kind, r.object_name): r for r in rendering.kubernetes}
    before = ordered_before(rendering)
    migrate = rendering.one("Job", "airflow-db-migrate")
    missing = []
    checked = 0
    for resource in rendering.kubernetes:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for key in sorted(objects_read(spec)):
            target = rendered.get(key)
            if target is None:
                continue  # an existing object the config names (the user's own Secret)
            checked += 1
            if target.urn not in before[resource.urn]:
                missing.append(f"{resource.kind}/{resource.object_name} -> {key}")
        runs_airflow = any(c["image"].startswith(AIRFLOW_IMAGE) for c in spec["containers"])
        if runs_airflow and resource is not migrate and migrate.urn not in before[resource.urn]:
            missing.append(f"{resource.kind}/{resource.object_name} -> migrations")
    return missing, checked


@pytest.mark.parametrize("variant", sorted(RENDERINGS))
def test_every_pod_starts_after_what_it_reads_and_after_migrations(variant: str) -> None:
    """`pulumi up` must create a Secret, ConfigMap or claim before any pod that reads it (the
    kubelet otherwise fails the pod: CreateContainerConfigError / unbound claim), and every
    Airflow workload after the migration Job (or it runs against an old schema)."""
    missing, checked = missing_dependencies(RENDERINGS[variant]())
    assert checked > 10
    assert not missing, "\n".join(missing)


def test_the_dependency_check_catches_dependencies_left_at_the_part(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pulumi does not hand a component's `depends_on` to its children. Break the one place
    that passes them on, and the check reports pods that could start before their Secrets."""
    import pulumi

    from airflow_component.parts import base

    def without_part_dependencies(
        self: base.Part, depends_on: Any = (), protect: bool = False, **_: Any
    ) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), protect=protect)

    monkeypatch.setattr(base.Part, "opts", without_part_dependencies)
    missing, _ = missing_dependencies(render_stack("staging"))
    assert "Deployment/airflow-scheduler -> ('Secret', 'airflow-keys')" in missing
    assert "Deployment/airflow-worker -> migrations" in missing


# --- the package's import graph -----------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports(path: Path) -> set[str]:
    """Modules of the package this file imports, anywhere in it (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                target = node.module or ""
            # A module's own ancestor packages are already initialising when it runs.
            if target.startswith("airflow_component") and not name.startswith(f"{target}."):
                found.add(target)
            if target.startswith("airflow_component"):
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                        ROOT / Path(*candidate.split(".")) / "__init__.py"
                    ).exists():
                        found.add(candidate)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("airflow_component")}
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): package_imports(p) for p in PACKAGE.rglob("*.py")}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            # Importing a package runs its __init__, which is an edge of its own.
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 20
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_bottom_layer_imports_nothing_from_the_package() -> None:
    graph = import_graph()
    assert graph["airflow_component.kube"] == set()
    assert graph["airflow_component.versions"] == set()
    # Config is what users write: it never reaches into the builders.
    for module, imports in graph.items():
        if module.startswith("airflow_component.config"):
            assert all(
                i.startswith(("airflow_component.config", "airflow_component.versions"))
                for i in imports
            ), module


def test_main_program_uses_only_the_public_api() -> None:
    imports = package_imports(ROOT / "__main__.py")
    assert imports == {"airflow_component"}


# --- object names survive refactoring -----------------------------------------------------

# (kind, name) pairs each stack gained or lost on purpose since the names were recorded.
INTENDED_NAME_CHANGES: dict[str, dict[str, list[list[str]]]] = {
    # The api-server reads running KubernetesExecutor task pods' logs (its own read-only Role).
    "prod": {
        "added": [["Role", "airflow-pod-log-reader"], ["RoleBinding", "airflow-pod-log-reader"]]
    },
    # staging keeps task logs in S3: a ReadWriteMany claim needs a provisioner (nfs-client)
    # that a cluster may not have. It snapshots its in-cluster Postgres before each migration
    # (#15): a Job named after the image it prepares for.
    "staging": {
        "removed": [["PersistentVolumeClaim", "airflow-logs"]],
        "added": [["Job", "airflow-snapshot-3-3-2"]],
    },
}
# Kinds whose names changed on purpose, with the reason a reviewer would accept.
RENAMED_KINDS = {
    # One egress policy per component and one ingress policy per component others connect to,
    # generated from the components' needs (`<component>-egress` / `<component>-ingress`).
    # A NetworkPolicy holds no state: Pulumi replaces it, traffic rules apply at once.
    "NetworkPolicy": r"airflow-(default-deny|dns|[a-z-]+-(egress|ingress))",
}

# Objects added on purpose in every stack (kind, name pattern), each present exactly once.
ADDED_EVERYWHERE = [
    # The in-cluster self-check (#11): its program, and its Job, named by a checksum of the
    # deployment so that every changed `pulumi up` replaces the Job and so checks again.
    ("ConfigMap", r"airflow-self-check"),
    ("Job", r"airflow-self-check-[0-9a-f]{8}"),
]


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_kubernetes_object_names_are_stable(stack: str) -> None:
    """Renaming an object makes `pulumi up` delete and recreate it (a Postgres StatefulSet, a
    Secret, a claim): names change only when listed here on purpose."""
    recorded = json.loads((ROOT / "tests" / "data" / "object_names.json").read_text())
    expected = {tuple(pair) for pair in recorded[stack]}
    changes = INTENDED_NAME_CHANGES.get(stack, {})
    expected -= {tuple(pair) for pair in changes.get("removed", [])}
    expected |= {tuple(pair) for pair in changes.get("added", [])}
    rendering = render_stack(stack)
    rendered = {(r.kind, r.object_name) for r in rendering.kubernetes}
    for kind, pattern in RENAMED_KINDS.items():
        expected = {pair for pair in expected if pair[0] != kind}
        renamed = {pair for pair in rendered if pair[0] == kind}
        assert all(re.fullmatch(pattern, name or "") for _, name in renamed), renamed
        rendered -= renamed
    for kind, pattern in ADDED_EVERYWHERE:
        added = {
            pair for pair in rendered if pair[0] == kind and re.fullmatch(pattern, pair[1] or "")
        }
        assert len(added) == 1, (kind, pattern, added)
        rendered -= added
    assert rendered == expected

"""Every reference in every rendered object points at something that will exist: an object the
component renders, or one the config names as existing (the user's Secrets, claims, classes).
A dangling reference is a pod stuck in CreateContainerConfigError, an Ingress with no backend,
an HPA or KEDA object scaling nothing, a RoleBinding granting nobody."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.rendering import Rendering, cluster_config, render_stack
from tests.test_structure import rich_config, rich_rendering

SECRET_FIELDS = {"httpsCredentialsSecret", "sshKeySecret", "tlsSecretName"}


def declared_existing(raw: Any) -> set[tuple[str, str]]:
    """(kind, name) of objects the config says exist already."""
    found: set[tuple[str, str]] = set()
    if isinstance(raw, dict):
        if set(raw) == {"name", "key"}:
            found.add(("Secret", raw["name"]))
        for key, value in raw.items():
            if key in SECRET_FIELDS and isinstance(value, str):
                found.add(("Secret", value))
            elif key == "pullSecrets":
                found |= {("Secret", name) for name in value}
            elif key == "existingClaim" and value:
                found.add(("PersistentVolumeClaim", value))
            elif key == "extraEnvFrom":
                found |= {("Secret", s["secret"]) for s in value if s.get("secret")}
                found |= {("ConfigMap", s["configMap"]) for s in value if s.get("configMap")}
            else:
                found |= declared_existing(value)
    elif isinstance(raw, list):
        for item in raw:
            found |= declared_existing(item)
    return found


def pod_references(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield "ServiceAccount", spec["serviceAccountName"]
    for secret in spec.get("imagePullSecrets", []):
        yield "Secret", secret["name"]
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for item in container.get("env", []):
            source = item.get("valueFrom") or {}
            if "secretKeyRef" in source:
                yield "Secret", source["secretKeyRef"]["name"]
            if "configMapKeyRef" in source:
                yield "ConfigMap", source["configMapKeyRef"]["name"]
        for whole in container.get("envFrom", []):
            if "secretRef" in whole:
                yield "Secret", whole["secretRef"]["name"]
            if "configMapRef" in whole:
                yield "ConfigMap", whole["configMapRef"]["name"]
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]


def references(rendering: Rendering) -> Iterator[tuple[str, tuple[str, str]]]:
    """(where, (kind, name)) for every reference an object makes."""
    for resource in rendering.kubernetes:
        where = f"{resource.kind}/{resource.object_name}"
        spec = resource.inputs.get("spec") or {}
        if resource.kind == "StatefulSet":
            yield where, ("Service", spec["serviceName"])
        if resource.kind in {"RoleBinding"}:
            yield where, ("Role", resource.inputs["roleRef"]["name"])
            for subject in resource.inputs["subjects"]:
                yield where, ("ServiceAccount", subject["name"])
        if resource.kind == "HorizontalPodAutoscaler":
            yield where, (spec["scaleTargetRef"]["kind"], spec["scaleTargetRef"]["name"])
        if resource.kind == "ScaledObject":
            yield where, ("Deployment", spec["scaleTargetRef"]["name"])
            for trigger in spec["triggers"]:
                yield where, ("TriggerAuthentication", trigger["authenticationRef"]["name"])
        if resource.kind == "TriggerAuthentication":
            for ref in spec["secretTargetRef"]:
                yield where, ("Secret", ref["name"])
        if resource.kind == "Ingress":
            for rule in spec["rules"]:
                for path in rule["http"]["paths"]:
                    yield where, ("Service", path["backend"]["service"]["name"])
            for tls in spec.get("tls", []):
                yield where, ("Secret", tls["secretName"])
        if resource.kind == "ConfigMap":
            template = (resource.inputs.get("data") or {}).get("pod_template_file.yaml")
            if template:
                for ref in pod_references(yaml.safe_load(template)["spec"]):
                    yield f"{where} (task pod)", ref
    for resource, spec in rendering.pod_specs():
        for ref in pod_references(spec):
            yield f"{resource.kind}/{resource.object_name}", ref


def dangling(rendering: Rendering, raw: dict[str, Any]) -> list[str]:
    rendered = {(r.kind, r.object_name) for r in rendering.kubernetes}
    existing = declared_existing(raw)
    return sorted(
        f"{where} -> {kind}/{name}"
        for where, (kind, name) in references(rendering)
        if (kind, name) not in rendered and (kind, name) not in existing
    )


def keda_with_an_operator_password() -> tuple[Rendering, dict[str, Any]]:
    raw = copy.deepcopy(cluster_config("prod"))
    raw["autoscaling"]["celeryWorkers"] = {"enabled": True}
    return render_stack("prod", cluster=raw), raw


VARIANTS = {
    "local": lambda: (render_stack("local"), cluster_config("local")),
    "staging": lambda: (render_stack("staging"), cluster_config("staging")),
    "prod": lambda: (render_stack("prod"), cluster_config("prod")),
    "rich": lambda: (rich_rendering(), rich_config()),
    "keda-with-an-operator-password": keda_with_an_operator_password,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_reference_resolves(variant: str) -> None:
    rendering, raw = VARIANTS[variant]()
    assert sum(1 for _ in references(rendering)) > 30
    assert not dangling(rendering, raw)


def test_the_walk_finds_a_dangling_reference() -> None:
    rendering, raw = VARIANTS["staging"]()
    rendering.resources = [
        r for r in rendering.resources if (r.kind, r.object_name) != ("Secret", "airflow-keys")
    ]
    assert "Deployment/airflow-api-server -> Secret/airflow-keys" in dangling(rendering, raw)

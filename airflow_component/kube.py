"""The generic bottom layer: Kubernetes building blocks with secure defaults set once.

Imports nothing from this package (a test holds it to that), so every other module can use it:
object metadata, security contexts, resources, probes, env entries, claims and checksums.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Protocol

from pulumi_kubernetes.core.v1 import (
    EnvVarArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    PodSecurityContextArgsDict,
    ProbeArgsDict,
    ResourceRequirementsArgsDict,
    SecurityContextArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict


class KeyRef(Protocol):
    """A key of a Kubernetes Secret (`name`, `key`)."""

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...


class ComputeAmounts(Protocol):
    @property
    def cpu(self) -> str: ...

    @property
    def memory(self) -> str: ...


class ResourceAmounts(Protocol):
    @property
    def requests(self) -> ComputeAmounts: ...

    @property
    def limits(self) -> ComputeAmounts: ...


def object_metadata(
    name: str,
    namespace: str | None,
    labels: Mapping[str, str],
    annotations: Mapping[str, Any] | None = None,
) -> ObjectMetaArgsDict:
    metadata: ObjectMetaArgsDict = {"name": name, "labels": dict(labels)}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def secret_env(name: str, ref: KeyRef) -> EnvVarArgsDict:
    """A secret reaches a container only by reference: the value never enters the manifest."""
    return {"name": name, "value_from": {"secret_key_ref": {"name": ref.name, "key": ref.key}}}


def literal(text: str) -> str:
    """Text the kubelet must not expand: it replaces `$(NAME)` in env values, command and args
    with another variable's value (a secret, possibly); `$$` is its escape for `$`."""
    return text.replace("$", "$$")


def plain_env(name: str, value: str) -> EnvVarArgsDict:
    """An env var with exactly this value (never expanded by the kubelet)."""
    return {"name": name, "value": literal(value)}


def reference_env(name: str, template: str) -> EnvVarArgsDict:
    """An env var the kubelet assembles from others (`$(NAME)`): only for our own templates."""
    return {"name": name, "value": template}


def container_security_context() -> SecurityContextArgsDict:
    """Pod Security "restricted" at container level, with a read-only root filesystem."""
    return {
        "allow_privilege_escalation": False,
        "capabilities": {"drop": ["ALL"]},
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def pod_security_context(
    uid: int, gid: int, fs_group: int | None = None
) -> PodSecurityContextArgsDict:
    context: PodSecurityContextArgsDict = {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": gid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        context["fs_group"] = fs_group
    return context


def resource_requirements(resources: ResourceAmounts) -> ResourceRequirementsArgsDict:
    return {
        side: {"cpu": amounts.cpu, "memory": amounts.memory}
        for side, amounts in (("requests", resources.requests), ("limits", resources.limits))
    }


def http_probe(path: str, port: str, period: int, failures: int) -> ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": port},
        "period_seconds": period,
        "timeout_seconds": 10,
        "failure_threshold": failures,
    }


def exec_probe(command: list[str], period: int, initial_delay: int = 0) -> ProbeArgsDict:
    probe: ProbeArgsDict = {
        "exec_": {"command": command},
        "period_seconds": period,
        "timeout_seconds": 5,
    }
    if initial_delay:
        probe["initial_delay_seconds"] = initial_delay
        probe["failure_threshold"] = 6
    return probe


def claim_spec(
    access_mode: str, size: str, storage_class: str | None
) -> PersistentVolumeClaimSpecArgsDict:
    spec: PersistentVolumeClaimSpecArgsDict = {
        "access_modes": [access_mode],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class:
        spec["storage_class_name"] = storage_class
    return spec


def checksum(text: str) -> str:
    """For values that are not secret (a pod template, a mapping file)."""
    return hashlib.sha256(text.encode()).hexdigest()


def keyed_checksum(key: str, text: str) -> str:
    """For secret values: an HMAC under a generated key, so the annotation, which anyone who can
    read the Deployment sees, cannot be used to test guesses of the secret."""
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


# Values under these keys are user maps (label keys, quantities): never rename their keys.
_MAP_FIELDS = {"labels", "annotations", "match_labels", "node_selector", "requests", "limits"}


def _camel(key: str) -> str:
    key = key.rstrip("_")  # `exec_` is the SDK's spelling of `exec`
    return re.sub(r"_([a-z])", lambda match: match.group(1).upper(), key)


def to_api_case(value: Any) -> Any:
    """SDK argument dicts (snake_case) to Kubernetes API objects (camelCase)."""
    if isinstance(value, dict):
        return {
            _camel(key): (item if key in _MAP_FIELDS else to_api_case(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [to_api_case(item) for item in value]
    return value

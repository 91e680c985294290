"""The namespace, labelled for Pod Security Admission."""

from __future__ import annotations

from .config import NamespaceConfig
from .resource_args import NamespaceArgs


def namespace_manifest(name: str, namespace: NamespaceConfig) -> NamespaceArgs:
    level = namespace.pod_security
    labels = {
        **namespace.labels,
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    }
    return {"metadata": {"name": name, "labels": labels}}

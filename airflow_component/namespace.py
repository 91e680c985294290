"""The namespace, labelled for Pod Security Admission."""

from __future__ import annotations

from typing import TypedDict

from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from .config import NamespaceConfig


class NamespaceArgs(TypedDict):
    metadata: ObjectMetaArgsDict


def namespace_manifest(name: str, namespace: NamespaceConfig) -> NamespaceArgs:
    level = namespace.pod_security
    labels = {
        **namespace.labels,
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    }
    return {"metadata": {"name": name, "labels": labels}}

"""Keyword arguments of resources built whole: pulumi-kubernetes has no *ArgsDict for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import pulumi
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict


class SecretArgs(TypedDict):
    metadata: ObjectMetaArgsDict
    type: str
    string_data: Mapping[str, pulumi.Input[str]]


class ServiceAccountArgs(TypedDict):
    metadata: ObjectMetaArgsDict
    automount_service_account_token: bool


class NamespaceArgs(TypedDict):
    metadata: ObjectMetaArgsDict

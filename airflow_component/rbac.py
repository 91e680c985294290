"""ServiceAccounts and the pod-launch Role: who gets API rights follows from `Needs`.

One ServiceAccount per component (Jobs share one), no token mounted by default; the namespaced
pod-launch Role is bound to exactly the components whose needs say they launch pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgsDict, RoleRefArgsDict, SubjectArgsDict

from .config import RemoteLoggingConfig
from .naming import Naming
from .needs import Needs
from .resolve import Bundle

POD_LAUNCHER = "pod-launcher"
# Exactly what launching and following pods needs (KubernetesExecutor, KubernetesPodOperator).
POD_LAUNCHER_RULES: tuple[PolicyRuleArgsDict, ...] = (
    {
        "api_groups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "patch", "delete"],
    },
    {"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"api_groups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"api_groups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
)


class ServiceAccountArgs(TypedDict):
    metadata: ObjectMetaArgsDict
    automount_service_account_token: bool


POD_LOG_READER = "pod-log-reader"
# The api-server shows a running KubernetesExecutor task's log from its pod (read-only).
POD_LOG_READER_RULES: tuple[PolicyRuleArgsDict, ...] = (
    {"api_groups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]},
)
ROLES = {POD_LAUNCHER: POD_LAUNCHER_RULES, POD_LOG_READER: POD_LOG_READER_RULES}


def role_rules(role: str) -> list[PolicyRuleArgsDict]:
    return list(ROLES[role])


def role_ref(naming: Naming, role: str) -> RoleRefArgsDict:
    return {"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": naming.object(role)}


def subjects(naming: Naming, accounts: tuple[str, ...]) -> list[SubjectArgsDict]:
    return [
        {"kind": "ServiceAccount", "name": naming.object(account), "namespace": naming.namespace}
        for account in accounts
    ]


def service_account_manifest(
    naming: Naming,
    account: str,
    users: list[Needs],
    remote_logging: RemoteLoggingConfig | None = None,
    bundles: Sequence[Bundle] = (),
) -> ServiceAccountArgs:
    """Accounts of Airflow processes carry the cloud identity annotations for remote logs and
    for the object-store bundles they fetch."""
    metadata: ObjectMetaArgsDict = {
        "name": naming.object(account),
        "namespace": naming.namespace,
        "labels": naming.metadata_labels(account),
    }
    handles_logs = any(n.task_logs for n in users)
    annotations: dict[str, str] = {}
    if remote_logging and handles_logs:
        annotations.update(remote_logging.service_account_annotations)
    fetched = {name for n in users for name in n.fetches_bundles}
    for bundle in bundles:
        if bundle.name in fetched and bundle.object_store is not None:
            # The cloud identity that reads the bucket (the config refuses conflicting ones).
            annotations.update(bundle.object_store.service_account_annotations)
    if annotations:
        metadata["annotations"] = annotations
    return {
        "metadata": metadata,
        # Tokens are mounted per pod where needed, never by default.
        "automount_service_account_token": False,
    }

"""Identity: one ServiceAccount per component and the pod-launch Role, bound to the components
whose needs say they launch pods."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..needs import Needs, pod_launchers, pod_log_readers, workload_needs
from ..rbac import (
    POD_LAUNCHER,
    POD_LOG_READER,
    role_ref,
    role_rules,
    service_account_manifest,
    subjects,
)
from .base import Context, Part


class Identity(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Identity", "identity", context, opts)
        config, naming = self.config, self.naming
        users: dict[str, list[Needs]] = {}
        for needs in workload_needs(config):
            users.setdefault(needs.account, []).append(needs)
        for account, account_users in users.items():
            k8s.core.v1.ServiceAccount(
                self.name(account),
                opts=self.opts(),
                **service_account_manifest(
                    naming, account, account_users, config.logging.remote, config.dags.bundles
                ),
            )
        for role_name, accounts in (
            (POD_LAUNCHER, pod_launchers(config)),
            (POD_LOG_READER, pod_log_readers(config)),
        ):
            if not accounts:
                continue
            role = k8s.rbac.v1.Role(
                self.name(role_name),
                metadata=self.metadata(role_name),
                rules=role_rules(role_name),
                opts=self.opts(),
            )
            k8s.rbac.v1.RoleBinding(
                self.name(role_name),
                metadata=self.metadata(role_name),
                role_ref=role_ref(naming, role_name),
                subjects=subjects(naming, accounts),
                opts=self.opts(depends_on=[role]),
            )
        self.finish()

"""Identity: one ServiceAccount per component and the pod-launch Role, bound to the components
whose needs say they launch pods."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..needs import Needs, pod_launchers, workload_needs
from ..rbac import (
    POD_LAUNCHER,
    pod_launcher_role_ref,
    pod_launcher_role_rules,
    pod_launcher_subjects,
    service_account_manifest,
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
                **service_account_manifest(naming, account, account_users, config.logging.remote),
            )
        launchers = pod_launchers(config)
        if launchers:
            role = k8s.rbac.v1.Role(
                self.name(POD_LAUNCHER),
                metadata=self.metadata(POD_LAUNCHER),
                rules=pod_launcher_role_rules(),
                opts=self.opts(),
            )
            k8s.rbac.v1.RoleBinding(
                self.name(POD_LAUNCHER),
                metadata=self.metadata(POD_LAUNCHER),
                role_ref=pod_launcher_role_ref(naming),
                subjects=pod_launcher_subjects(naming, launchers),
                opts=self.opts(depends_on=[role]),
            )
        self.finish()

"""NetworkPolicies: default deny, then the flows the components' needs call for."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..network_policies import network_policy_specs
from .base import Context, Part


class NetworkPolicies(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("NetworkPolicies", "network-policies", context, opts)
        for policy, spec in network_policy_specs(self.config, self.naming).items():
            k8s.networking.v1.NetworkPolicy(
                self.name(policy),
                metadata=self.metadata(policy),
                spec=spec,
                opts=self.opts(),
            )
        self.finish()

"""NetworkPolicies: deny everything for our pods, then allow exactly the flows their needs declare.

Each component's egress is one policy (`<component>-egress`) listing what its `Needs` say it
connects to; each component others connect to gets one ingress policy (`<component>-ingress`)
whose sources are the components whose egress names it, plus the namespaces its own needs name
(ingress controller, Prometheus, KEDA). Nothing here names a component.
"""

from __future__ import annotations

from collections import defaultdict

from pulumi_kubernetes.meta.v1 import LabelSelectorArgsDict
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from .naming import Naming
from .needs import Flow, Peer, workload_needs
from .resolve import ResolvedConfig

DNS_PORT = 53
KUBE_DNS_LABELS = {"k8s-app": "kube-dns"}


def release_pods(naming: Naming) -> LabelSelectorArgsDict:
    """Every pod of this release: in a namespace we share, nothing else is selected."""
    return {"match_labels": {"app.kubernetes.io/instance": naming.release}}


def component_pods(naming: Naming, component: str) -> LabelSelectorArgsDict:
    return {"match_labels": naming.labels(component)}


def _peer(naming: Naming, peer: Peer) -> list[NetworkPolicyPeerArgsDict]:
    if peer.component is not None:
        return [{"pod_selector": component_pods(naming, peer.component)}]
    if peer.namespace is not None:
        return [
            {
                "namespace_selector": {
                    "match_labels": {"kubernetes.io/metadata.name": peer.namespace}
                }
            }
        ]
    return [{"ip_block": {"cidr": cidr}} for cidr in peer.cidrs]


def _ports(flow: Flow) -> list[NetworkPolicyPortArgsDict]:
    return [{"protocol": flow.protocol, "port": port} for port in flow.ports]


def _egress_rule(naming: Naming, flow: Flow) -> NetworkPolicyEgressRuleArgsDict:
    rule: NetworkPolicyEgressRuleArgsDict = {"ports": _ports(flow)}
    peers = _peer(naming, flow.peer)
    if peers:  # no peer: the port to any address (an external database of unknown address)
        rule["to"] = peers
    return rule


def network_policy_specs(
    config: ResolvedConfig, naming: Naming
) -> dict[str, NetworkPolicySpecArgsDict]:
    """Policy name suffix -> spec. Policies are additive: each one opens the paths it lists."""
    ours = release_pods(naming)
    dns_peers: list[NetworkPolicyPeerArgsDict] = [
        {
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
            "pod_selector": {"match_labels": dict(KUBE_DNS_LABELS)},
        },
        *({"ip_block": {"cidr": cidr}} for cidr in config.network_policies.dns_cidrs),
    ]
    specs: dict[str, NetworkPolicySpecArgsDict] = {
        "default-deny": {"pod_selector": ours, "policy_types": ["Ingress", "Egress"]},
        "dns": {
            "pod_selector": ours,
            "policy_types": ["Egress"],
            "egress": [
                {
                    "to": dns_peers,
                    "ports": [
                        {"protocol": "UDP", "port": DNS_PORT},
                        {"protocol": "TCP", "port": DNS_PORT},
                    ],
                }
            ],
        },
    }
    catalogue = workload_needs(config)
    # (server component) -> (protocol, ports) -> client peers
    inbound: dict[str, dict[tuple[str, tuple[int, ...]], list[NetworkPolicyPeerArgsDict]]]
    inbound = defaultdict(lambda: defaultdict(list))
    for needs in catalogue:
        if needs.egress:
            specs[f"{needs.component}-egress"] = {
                "pod_selector": component_pods(naming, needs.component),
                "policy_types": ["Egress"],
                "egress": [_egress_rule(naming, flow) for flow in needs.egress],
            }
        for flow in needs.egress:
            if flow.peer.component is not None:
                key = (flow.protocol, flow.ports)
                client = {"pod_selector": component_pods(naming, needs.component)}
                inbound[flow.peer.component][key].append(client)
        for flow in needs.ingress:
            inbound[needs.component][(flow.protocol, flow.ports)] += _peer(naming, flow.peer)
    for server, sources in inbound.items():
        rules: list[NetworkPolicyIngressRuleArgsDict] = [
            {"from": peers, "ports": [{"protocol": protocol, "port": p} for p in ports]}
            for (protocol, ports), peers in sorted(sources.items())
        ]
        specs[f"{server}-ingress"] = {
            "pod_selector": component_pods(naming, server),
            "policy_types": ["Ingress"],
            "ingress": rules,
        }
    return specs

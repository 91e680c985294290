"""NetworkPolicies evaluated as a cluster would, disruption budgets, spreading, digest pinning."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.rendering import Rendering, cluster_config, render_stack

INGRESS_NAMESPACE = "ingress-nginx"


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
    return True


def port_allowed(rule: dict[str, Any], port: int) -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port for p in ports)


def peer_allows(peer: dict[str, Any], labels: dict[str, str] | None, namespace: str | None) -> bool:
    """`labels` None and `namespace` None: an address outside the cluster.

    `namespace` set: a pod of another namespace, whose labels we do not know (`{}`).
    """
    if labels is None and namespace is None:
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return False
    if namespace is not None:
        if "namespaceSelector" not in peer:
            return False
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        return matches(peer["namespaceSelector"], ns_labels) and matches(
            peer.get("podSelector") or {}, labels or {}
        )
    if "namespaceSelector" in peer:
        return False
    return matches(peer["podSelector"], labels or {})


def allowed(
    policies: list[dict[str, Any]],
    source: dict[str, str] | None,
    destination: dict[str, str] | None,
    port: int,
    source_namespace: str | None = None,
) -> bool:
    """Kubernetes semantics: both the source's egress and the destination's ingress must allow.

    `None` labels mean "outside the namespace" (another namespace's pod, or an IP address).
    """

    def direction_allows(
        kind: str, subject: dict[str, str], peer_labels: Any, peer_ns: Any
    ) -> bool:
        selecting = [
            p for p in policies if kind in p["policyTypes"] and matches(p["podSelector"], subject)
        ]
        if not selecting:
            return True
        key, peer_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy.get(key) or []:
                peers = rule.get(peer_key)
                if port_allowed(rule, port) and (
                    not peers or any(peer_allows(p, peer_labels, peer_ns) for p in peers)
                ):
                    return True
        return False

    if source is not None and not direction_allows("Egress", source, destination, None):
        return False
    return destination is None or direction_allows(
        "Ingress", destination, source if source_namespace is None else {}, source_namespace
    )


def pods(rendering: Rendering) -> dict[str, dict[str, str]]:
    found = {}
    for resource, _ in rendering.pod_specs():
        component = resource.inputs["metadata"]["labels"]["app.kubernetes.io/component"]
        spec = resource.inputs["spec"]
        template = (
            spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
        )
        found[component] = template["metadata"]["labels"]
    return found


def policies_of(rendering: Rendering) -> list[dict[str, Any]]:
    return [r.inputs["spec"] for r in rendering.of_kind("NetworkPolicy")]


def test_local_has_no_policies_staging_and_prod_do() -> None:
    assert not render_stack("local").of_kind("NetworkPolicy")
    for stack in ("staging", "prod"):
        names = {r.object_name for r in render_stack(stack).of_kind("NetworkPolicy")}
        assert "airflow-default-deny" in names


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_traffic_matrix(stack: str) -> None:
    rendering = render_stack(stack)
    policies = policies_of(rendering)
    by_component = pods(rendering)
    not_airflow = {"postgres", "redis", "statsd", "backup", "pgbouncer"}
    airflow = {c: labels for c, labels in by_component.items() if c not in not_airflow}
    assert {"scheduler", "worker", "api-server", "db-migrate"} <= airflow.keys()

    def can(source: str | None, destination: str, port: int, namespace: str | None = None) -> bool:
        src = by_component[source] if source else None
        return allowed(policies, src, by_component[destination], port, namespace)

    for component in airflow:
        assert can(component, "redis", 6379), component
        assert can(component, "api-server", 8080), component
        assert not can(component, "redis", 22)
        if "postgres" in by_component:
            assert can(component, "postgres", 5432), component
    # Nothing else reaches the databases: not the broker, not other namespaces.
    assert not can("redis", "api-server", 8080)
    if "postgres" in by_component:
        assert not can("redis", "postgres", 5432)
        assert not can(None, "postgres", 5432, namespace=INGRESS_NAMESPACE)
    assert not can(None, "redis", 6379, namespace="default")
    # The ingress controller reaches the api-server, and only the api-server.
    assert can(None, "api-server", 8080, namespace=INGRESS_NAMESPACE)
    assert not can(None, "api-server", 8080, namespace="default")
    assert not can(None, "scheduler", 8793, namespace=INGRESS_NAMESPACE)
    # Task logs: the api-server fetches them from workers.
    assert can("api-server", "worker", 8793)
    # DNS for everyone.
    kube_dns = {"k8s-app": "kube-dns"}
    for component, labels in by_component.items():
        egress_ok = [
            p
            for p in policies
            if "Egress" in p["policyTypes"] and matches(p["podSelector"], labels)
            for rule in p.get("egress") or []
            if port_allowed(rule, 53)
            and any(peer_allows(peer, kube_dns, "kube-system") for peer in rule.get("to") or [])
        ]
        assert egress_ok, component


def kubernetes_api_reachable(policies: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    return allowed(policies, labels, None, 443)


def test_only_pod_launchers_reach_the_kubernetes_api() -> None:
    rendering = render_stack("prod")
    policies = policies_of(rendering)
    reach = {c: kubernetes_api_reachable(policies, labels) for c, labels in pods(rendering).items()}
    # prod syncs DAGs over SSH, so only the pod launchers reach port 443: the
    # KubernetesExecutor's scheduler and the CronJob deleting finished task pods.
    assert {c for c, ok in reach.items() if ok} == {"scheduler", "pod-cleanup"}
    staging = render_stack("staging")
    staging_policies = policies_of(staging)
    staging_pods = pods(staging)
    # staging syncs over HTTPS: DAG readers reach 443 (narrow `dagSourceCidrs` to close it),
    # everything else does not.
    for component in ("api-server", "db-migrate", "redis", "postgres", "flower"):
        assert not kubernetes_api_reachable(staging_policies, staging_pods[component]), component


def test_extra_egress_and_ingress_namespace_come_from_config() -> None:
    cluster = cluster_config("staging")
    cluster["networkPolicies"] = {
        "ingressControllerNamespace": "traefik",
        "extraEgress": [{"cidrs": ["10.20.0.0/16"], "ports": [{"port": 5439}]}],
    }
    rendering = render_stack("staging", cluster=cluster)
    policies = policies_of(rendering)
    labels = pods(rendering)
    assert allowed(policies, None, labels["api-server"], 8080, "traefik")
    assert not allowed(policies, None, labels["api-server"], 8080, INGRESS_NAMESPACE)
    assert allowed(policies, labels["worker"], None, 5439)
    assert not allowed(policies, labels["redis"], None, 5439)


def test_evaluator_rejects_without_policies_it_would_otherwise_allow() -> None:
    """The evaluator is not vacuous: with no policies everything is allowed, with deny-all none."""
    deny = [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]
    assert allowed([], {"a": "1"}, {"b": "2"}, 80)
    assert not allowed(deny, {"a": "1"}, {"b": "2"}, 80)


# --- availability -----------------------------------------------------------------------------


def budgets(rendering: Rendering) -> dict[str, dict[str, Any]]:
    return {r.object_name or "": r.inputs["spec"] for r in rendering.of_kind("PodDisruptionBudget")}


def test_disruption_budgets_only_for_multi_replica_processes() -> None:
    prod = budgets(render_stack("prod"))
    assert set(prod) == {"airflow-api-server", "airflow-scheduler", "airflow-worker"}
    for name, spec in prod.items():
        assert spec["maxUnavailable"] == 1
        assert spec["selector"]["matchLabels"]["app.kubernetes.io/component"] == name.removeprefix(
            "airflow-"
        )
    assert set(budgets(render_stack("staging"))) == {"airflow-worker"}
    assert budgets(render_stack("local")) == {}


def test_replicas_spread_across_nodes_and_roll_without_downtime() -> None:
    rendering = render_stack("prod")
    for resource in rendering.of_kind("Deployment"):
        spec = resource.inputs["spec"]
        if not spec["template"]["spec"]["containers"][0]["image"].startswith("apache/airflow"):
            continue
        assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        spread = spec["template"]["spec"].get("topologySpreadConstraints")
        # No `replicas`: an autoscaler owns the count, which may exceed one.
        assert bool(spread) == (spec.get("replicas", 2) > 1), resource.object_name
        if spread:
            assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
            assert matches(spread[0]["labelSelector"], spec["template"]["metadata"]["labels"])


def test_image_digest_pinning() -> None:
    digest = "sha256:" + "ab" * 32
    cluster = cluster_config("prod")
    cluster["image"]["digest"] = digest
    rendering = render_stack("prod", cluster=cluster)
    images = {
        c["image"]
        for _, spec in rendering.pod_specs()
        for c in [*spec.get("initContainers", []), *spec["containers"]]
        if c["image"].startswith("apache/airflow")
    }
    assert images == {f"apache/airflow:3.3.2@{digest}"}

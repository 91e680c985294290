"""NetworkPolicies evaluated as a cluster would, disruption budgets, spreading, digest pinning.

The network tests state who must be able to talk to whom, and who must not, from what Airflow 3
and Kubernetes need (not from the code): every process that uses the metadata DB reaches it,
Celery clients reach Redis, task runners reach the Execution API, the api-server reaches the log
servers, DNS works through kube-dns and node-local addresses, remote-log writers reach HTTPS, pod
launchers reach the Kubernetes API; everything else is denied.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.rendering import Rendering, cluster_config, render_stack

INGRESS_NAMESPACE = "ingress-nginx"
OURS = "ours"  # the release's own namespace


@dataclass(frozen=True)
class Endpoint:
    """A pod (labels, namespace) or an address outside the cluster."""

    labels: tuple[tuple[str, str], ...] = ()
    namespace: str | None = OURS
    address: str | None = None

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


def pod(labels: dict[str, str], namespace: str = OURS) -> Endpoint:
    return Endpoint(labels=tuple(sorted(labels.items())), namespace=namespace)


def address(ip: str) -> Endpoint:
    return Endpoint(namespace=None, address=ip)


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
    return True


def port_allowed(rule: dict[str, Any], port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    return not ports or any(
        p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports
    )


def peer_matches(peer: dict[str, Any], endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if endpoint.address is None:
            return False
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(endpoint.address)
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except") or []
        )
    if endpoint.address is not None:
        return False
    if "namespaceSelector" in peer:
        namespace = {"kubernetes.io/metadata.name": endpoint.namespace or ""}
        in_namespace = matches(peer["namespaceSelector"], namespace)
        return in_namespace and matches(peer.get("podSelector") or {}, endpoint.label_map)
    return endpoint.namespace == OURS and matches(peer["podSelector"], endpoint.label_map)


def allowed(
    policies: list[dict[str, Any]],
    source: Endpoint,
    destination: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Kubernetes semantics: the source's egress and the destination's ingress must both allow.
    Policies only select pods of our namespace."""

    def direction_allows(kind: str, subject: Endpoint, other: Endpoint) -> bool:
        if subject.namespace != OURS:
            return True
        selecting = [
            p
            for p in policies
            if kind in p["policyTypes"] and matches(p["podSelector"], subject.label_map)
        ]
        if not selecting:
            return True
        key, peer_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        return any(
            port_allowed(rule, port, protocol)
            and (peer_key not in rule or any(peer_matches(p, other) for p in rule[peer_key]))
            for policy in selecting
            for rule in policy.get(key) or []
        )

    return direction_allows("Egress", source, destination) and direction_allows(
        "Ingress", destination, source
    )


def pods(rendering: Rendering) -> dict[str, Endpoint]:
    """component -> its pod labels, for every workload and the task-pod template."""
    import yaml

    found = {}
    for resource, _ in rendering.pod_specs():
        spec = resource.inputs["spec"]
        template = (
            spec["jobTemplate"]["spec"]["template"] if "jobTemplate" in spec else spec["template"]
        )
        labels = template["metadata"]["labels"]
        found[labels["app.kubernetes.io/component"]] = pod(labels)
    for config_map in rendering.of_kind("ConfigMap"):
        template = (config_map.inputs.get("data") or {}).get("pod_template_file.yaml")
        if template:
            labels = yaml.safe_load(template)["metadata"]["labels"]
            found[labels["app.kubernetes.io/component"]] = pod(labels)
    return found


def policies_of(rendering: Rendering) -> list[dict[str, Any]]:
    return [r.inputs["spec"] for r in rendering.of_kind("NetworkPolicy")]


KUBE_DNS = pod({"k8s-app": "kube-dns"}, namespace="kube-system")
NODE_LOCAL_DNS = address("169.254.20.10")
CLOUD_DNS = address("169.254.169.254")
KUBERNETES_API = address("10.96.0.1")
GITHUB = address("140.82.112.3")
S3 = address("52.216.8.13")
EXTERNAL_DB = address("10.40.0.12")
ELSEWHERE = address("203.0.113.50")
# Airflow processes that use the metadata DB: all of them but task pods (the schema wait in
# every other pod's init container and the processes themselves; Celery workers through the
# result backend).
DB_USERS = {
    "api-server", "scheduler", "dag-processor", "triggerer", "worker", "flower",
    "db-migrate", "create-admin", "pools", "db-clean", "pod-cleanup", "self-check",
}  # fmt: skip
# Who writes or reads task logs: the api-server reads them, task runners and the triggerer write,
# the self-check writes and reads a probe object.
LOG_USERS = {
    "api-server", "scheduler", "dag-processor", "triggerer", "worker", "task-pod", "self-check",
}  # fmt: skip
# The self-check connects to what tasks depend on, as a task runner would.
SELF_CHECK = "self-check"


def flows(stack: str, rendering: Rendering) -> tuple[set[tuple], set[tuple]]:
    """(source, destination, port, protocol) that must be allowed, and that must be denied."""
    by = pods(rendering)
    cluster = cluster_config(stack)
    executors = str(cluster.get("executors"))
    present = set(by)
    must, never = set(), set()
    in_cluster = "postgres" in present
    db = ("postgres", 5432) if in_cluster else (EXTERNAL_DB, 5432)
    for component in present & DB_USERS:
        must.add((component, *db, "TCP"))
    if "backup" in present:
        must.add(("backup", "postgres", 5432, "TCP"))
    for component in present - DB_USERS - {"backup", "pgbouncer"}:
        never.add((component, *db, "TCP"))
    if in_cluster:
        never.add((pod({"app": "other"}, INGRESS_NAMESPACE), *db, "TCP"))
    if "CeleryExecutor" in executors:
        broker_clients = {"scheduler", "worker"} | ({"flower", SELF_CHECK} & present)
        for component in broker_clients:
            must.add((component, "redis", 6379, "TCP"))
        for component in present - broker_clients:
            never.add((component, "redis", 6379, "TCP"))
        must.add(("worker", "api-server", 8080, "TCP"))  # Execution API
        must.add(("api-server", "worker", 8793, "TCP"))  # task logs
    if "task-pod" in present:
        must.add(("task-pod", "api-server", 8080, "TCP"))
    if SELF_CHECK in present:
        must.add((SELF_CHECK, "api-server", 8080, "TCP"))  # Execution API health, login
    must.add(("api-server", "triggerer", 8794, "TCP"))
    never.add(("db-migrate", "api-server", 8080, "TCP"))
    never.add(("dag-processor", "worker" if "worker" in present else "scheduler", 8793, "TCP"))
    ingress_controller = pod({"app.kubernetes.io/name": "ingress-nginx"}, INGRESS_NAMESPACE)
    must.add((ingress_controller, "api-server", 8080, "TCP"))
    never.add((ingress_controller, "scheduler", 8793, "TCP"))
    never.add((pod({"app": "x"}, "default"), "api-server", 8080, "TCP"))
    if "flower" in present:
        must.add((ingress_controller, "flower", 5555, "TCP"))
    if "statsd" in present:
        for component in present & (DB_USERS | {"task-pod"}):
            must.add((component, "statsd", 9125, "UDP"))
        prometheus = pod({"app": "prometheus"}, "monitoring")
        must.add((prometheus, "statsd", 9102, "TCP"))
    for component in present:
        for dns in (KUBE_DNS, NODE_LOCAL_DNS, CLOUD_DNS):
            must.add((component, dns, 53, "UDP"))
        never.add((component, CLOUD_DNS, 80, "TCP"))  # DNS only, not the metadata service
    # Launch task pods (scheduler), delete finished ones (pod-cleanup), read a running task
    # pod's log (api-server, KubernetesExecutor.get_task_log).
    launchers = {"scheduler", "api-server"} if "KubernetesExecutor" in executors else set()
    launchers |= {"pod-cleanup"} & present
    for component in present:
        target = must if component in launchers else never
        target.add((component, KUBERNETES_API, 6443, "TCP"))
    repo = (cluster.get("dags") or {}).get("gitSync", {}).get("repo", "")
    git = 443 if repo.startswith("https://") else 22
    readers = {"scheduler", "dag-processor", "triggerer", "worker", "task-pod", SELF_CHECK}
    readers &= present
    remote = (cluster.get("logging") or {}).get("remote")
    # With the default ranges (anywhere), git over HTTPS, the Kubernetes API and log storage
    # open 443 to any address.
    https_anyway = launchers | (readers if git == 443 else set())
    https_anyway |= LOG_USERS if remote else set()
    for component in present:
        if component in readers:
            must.add((component, GITHUB, git, "TCP"))
        elif not (git == 443 and component in https_anyway):
            never.add((component, GITHUB, git, "TCP"))
    for component in present:
        if remote and component in LOG_USERS:
            must.add((component, S3, 443, "TCP"))
        elif component not in https_anyway:
            never.add((component, S3, 443, "TCP"))
        never.add((component, ELSEWHERE, 80, "TCP"))
    return must, never


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_needed_flows_are_allowed_and_others_denied(stack: str) -> None:
    rendering = render_stack(stack)
    policies, by = policies_of(rendering), pods(rendering)
    must, never = flows(stack, rendering)

    def endpoint(value: Any) -> Endpoint:
        return by[value] if isinstance(value, str) else value

    def name(value: Any) -> str:
        return value if isinstance(value, str) else (value.address or str(value.labels))

    blocked = [
        f"{name(s)} -> {name(d)}:{port}/{proto}"
        for s, d, port, proto in must
        if not allowed(policies, endpoint(s), endpoint(d), port, proto)
    ]
    leaks = [
        f"{name(s)} -> {name(d)}:{port}/{proto}"
        for s, d, port, proto in never
        if allowed(policies, endpoint(s), endpoint(d), port, proto)
    ]
    assert len(must) > 40 and len(never) > 20
    assert not blocked, "needed but blocked:\n" + "\n".join(sorted(blocked))
    assert not leaks, "allowed but not needed:\n" + "\n".join(sorted(leaks))


def test_local_has_no_policies_staging_and_prod_do() -> None:
    assert not render_stack("local").of_kind("NetworkPolicy")
    for stack in ("staging", "prod"):
        names = {r.object_name for r in render_stack(stack).of_kind("NetworkPolicy")}
        assert "airflow-default-deny" in names


def test_remote_log_writers_reach_https_only_where_configured() -> None:
    """prod writes task logs to S3: each process that uploads or reads them reaches 443 on the
    configured ranges (narrowed here), and not beyond them."""
    cluster = cluster_config("prod")
    cluster["networkPolicies"] = {
        "logStorageCidrs": ["52.216.0.0/15"],
        "kubernetesApiCidrs": ["10.96.0.1/32"],
    }
    rendering = render_stack("prod", cluster=cluster)
    policies, by = policies_of(rendering), pods(rendering)
    for component in LOG_USERS & set(by):
        assert allowed(policies, by[component], S3, 443), component
        assert not allowed(policies, by[component], ELSEWHERE, 443), component


def test_extra_egress_and_ingress_namespace_come_from_config() -> None:
    cluster = cluster_config("staging")
    cluster["networkPolicies"] = {
        "ingressControllerNamespace": "traefik",
        "extraEgress": [{"cidrs": ["10.20.0.0/16"], "ports": [{"port": 5439}]}],
    }
    rendering = render_stack("staging", cluster=cluster)
    policies, by = policies_of(rendering), pods(rendering)
    traefik = pod({"app": "traefik"}, "traefik")
    nginx = pod({"app": "nginx"}, INGRESS_NAMESPACE)
    assert allowed(policies, traefik, by["api-server"], 8080)
    assert not allowed(policies, nginx, by["api-server"], 8080)
    warehouse = address("10.20.1.1")
    assert allowed(policies, by["worker"], warehouse, 5439)
    assert not allowed(policies, by["redis"], warehouse, 5439)


def test_a_shared_namespace_keeps_its_other_pods_reachable() -> None:
    """With `namespace.create: false` the namespace is not ours: no policy may select pods of
    other applications in it (a namespace-wide default deny would cut them off)."""
    cluster = cluster_config("staging")
    cluster["namespace"] = {"name": "team-shared", "create": False}
    rendering = render_stack("staging", cluster=cluster)
    policies = policies_of(rendering)
    neighbour = pod({"app": "their-service"})
    assert allowed(policies, neighbour, ELSEWHERE, 443)
    assert allowed(policies, pod({"app": "x"}, "default"), neighbour, 80)
    assert all(p["podSelector"] for p in policies), "a policy selects every pod"


def test_keda_operator_reaches_the_database_it_queries() -> None:
    cluster = cluster_config("staging")
    cluster["autoscaling"] = {"celeryWorkers": {"enabled": True}}
    cluster["pgbouncer"] = {"enabled": True}
    rendering = render_stack("staging", cluster=cluster)
    policies, by = policies_of(rendering), pods(rendering)
    keda = pod({"app": "keda-operator"}, "keda")
    assert allowed(policies, keda, by["pgbouncer"], 6432)
    assert not allowed(policies, keda, by["postgres"], 5432)
    assert allowed(policies, by["pgbouncer"], by["postgres"], 5432)


def test_evaluator_is_not_vacuous() -> None:
    deny: list[dict[str, Any]] = [{"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}]
    a, b = pod({"a": "1"}), pod({"b": "2"})
    assert allowed([], a, b, 80)
    assert not allowed(deny, a, b, 80)
    assert not allowed(deny, a, S3, 443)
    s3_egress = {
        "podSelector": {},
        "policyTypes": ["Egress"],
        "egress": [
            {
                "to": [{"ipBlock": {"cidr": "52.216.0.0/15"}}],
                "ports": [{"port": 443, "protocol": "TCP"}],
            }
        ],
    }
    allow_s3 = [*deny, s3_egress]
    assert allowed(allow_s3, a, S3, 443) and not allowed(allow_s3, a, ELSEWHERE, 443)
    assert not allowed(allow_s3, a, S3, 443, "UDP")


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

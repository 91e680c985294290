"""NetworkPolicies: deny everything in the namespace, then allow exactly what Airflow needs."""

from __future__ import annotations

from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from .config import AirflowConfig
from .metrics import METRICS_PORT, STATSD_PORT
from .naming import (
    AIRFLOW_PROCESS_LABEL,
    API_SERVER_PORT,
    FLOWER_PORT,
    PGBOUNCER_PORT,
    POSTGRES_PORT,
    REDIS_PORT,
    WORKER_LOG_SERVER_PORT,
    Naming,
)
from .rbac import pod_launchers
from .workloads import TRIGGERER_LOG_SERVER_PORT

KUBERNETES_API_PORTS = (443, 6443)


def dag_readers(config: AirflowConfig) -> set[str]:
    readers = {"scheduler", "dag-processor", "triggerer"}
    if config.celery is not None:
        readers.add("worker")
    if config.kubernetes_executor is not None:
        readers.add("task-pod")
    return readers


def _tcp(*ports: int) -> list[NetworkPolicyPortArgsDict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _airflow_pods(naming: Naming) -> NetworkPolicyPeerArgsDict:
    return {
        "pod_selector": {
            "match_labels": {
                "app.kubernetes.io/instance": naming.release,
                AIRFLOW_PROCESS_LABEL: "true",
            }
        }
    }


def _component(naming: Naming, component: str) -> NetworkPolicyPeerArgsDict:
    return {"pod_selector": {"match_labels": naming.labels(component)}}


def _namespace(name: str) -> NetworkPolicyPeerArgsDict:
    return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": name}}}


def _cidrs(cidrs: list[str]) -> list[NetworkPolicyPeerArgsDict]:
    return [{"ip_block": {"cidr": cidr}} for cidr in cidrs]


def network_policy_specs(
    config: AirflowConfig, naming: Naming
) -> dict[str, NetworkPolicySpecArgsDict]:
    """Policy name suffix -> spec. Policies are additive: each one opens one path."""
    policies = config.network_policies
    airflow = _airflow_pods(naming)
    specs: dict[str, NetworkPolicySpecArgsDict] = {
        "default-deny": {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
        "dns": {
            "pod_selector": {},
            "policy_types": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespace_selector": {
                                "match_labels": {"kubernetes.io/metadata.name": "kube-system"}
                            },
                            "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [
                        {"protocol": "UDP", "port": 53},
                        {"protocol": "TCP", "port": 53},
                    ],
                }
            ],
        },
        "api-server": {
            "pod_selector": _component(naming, "api-server")["pod_selector"],
            "policy_types": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        airflow,
                        _namespace(policies.ingress_controller_namespace),
                    ],
                    "ports": _tcp(API_SERVER_PORT),
                }
            ],
        },
        # The api-server fetches task logs from the pod that ran the task.
        "task-logs": {
            "pod_selector": airflow["pod_selector"],
            "policy_types": ["Ingress"],
            "ingress": [
                {
                    "from": [_component(naming, "api-server")],
                    "ports": _tcp(WORKER_LOG_SERVER_PORT, TRIGGERER_LOG_SERVER_PORT),
                }
            ],
        },
    }
    egress_to = [
        {"to": [_component(naming, "api-server")], "ports": _tcp(API_SERVER_PORT)},
        {"to": [airflow], "ports": _tcp(WORKER_LOG_SERVER_PORT, TRIGGERER_LOG_SERVER_PORT)},
    ]
    if config.database.mode == "in-cluster":
        specs["postgres"] = {
            "pod_selector": _component(naming, "postgres")["pod_selector"],
            "policy_types": ["Ingress"],
            "ingress": [{"from": [airflow], "ports": _tcp(POSTGRES_PORT)}],
        }
        egress_to.append({"to": [_component(naming, "postgres")], "ports": _tcp(POSTGRES_PORT)})
    else:
        assert config.database.external is not None
        # The external server's address is not known here: open its port only.
        egress_to.append({"ports": _tcp(config.database.external.port)})
    if config.celery is not None:
        specs["redis"] = {
            "pod_selector": _component(naming, "redis")["pod_selector"],
            "policy_types": ["Ingress"],
            "ingress": [{"from": [airflow], "ports": _tcp(REDIS_PORT)}],
        }
        egress_to.append({"to": [_component(naming, "redis")], "ports": _tcp(REDIS_PORT)})
        if config.celery.flower.enabled:
            specs["flower"] = {
                "pod_selector": _component(naming, "flower")["pod_selector"],
                "policy_types": ["Ingress"],
                "ingress": [
                    {
                        "from": [_namespace(policies.ingress_controller_namespace)],
                        "ports": _tcp(FLOWER_PORT),
                    }
                ],
            }
    if config.dags.delivery == "git-sync":
        assert config.dags.git_sync is not None
        # Only the pods that run git-sync, and only the repository's protocol port.
        https = config.dags.git_sync.repo.startswith("https://")
        specs["git-sync-egress"] = {
            "pod_selector": {
                "match_labels": {"app.kubernetes.io/instance": naming.release},
                "match_expressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": sorted(dag_readers(config)),
                    }
                ],
            },
            "policy_types": ["Egress"],
            "egress": [
                {"to": _cidrs(policies.dag_source_cidrs), "ports": _tcp(443 if https else 22)}
            ],
        }
    for rule in policies.extra_egress:
        egress_to.append(
            {
                "to": _cidrs(rule.cidrs),
                "ports": [{"protocol": p.protocol, "port": p.port} for p in rule.ports],
            }
        )
    specs["airflow-egress"] = {
        "pod_selector": airflow["pod_selector"],
        "policy_types": ["Egress"],
        "egress": egress_to,  # type: ignore[typeddict-item]
    }
    if config.metrics.enabled:
        specs["statsd"] = {
            "pod_selector": _component(naming, "statsd")["pod_selector"],
            "policy_types": ["Ingress"],
            "ingress": [
                {"from": [airflow], "ports": [{"protocol": "UDP", "port": STATSD_PORT}]},
                {
                    "from": [_namespace(config.metrics.prometheus_namespace)],
                    "ports": _tcp(METRICS_PORT),
                },
            ],
        }
        egress_to.append(
            {
                "to": [_component(naming, "statsd")],
                "ports": [{"protocol": "UDP", "port": STATSD_PORT}],
            }
        )
    if config.pgbouncer.enabled:
        specs["pgbouncer"] = {
            "pod_selector": _component(naming, "pgbouncer")["pod_selector"],
            "policy_types": ["Ingress", "Egress"],
            "ingress": [{"from": [airflow], "ports": _tcp(PGBOUNCER_PORT)}],
            "egress": [{"to": [_component(naming, "postgres")], "ports": _tcp(POSTGRES_PORT)}],
        }
        egress_to.append({"to": [_component(naming, "pgbouncer")], "ports": _tcp(PGBOUNCER_PORT)})
    database_clients = [airflow]
    if config.pgbouncer.enabled:
        database_clients.append(_component(naming, "pgbouncer"))
    if config.backups.enabled:
        database_clients.append(_component(naming, "backup"))
        specs["backup"] = {
            "pod_selector": _component(naming, "backup")["pod_selector"],
            "policy_types": ["Egress"],
            "egress": [{"to": [_component(naming, "postgres")], "ports": _tcp(POSTGRES_PORT)}],
        }
    if "postgres" in specs:
        specs["postgres"]["ingress"] = [{"from": database_clients, "ports": _tcp(POSTGRES_PORT)}]
    launchers = pod_launchers(config)
    if launchers:
        specs["kubernetes-api"] = {
            "pod_selector": {
                "match_labels": {"app.kubernetes.io/instance": naming.release},
                "match_expressions": [
                    {
                        "key": "app.kubernetes.io/component",
                        "operator": "In",
                        "values": list(launchers),
                    }
                ],
            },
            "policy_types": ["Egress"],
            "egress": [
                {
                    "to": _cidrs(policies.kubernetes_api_cidrs),
                    "ports": _tcp(*KUBERNETES_API_PORTS),
                }
            ],
        }
    return specs

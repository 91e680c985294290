"""Availability for processes with several replicas: disruption budgets and node spreading."""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import TopologySpreadConstraintArgsDict
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgsDict

from .config import AirflowConfig
from .naming import Naming

# Losing all of these at once stops scheduling or the UI/Execution API.
GUARDED_COMPONENTS = ("api-server", "scheduler", "worker")


def disruption_budget_spec(naming: Naming, component: str) -> PodDisruptionBudgetSpecArgsDict:
    # maxUnavailable (not minAvailable) so a drain still makes progress one pod at a time.
    return {"max_unavailable": 1, "selector": {"match_labels": naming.labels(component)}}


def topology_spread(naming: Naming, component: str) -> list[TopologySpreadConstraintArgsDict]:
    return [
        {
            "max_skew": 1,
            "topology_key": "kubernetes.io/hostname",
            # Prefer spreading; a one-node cluster must still schedule every replica.
            "when_unsatisfiable": "ScheduleAnyway",
            "label_selector": {"match_labels": naming.labels(component)},
        }
    ]


def replicas_of(config: AirflowConfig, component: str) -> int:
    if component == "worker":
        return config.celery.workers.replicas if config.celery else 0
    process = {"api-server": config.api_server, "scheduler": config.scheduler}[component]
    return process.replicas


def budgeted_components(config: AirflowConfig) -> list[str]:
    if not config.availability.pod_disruption_budgets:
        return []
    return [c for c in GUARDED_COMPONENTS if replicas_of(config, c) > 1]

"""Availability for processes with several replicas: disruption budgets and node spreading."""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import TopologySpreadConstraintArgsDict
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgsDict

from .autoscaling import effective_min_replicas
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


def budgeted_components(config: AirflowConfig) -> list[str]:
    """A budget only where the fewest replicas (autoscaled or not) is above one: a budget on a
    single pod would block node drains."""
    if not config.availability.pod_disruption_budgets:
        return []
    return [c for c in GUARDED_COMPONENTS if effective_min_replicas(config, c) > 1]

"""Availability for processes with several replicas: disruption budgets and node spreading.

Which components get a budget follows from their `Needs` (`needs.budgeted`)."""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import TopologySpreadConstraintArgsDict
from pulumi_kubernetes.policy.v1 import PodDisruptionBudgetSpecArgsDict

from .naming import Naming


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

"""The thin wiring: each part of a deployment is a child ComponentResource of `AirflowCluster`.

Parts are created in data-flow order and state their dependencies on whole parts
(`depends_on=[secrets, storage, migrations]`): Pulumi expands a part to every resource inside
it, so a resource added to a part later is covered without touching any list. Manifests come from
the pure builders one level up; nothing here decides what a manifest contains.
"""

from .base import Context, Part
from .database import Broker, Database
from .identity import Identity
from .migrations import Migrations
from .network import NetworkPolicies
from .observability import Metrics
from .operations import Operations
from .processes import AirflowProcess, KubernetesExecutor
from .secrets import Secrets
from .self_check import SelfCheck
from .storage import Storage

__all__ = [
    "AirflowProcess",
    "Broker",
    "Context",
    "Database",
    "Identity",
    "KubernetesExecutor",
    "Metrics",
    "Migrations",
    "NetworkPolicies",
    "Operations",
    "Part",
    "Secrets",
    "SelfCheck",
    "Storage",
]

"""Data safety: no config change outside the database's own settings touches an immutable field
of the Postgres StatefulSet (which Kubernetes would refuse, or Pulumi would replace)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.rendering import cluster_config, render_stack

IMMUTABLE = ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy")


def immutable_fields(cluster: dict[str, Any]) -> dict[str, Any]:
    statefulset = render_stack("staging", cluster=cluster).one("StatefulSet", "airflow-postgres")
    spec = statefulset.inputs["spec"]
    assert statefulset.options["protect"] and statefulset.options["retain_on_delete"]
    return {field: spec.get(field) for field in IMMUTABLE}


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(cluster: dict[str, Any]) -> None:
        node = cluster
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return change


CHANGES = {
    "image tag": _set("image.tag", "3.3.3"),
    "image digest": _set("image.digest", "sha256:" + "0" * 64),
    "executors": _set("executors", "CeleryExecutor,KubernetesExecutor"),
    "scheduler replicas": _set("scheduler.replicas", 3),
    "api-server resources": _set(
        "apiServer.resources",
        {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    ),
    "auth manager": _set("auth.manager", "simple"),
    "ingress host": _set("ingress.host", "airflow.other.example.com"),
    "network policies off": _set("networkPolicies.enabled", False),
    "namespace labels": _set("namespace.labels", {"cost-center": "42"}),
    "dag delivery": _set("dags", {"delivery": "image"}),
    "metrics off": _set("metrics.enabled", False),
    "pgbouncer on": _set("pgbouncer.enabled", True),
    "backups off": _set("backups.enabled", False),
    "postgres resources": _set(
        "database.inCluster.resources",
        {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
    ),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_config_changes_leave_postgres_immutable_fields_alone(change: str) -> None:
    baseline = immutable_fields(cluster_config("staging"))
    assert baseline["volumeClaimTemplates"], "staging keeps its data on a claim"
    changed = copy.deepcopy(cluster_config("staging"))
    CHANGES[change](changed)
    assert immutable_fields(changed) == baseline


def test_the_check_notices_a_database_storage_change() -> None:
    """Control: the database's own storage settings do reach the immutable claim template."""
    changed = cluster_config("staging")
    changed["database"]["inCluster"]["storage"]["size"] = "50Gi"
    assert immutable_fields(changed) != immutable_fields(cluster_config("staging"))

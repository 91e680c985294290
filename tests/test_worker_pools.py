"""Celery worker pools (`celery.workerPools`). The rules a platform team relies on:
- every configured queue is consumed by exactly one worker Deployment, as `airflow celery worker`
  reads its arguments; tasks that name no queue (`[operators] default_queue`) always have one;
- a pool's resources, replicas, placement and grace period are its own: nothing leaks to another
  pool's pods, and the top level still applies where the pool sets nothing;
- what derives from a process follows for each pool: the api-server may fetch its task logs, it
  reaches the broker and the Execution API, its disruption budget, its ScaledObject, and it runs
  as the same ServiceAccount as the default pool (one identity for task code);
- a pool that would make any of this ambiguous (a queue in two pools, a name that collides or
  does not fit in object names) is refused before anything is registered, naming the key.
The KEDA queries themselves run against PostgreSQL in `tests/e2e/test_worker_pools.py`.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

import pulumi
import pytest

from airflow_component import AirflowCluster, AirflowClusterArgs
from airflow_component.component import MAX_RELEASE_NAME
from airflow_component.config import parse_config
from tests.support.rendering import (
    CapturingMocks,
    Rendering,
    cluster_config,
    render_stack,
    run_under_mocks,
)
from tests.test_network_and_availability import allowed, pods, policies_of

GPU = {
    "name": "gpu",
    "queues": ["gpu", "gpu-large"],
    "replicas": 3,
    "concurrency": 4,
    "terminationGracePeriodSeconds": 1800,
    "resources": {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "4", "memory": "8Gi"},
    },
    "nodeSelector": {"pool": "gpu"},
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
}
REPORTS = {"name": "reports", "queues": ["reports"], "replicas": 1, "concurrency": 2}


def prod_with(**celery: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(cluster_config("prod"))
    cluster["celery"] = {**cluster.get("celery", {}), **celery}
    return cluster


def worker_deployments(rendering: Rendering) -> dict[str, dict[str, Any]]:
    """Deployments whose main container runs `airflow celery worker`, by name."""
    found = {}
    for deployment in rendering.of_kind("Deployment"):
        spec = deployment.inputs["spec"]["template"]["spec"]
        args = spec["containers"][0].get("args") or []
        if args[:2] == ["celery", "worker"]:
            found[str(deployment.object_name)] = deployment.inputs["spec"]
    return found


def consumed_queues(args: list[str]) -> list[str]:
    """What `airflow celery worker` consumes: `--queues` split on commas, else the default."""
    if "--queues" not in args:
        return ["default"]
    return args[args.index("--queues") + 1].split(",")


@pytest.fixture(scope="module")
def pools() -> Rendering:
    return render_stack("prod", cluster=prod_with(workerPools=[GPU, REPORTS]))


def test_every_queue_is_consumed_by_exactly_one_worker_deployment(pools: Rendering) -> None:
    workers = worker_deployments(pools)
    assert set(workers) == {"airflow-worker", "airflow-worker-gpu", "airflow-worker-reports"}
    consumed = Counter(
        queue
        for spec in workers.values()
        for queue in consumed_queues(spec["template"]["spec"]["containers"][0]["args"])
    )
    assert consumed == Counter({"default": 1, "gpu": 1, "gpu-large": 1, "reports": 1})


def test_a_pool_has_its_own_settings_and_leaks_none(pools: Rendering) -> None:
    workers = worker_deployments(pools)
    gpu = workers["airflow-worker-gpu"]
    pod = gpu["template"]["spec"]
    container = pod["containers"][0]
    assert gpu["replicas"] == 3
    assert container["args"][container["args"].index("--concurrency") + 1] == "4"
    assert container["resources"] == GPU["resources"]
    assert pod["terminationGracePeriodSeconds"] == 1800
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == GPU["tolerations"]
    # Every pool's main container is "worker": `kubectl logs -c worker` works on each.
    assert {spec["template"]["spec"]["containers"][0]["name"] for spec in workers.values()} == {
        "worker"
    }
    for name in ("airflow-worker", "airflow-worker-reports"):
        other = workers[name]["template"]["spec"]
        assert other.get("nodeSelector") != {"pool": "gpu"}, name
        assert other["containers"][0]["resources"] != GPU["resources"], name
    # The pods of one pool are told apart from the others' (selectors do not overlap).
    selectors = [spec["selector"]["matchLabels"] for spec in workers.values()]
    for spec in workers.values():
        labels = spec["template"]["metadata"]["labels"]
        assert sum(all(labels.get(k) == v for k, v in s.items()) for s in selectors) == 1


def test_what_derives_from_a_worker_follows_for_every_pool(pools: Rendering) -> None:
    policies, by = policies_of(pools), pods(pools)
    for component in ("worker", "worker-gpu", "worker-reports"):
        worker = by[component]
        assert allowed(policies, by["api-server"], worker, 8793), f"task logs of {component}"
        assert allowed(policies, worker, by["api-server"], 8080), f"{component}: Execution API"
        assert allowed(policies, worker, by["redis"], 6379), f"{component}: broker"
    # One identity for task code: the pools run as the default pool's ServiceAccount.
    accounts = {
        name: spec["template"]["spec"]["serviceAccountName"]
        for name, spec in worker_deployments(pools).items()
    }
    assert set(accounts.values()) == {"airflow-worker"}, accounts
    assert "airflow-worker-gpu" not in {a.object_name for a in pools.of_kind("ServiceAccount")}
    # Three gpu replicas are guarded against losing them all in a drain; one reports pod is not.
    budgets = {b.object_name for b in pools.of_kind("PodDisruptionBudget")}
    assert "airflow-worker-gpu" in budgets and "airflow-worker-reports" not in budgets


def test_each_autoscaled_pool_gets_a_scaled_object_for_its_own_deployment() -> None:
    cluster = prod_with(
        workerPools=[{**GPU, "autoscaling": {"enabled": True, "maxReplicas": 4}}, REPORTS]
    )
    rendering = render_stack("prod", cluster=cluster)
    scaled = [r for r in rendering.resources if r.typ.endswith("ScaledObject")]
    assert [s.inputs["spec"]["scaleTargetRef"]["name"] for s in scaled] == ["airflow-worker-gpu"]
    deployments = {d.object_name: d.inputs["spec"] for d in rendering.of_kind("Deployment")}
    # The autoscaler owns the count; a pool without one keeps its replicas.
    assert "replicas" not in deployments["airflow-worker-gpu"]
    assert deployments["airflow-worker-reports"]["replicas"] == 1
    # It names the authentication that is rendered (KEDA reads the database with it).
    (authentication,) = [r for r in rendering.resources if r.typ.endswith("TriggerAuthentication")]
    trigger = scaled[0].inputs["spec"]["triggers"][0]
    assert trigger["authenticationRef"]["name"] == authentication.inputs["metadata"]["name"]


def test_a_pool_name_fits_every_derived_object_name_or_is_refused_naming_it() -> None:
    """Kubernetes caps object names at 63 characters: a pool name that fits with the longest
    release name renders only valid names; one character more is refused, with the key."""
    release = "a" * MAX_RELEASE_NAME
    room = 63 - len(f"{release}-worker-") - len("-ingress")

    def program(pool_name: str) -> Any:
        pool = {"name": pool_name, "queues": ["q"], "autoscaling": {"enabled": True}}
        config = parse_config(prod_with(workerPools=[pool]))
        return lambda: AirflowCluster(release, AirflowClusterArgs(config=config))

    fitting = "p" * room
    rendering = run_under_mocks(program(fitting), stack="prod")
    names = [str(r.object_name) for r in rendering.kubernetes if r.object_name]
    assert any(fitting in name for name in names)
    for name in names:
        assert len(name) <= 63 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name), name
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=rf"workerPools\[0\]\.name: .*at most {room}"):
        run_under_mocks(program(fitting + "p"), stack="prod", mocks=mocks)
    assert mocks.resources == []


@pytest.mark.parametrize(
    ("celery", "named"),
    [
        (
            {"workerPools": [{"name": "gpu", "queues": ["default"]}]},
            r"celery\.workerPools\[0\]\.queues: 'default' is already consumed by "
            r"celery\.workers\.queues",
        ),
        (
            {"workerPools": [{"name": "a", "queues": ["x"]}, {"name": "b", "queues": ["x"]}]},
            r"celery\.workerPools\[1\]\.queues: 'x' is already consumed by "
            r"celery\.workerPools\[0\]\.queues",
        ),
        (
            {"workerPools": [{"name": "a", "queues": ["x"]}, {"name": "a", "queues": ["y"]}]},
            r"celery\.workerPools\[1\]\.name: 'a' is used twice",
        ),
        (
            {"workerPools": [{"name": "default", "queues": ["x"]}]},
            r"celery\.workerPools\[0\]\.name: 'default' is the default pool's name",
        ),
        ({"workerPools": [{"name": "g" * 21, "queues": ["x"]}]}, r"name.*at most 20"),
        ({"workerPools": [{"name": "Gpu", "queues": ["x"]}]}, r"name"),
        ({"workerPools": [{"name": "gpu", "queues": []}]}, r"queues"),
        ({"workerPools": [{"name": "gpu", "queues": ["a,b"]}]}, r"queues.*Celery queue name"),
        ({"workerPools": [{"name": "gpu", "queues": ["x'); DROP"]}]}, r"Celery queue name"),
        ({"workerPools": [{"name": "gpu", "queues": ["gpu\n"]}]}, r"Celery queue name"),
        ({"workers": {"queues": ["a", "a"]}}, r"queues \['a'\] listed more than once"),
        (
            {"workers": {"queues": ["main"]}},
            r"celery\.workers\.queues: no worker pool consumes 'default'",
        ),
        (
            {
                "workerPools": [
                    {
                        "name": "gpu",
                        "queues": ["gpu"],
                        "concurrency": 32,
                        "resources": {
                            "requests": {"cpu": "1", "memory": "1Gi"},
                            "limits": {"cpu": "1", "memory": "1Gi"},
                        },
                    }
                ]
            },
            r"celery\.workerPools\[0\]\.resources\.limits\.memory 1Gi cannot hold",
        ),
    ],
)
def test_a_pool_that_would_be_ambiguous_is_refused_before_anything_is_registered(
    celery: dict[str, Any], named: str
) -> None:
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=named):
        run_under_mocks(
            lambda: AirflowCluster(
                "airflow",
                AirflowClusterArgs(
                    config=parse_config({"executors": "CeleryExecutor", "celery": celery})
                ),
            ),
            mocks=mocks,
        )
    assert mocks.resources == []


def test_the_default_queue_may_move_to_a_pool_with_the_option_that_names_it() -> None:
    config = parse_config(
        {
            "executors": "CeleryExecutor",
            "airflowConfig": {"operators": {"default_queue": "main"}},
            "celery": {"workers": {"queues": ["main"]}},
        }
    )
    assert config.celery is not None and config.celery.workers.queues == ["main"]

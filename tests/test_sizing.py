"""Memory limits hold the work a process runs (measured on Airflow 3.3.2: ~54 MiB PSS per
running task, supervisor and task process together; the process itself ~384 MiB).

On cgroup v2 Kubernetes kills the whole container when it exceeds its limit, so a scheduler
running LocalExecutor tasks must hold `parallelism` of them, a Celery worker `concurrency`.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pulumi
import pytest

from airflow_component.config import parse_config, quantity_value
from tests.support.rendering import cluster_config, render_stack

TASK_MIB = 54
PROCESS_MIB = 384
# Measured by the real-Airflow suite under a kernel-enforced limit (test_a_full_executor_fits_
# its_memory_limits, prod): a Celery worker running 16 tasks at once peaked at 1625 MiB; with a
# 1300 MiB limit it was OOM-killed. Each Celery slot is a prefork pool process as well.
CELERY_PEAK_16_MIB = 1625
CELERY_SLOT_MIB = (CELERY_PEAK_16_MIB - PROCESS_MIB) / 16


def limit_mib(rendering: Any, deployment: str) -> int:
    spec = rendering.one("Deployment", deployment).inputs["spec"]["template"]["spec"]
    memory = spec["containers"][0]["resources"]["limits"]["memory"]
    return int(quantity_value(memory) / Decimal(2**20))


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_task_runner_holds_its_task_slots(stack: str) -> None:
    cluster = cluster_config(stack)
    rendering = render_stack(stack)
    executors = str(cluster.get("executors", "LocalExecutor"))
    if "LocalExecutor" in executors:
        slots = int(cluster.get("parallelism", 32))
        assert limit_mib(rendering, "airflow-scheduler") >= PROCESS_MIB + slots * TASK_MIB
    if "CeleryExecutor" in executors:
        slots = int(((cluster.get("celery") or {}).get("workers") or {}).get("concurrency", 16))
        assert limit_mib(rendering, "airflow-worker") >= PROCESS_MIB + slots * CELERY_SLOT_MIB


def test_the_default_follows_parallelism() -> None:
    """Doubling the task slots grows the limit by at least their measured memory."""
    small, large = copy.deepcopy(cluster_config("local")), copy.deepcopy(cluster_config("local"))
    small["parallelism"], large["parallelism"] = 8, 40
    grown = limit_mib(render_stack("local", cluster=large), "airflow-scheduler")
    assert grown - limit_mib(render_stack("local", cluster=small), "airflow-scheduler") >= 32 * 54


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (
            {
                "parallelism": 32,
                "scheduler": {
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1536Mi"},
                    }
                },
            },
            "scheduler.resources.limits.memory",
        ),
        (
            {
                "executors": "CeleryExecutor",
                "celery": {
                    "workers": {
                        "concurrency": 32,
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "512Mi"},
                            "limits": {"cpu": "1", "memory": "1Gi"},
                        },
                    }
                },
            },
            "celery.workers.resources.limits.memory",
        ),
        (
            # Accepted by a 54 MiB-per-slot rule, OOM-killed under a full load in the
            # real-Airflow suite.
            {
                "executors": "CeleryExecutor",
                "celery": {
                    "workers": {
                        "concurrency": 16,
                        "resources": {
                            "requests": {"cpu": "500m", "memory": "1Gi"},
                            "limits": {"cpu": "2", "memory": "1300Mi"},
                        },
                    }
                },
            },
            "celery.workers.resources.limits.memory",
        ),
    ],
)
def test_a_hand_set_limit_that_cannot_hold_the_tasks_is_refused(
    overrides: dict[str, Any], key: str
) -> None:
    with pytest.raises(pulumi.RunError, match=key):
        parse_config({"environment": "local", **overrides})


def test_a_hand_set_limit_that_holds_them_is_kept() -> None:
    config = parse_config(
        {
            "parallelism": 4,
            "scheduler": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "512Mi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            },
        }
    )
    assert config.scheduler.resources is not None


# Measured by the real-Airflow suite under the same light load (tests/e2e: the `pools` stack
# runs 3 uvicorn workers, the `bundles` stack 1): 890 MiB against 267 MiB.
API_PEAK_1_MIB, API_PEAK_3_MIB = 267, 890
API_WORKER_MIB = (API_PEAK_3_MIB - API_PEAK_1_MIB) / 2


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_the_api_server_limit_holds_its_uvicorn_workers(workers: int) -> None:
    """Each uvicorn worker is a process with the apps loaded: the default limit holds the
    measured first worker and every further one; a hand-set limit that cannot is refused."""
    cluster = copy.deepcopy(cluster_config("local"))
    cluster["apiServer"] = {**cluster.get("apiServer", {}), "workers": workers}
    limit = limit_mib(render_stack("local", cluster=cluster), "airflow-api-server")
    assert limit >= API_PEAK_1_MIB + (workers - 1) * API_WORKER_MIB, limit
    small = {
        "requests": {"cpu": "100m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": f"{int(API_PEAK_1_MIB + (workers - 1) * 250)}Mi"},
    }
    if workers > 1:
        with pytest.raises(pulumi.RunError, match=r"apiServer\.resources\.limits\.memory"):
            parse_config({"apiServer": {"workers": workers, "resources": small}})

"""Memory that follows the work a process runs, measured on Airflow 3.3.2.

A task slot of a LocalExecutor scheduler is a supervisor plus a task process (~54 MiB PSS
together). A slot of a Celery worker is also a prefork pool process, which holds the worker's
imports: the real-Airflow suite ran a worker's `concurrency` of 16 tasks at once under a kernel-
enforced limit and measured a cgroup peak of 1625 MiB (~78 MiB a slot above the 384 MiB floor);
a 1300 MiB limit, which a 54 MiB-per-slot rule accepted, was OOM-killed there. Kubernetes
(>= 1.28 on cgroup v2) kills the whole container on OOM (`memory.oom.group`): one task over the
limit takes the process and every running task with it. So limits are derived from the task
slots, and a limit set by hand that cannot hold them is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .types import ComputeResources, Resources, quantity_value

MIB = Decimal(2**20)
# The process itself without tasks (scheduler loop / Celery main process).
PROCESS_FLOOR_MIB = 384


@dataclass(frozen=True)
class SlotCost:
    """What one task slot costs (measured) and what a derived limit adds per slot (the
    measurement plus headroom for task code)."""

    measured_mib: int
    limit_mib: int


LOCAL_SLOT = SlotCost(measured_mib=54, limit_mib=64)
CELERY_SLOT = SlotCost(measured_mib=96, limit_mib=112)
# Each uvicorn worker of the api-server beyond the first is a whole process with the FastAPI
# apps loaded: the real-Airflow suite measured a peak of 890 MiB with 3 workers against 267
# MiB with one under the same light load (~310 MiB a worker).
API_WORKER = SlotCost(measured_mib=310, limit_mib=384)


def memory_mib(quantity: str) -> int:
    return int(quantity_value(quantity) / MIB)


def minimum_limit_mib(task_slots: int, cost: SlotCost) -> int:
    """The least memory limit that holds the process and all its task slots."""
    return PROCESS_FLOOR_MIB + task_slots * cost.measured_mib


def with_task_slots(resources: Resources, task_slots: int, cost: SlotCost) -> Resources:
    """An environment default grown by the task slots' memory (limit only: requests stay what
    the environment schedules for)."""
    if task_slots == 0:
        return resources
    limit = max(
        memory_mib(resources.limits.memory) + task_slots * cost.limit_mib,
        minimum_limit_mib(task_slots, cost),
    )
    limits = ComputeResources(cpu=resources.limits.cpu, memory=f"{limit}Mi")
    return Resources(requests=resources.requests, limits=limits)


def too_small(resources: Resources, task_slots: int, cost: SlotCost) -> int | None:
    """The minimum in MiB when a hand-set limit cannot hold the task slots, else None."""
    if task_slots == 0:
        return None
    needed = minimum_limit_mib(task_slots, cost)
    return needed if memory_mib(resources.limits.memory) < needed else None

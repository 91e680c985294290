"""Memory that follows the work a process runs, from measurements on Airflow 3.3.2.

Each running task costs a supervisor plus a task process: ~54 MiB PSS together. A scheduler
running LocalExecutor tasks holds `parallelism` of them; a Celery worker `concurrency`. Kubernetes
(>= 1.28 on cgroup v2) kills the whole container on OOM (`memory.oom.group`): one task over the
limit takes the process and every running task with it. So limits are derived from the task
slots, and a limit set by hand that cannot hold them is refused.
"""

from __future__ import annotations

from decimal import Decimal

from .types import ComputeResources, Resources, quantity_value

MIB = Decimal(2**20)
# PSS of one running task (supervisor + task process), measured on Airflow 3.3.2.
TASK_MEMORY_MIB = 54
# What a derived limit adds per task slot: the measurement plus headroom for task code.
TASK_LIMIT_MIB = 64
# The process itself without tasks (scheduler loop / Celery main process and pool).
PROCESS_FLOOR_MIB = 384


def memory_mib(quantity: str) -> int:
    return int(quantity_value(quantity) / MIB)


def minimum_limit_mib(task_slots: int) -> int:
    """The least memory limit that holds the process and all its task slots."""
    return PROCESS_FLOOR_MIB + task_slots * TASK_MEMORY_MIB


def with_task_slots(resources: Resources, task_slots: int) -> Resources:
    """An environment default grown by the task slots' memory (limit only: requests stay what
    the environment schedules for)."""
    if task_slots == 0:
        return resources
    limit = max(
        memory_mib(resources.limits.memory) + task_slots * TASK_LIMIT_MIB,
        minimum_limit_mib(task_slots),
    )
    limits = ComputeResources(cpu=resources.limits.cpu, memory=f"{limit}Mi")
    return Resources(requests=resources.requests, limits=limits)


def too_small(resources: Resources, task_slots: int) -> int | None:
    """The minimum in MiB when a hand-set limit cannot hold the task slots, else None."""
    if task_slots == 0:
        return None
    needed = minimum_limit_mib(task_slots)
    return needed if memory_mib(resources.limits.memory) < needed else None

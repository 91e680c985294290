"""Environment defaults: what an unset resource or feature flag becomes in local/staging/prod."""

from __future__ import annotations

from .types import (
    ComputeResources,
    Environment,
    Resources,
)


def _resources(cpu_req: str, mem_req: str, cpu_lim: str, mem_lim: str) -> Resources:
    return Resources(
        requests=ComputeResources(cpu=cpu_req, memory=mem_req),
        limits=ComputeResources(cpu=cpu_lim, memory=mem_lim),
    )


# Per-environment defaults: small enough for a laptop kind cluster locally, headroom in prod.
DEFAULT_RESOURCES: dict[Environment, dict[str, Resources]] = {
    "local": {
        "apiServer": _resources("100m", "768Mi", "1", "1536Mi"),
        "scheduler": _resources("100m", "512Mi", "1", "1536Mi"),
        "dagProcessor": _resources("50m", "384Mi", "500m", "1Gi"),
        "triggerer": _resources("50m", "384Mi", "500m", "1Gi"),
        "job": _resources("50m", "384Mi", "1", "1Gi"),
        "postgres": _resources("50m", "128Mi", "500m", "512Mi"),
        "worker": _resources("100m", "512Mi", "1", "1536Mi"),
        "redis": _resources("25m", "32Mi", "250m", "128Mi"),
        "flower": _resources("25m", "256Mi", "250m", "512Mi"),
        "gitSync": _resources("10m", "32Mi", "200m", "128Mi"),
    },
    "staging": {
        "apiServer": _resources("250m", "1Gi", "1", "2Gi"),
        "scheduler": _resources("250m", "1Gi", "2", "2Gi"),
        "dagProcessor": _resources("100m", "512Mi", "1", "1536Mi"),
        "triggerer": _resources("100m", "512Mi", "1", "1Gi"),
        "job": _resources("100m", "512Mi", "1", "1Gi"),
        "postgres": _resources("250m", "512Mi", "1", "1Gi"),
        "worker": _resources("250m", "1Gi", "2", "2Gi"),
        "redis": _resources("50m", "64Mi", "500m", "256Mi"),
        "flower": _resources("50m", "256Mi", "500m", "512Mi"),
        "gitSync": _resources("25m", "64Mi", "250m", "256Mi"),
    },
    "prod": {
        "apiServer": _resources("500m", "1536Mi", "2", "3Gi"),
        "scheduler": _resources("1", "2Gi", "2", "4Gi"),
        "dagProcessor": _resources("250m", "1Gi", "1", "2Gi"),
        "triggerer": _resources("250m", "768Mi", "1", "1536Mi"),
        "job": _resources("100m", "512Mi", "1", "1Gi"),
        "postgres": _resources("500m", "1Gi", "2", "4Gi"),
        "worker": _resources("500m", "2Gi", "2", "4Gi"),
        "redis": _resources("100m", "128Mi", "1", "512Mi"),
        "flower": _resources("100m", "256Mi", "500m", "768Mi"),
        "gitSync": _resources("50m", "64Mi", "500m", "256Mi"),
    },
}

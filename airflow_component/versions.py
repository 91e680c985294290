"""Pinned versions: the single source for every image tag and the Airflow release we target."""

from typing import Final

AIRFLOW_VERSION: Final = "3.3.2"
AIRFLOW_IMAGE_REPOSITORY: Final = "apache/airflow"

# The official `postgres` image (not Bitnami, whose images were withdrawn); pinned to a major line.
POSTGRES_IMAGE: Final = "postgres:17.6"
# The official `redis` image.
REDIS_IMAGE: Final = "redis:7.4.7"
GIT_SYNC_IMAGE: Final = "registry.k8s.io/git-sync/git-sync:v4.4.2"
STATSD_EXPORTER_IMAGE: Final = "prom/statsd-exporter:v0.28.0"
# CloudNativePG's PgBouncer image: maintained, non-root, plain pgbouncer binary.
PGBOUNCER_IMAGE: Final = "ghcr.io/cloudnative-pg/pgbouncer:1.24.1"

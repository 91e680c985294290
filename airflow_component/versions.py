"""Pinned versions: the single source for every image tag and the Airflow release we target."""

from typing import Final

AIRFLOW_VERSION: Final = "3.3.2"
AIRFLOW_IMAGE_REPOSITORY: Final = "apache/airflow"

# The official `postgres` image (not Bitnami, whose images were withdrawn); pinned to a major line.
POSTGRES_IMAGE: Final = "postgres:17.6"

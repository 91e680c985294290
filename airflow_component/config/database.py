"""The metadata database: in-cluster Postgres or external, PgBouncer, backups, migrations."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from ..versions import PGBOUNCER_IMAGE, POSTGRES_IMAGE
from .types import (
    AirflowVersionTag,
    Cron,
    DnsLabel,
    DnsSubdomain,
    Hostname,
    NonEmpty,
    Resources,
    SecretKeyRef,
    StorageSize,
    StrictModel,
)


class PostgresStorage(StrictModel):
    """The Postgres data volume."""

    size: StorageSize = Field(
        default="8Gi",
        description=(
            "PersistentVolumeClaim size. Raising it later grows the live claim in place (its "
            "StorageClass must allow volume expansion); a claim never shrinks."
        ),
    )
    storage_class_name: DnsSubdomain | None = Field(
        default=None,
        description=(
            "StorageClass; the cluster default when unset. Applies when the claim is created: "
            "an existing claim keeps its class."
        ),
    )
    ephemeral: bool = Field(
        default=False,
        description="Use an emptyDir instead of a claim (local only: data dies with the pod).",
    )


class InClusterPostgres(StrictModel):
    """Postgres run by this component as a StatefulSet on the official `postgres` image."""

    image: NonEmpty = Field(default=POSTGRES_IMAGE, description="Postgres image (official).")
    database: DnsLabel = Field(default="airflow", description="Database name.")
    user: DnsLabel = Field(default="airflow", description="Database user.")
    storage: PostgresStorage = Field(default_factory=PostgresStorage, description="Data volume.")
    resources: Resources | None = Field(
        default=None, description="Requests/limits; defaults depend on `environment`."
    )
    protect: bool | None = Field(
        default=None,
        description=(
            "Pulumi `protect` + `retainOnDelete` on Postgres and its backups claim, and "
            "`protect` on the generated Fernet key (the encrypted data's key, with an external "
            "database too); default true outside local."
        ),
    )
    password_generation: int = Field(
        default=1,
        ge=1,
        le=1_000_000,
        description=(
            "Bump to rotate the generated Postgres password: a new one is generated, Postgres "
            "sets its role to it on restart, and every pod that uses it rolls (README: "
            "Postgres password rotation)."
        ),
    )


class ExternalDatabase(StrictModel):
    """An existing PostgreSQL server (managed service or your own)."""

    host: Hostname = Field(description="Host name of the server.")
    port: int = Field(default=5432, ge=1, le=65535, description="TCP port.")
    database: NonEmpty = Field(default="airflow", description="Database name.")
    user: NonEmpty = Field(default="airflow", description="Database user.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="require", description="libpq sslmode."
    )
    password_secret: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Existing Secret holding the password. Without it the password comes from the "
            "secret stack config `externalDatabasePassword`."
        ),
    )


class DatabaseConfig(StrictModel):
    """Airflow's metadata database: in-cluster Postgres or an external server."""

    mode: Literal["in-cluster", "external"] = Field(
        default="in-cluster", description="Which of `inCluster` / `external` is used."
    )
    in_cluster: InClusterPostgres = Field(
        default_factory=InClusterPostgres, description="Settings for `mode: in-cluster`."
    )
    external: ExternalDatabase | None = Field(
        default=None, description="Settings for `mode: external`."
    )

    @model_validator(mode="before")
    @classmethod
    def _external_needs_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") == "external":
            if data.get("external") is None:
                raise ValueError("mode is external but `external` (host, ...) is missing")
            if "inCluster" in data or "in_cluster" in data:
                raise ValueError("mode is external: remove the `inCluster` settings")
        return data


class PgBouncerConfig(StrictModel):
    """PgBouncer between Airflow and in-cluster Postgres."""

    enabled: bool | None = Field(
        default=None, description="Deploy PgBouncer; default true in prod with in-cluster Postgres."
    )
    image: NonEmpty = Field(default=PGBOUNCER_IMAGE, description="PgBouncer image.")
    max_client_connections: int = Field(
        default=1000, ge=10, le=100000, description="max_client_conn."
    )
    resources: Resources | None = Field(default=None, description="Requests/limits.")


class BackupsConfig(StrictModel):
    """pg_dump of in-cluster Postgres on a schedule, into a volume claim."""

    enabled: bool | None = Field(
        default=None, description="Run backups; default true for in-cluster Postgres outside local."
    )
    schedule: Cron = Field(default="0 2 * * *", description="Cron schedule (UTC).")
    keep: int = Field(default=7, ge=1, le=365, description="Dumps kept.")
    size: StorageSize = Field(default="20Gi", description="Backup claim size.")
    storage_class_name: DnsSubdomain | None = Field(default=None, description="StorageClass.")


class UpgradeConfig(StrictModel):
    """What `pulumi up` does before migrating the schema to a new Airflow image."""

    snapshot: bool | None = Field(
        default=None,
        description=(
            "pg_dump in-cluster Postgres into the backups claim before the migration Job of "
            "every new image (default: on when backups are). An external database needs an "
            "explicit `false`: take the provider's snapshot first (README: Upgrades)."
        ),
    )
    allow_downgrade: bool = Field(
        default=False,
        description=(
            "Go back to an older Airflow: with `downgradeFrom`, `pulumi up` runs the newer "
            "image's `airflow db downgrade` to `image.tag`'s version (after the snapshot, before "
            "the migration Job). Without it an image older than the schema is refused by the "
            "migration Job, before any rollout (README: Downgrades)."
        ),
    )
    downgrade_from: AirflowVersionTag | None = Field(
        default=None,
        description=(
            "With `allowDowngrade`: the image tag deployed now (same repository), whose Airflow "
            "carries the downgrade migrations. Must be a newer Airflow than `image.tag`."
        ),
    )


class MigrationsConfig(StrictModel):
    """The schema migration Job and the wait in every Airflow pod."""

    wait_timeout_seconds: int = Field(
        default=600, ge=30, le=86400, description="How long pods wait for migrations."
    )

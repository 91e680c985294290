"""Backups of in-cluster Postgres: a nightly `pg_dump` into a claim, keeping the newest N, and
the snapshot taken before the migration Job of each new Airflow image."""

from __future__ import annotations

from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict, JobSpecArgsDict
from pulumi_kubernetes.core.v1 import PodTemplateSpecArgsDict

from .database import POSTGRES_GID
from .datastore import RUN_UID
from .kube import (
    container_security_context,
    literal,
    plain_env,
    pod_security_context,
    resource_requirements,
    secret_env,
)
from .naming import POSTGRES_PORT, Naming
from .resolve import ResolvedConfig
from .secrets import SecretRefs

COMPONENT = "backup"
MOUNT = "/backups"


def backup_claim_name(naming: Naming) -> str:
    return naming.object("backups")


def backup_script(keep: int) -> str:
    """One command per line, so `set -e` stops at the first failure (it does not apply to the
    left side of `&&`); the Job fails when pg_dump does, and no partial dump is left behind."""
    return "\n".join(
        [
            "set -eu",
            # A dump cut short by a killed pod earlier: never mistaken for a backup.
            f"rm -f {MOUNT}/*.partial",
            f'file="{MOUNT}/airflow-$(date -u +%Y%m%dT%H%M%SZ).dump"',
            """trap 'rm -f "$file.partial"' EXIT""",
            'pg_dump --format=custom --file="$file.partial"',
            'mv "$file.partial" "$file"',
            # Newest first; everything after the first `keep` goes.
            f"ls -1t {MOUNT}/airflow-*.dump | tail -n +{keep + 1} | xargs -r rm -f",
        ]
    )


def snapshot_script(target: str) -> str:
    """The pre-upgrade dump: named after the image it prepares for and the schema revision the
    database is at (none yet on a first install). Kept out of the nightly rotation."""
    return "\n".join(
        [
            "set -eu",
            f"rm -f {MOUNT}/*.partial",
            # The schema revision Airflow's migrations left (alembic), as a file-name part.
            'from=$(psql -Atc "SELECT version_num FROM alembic_version" 2>/dev/null '
            "| tr -cd 'a-z0-9' || true)",
            f'file="{MOUNT}/{SNAPSHOT_PREFIX}{target}-from-${{from:-empty}}-'
            '$(date -u +%Y%m%dT%H%M%SZ).dump"',
            """trap 'rm -f "$file.partial"' EXIT""",
            'pg_dump --format=custom --file="$file.partial"',
            'mv "$file.partial" "$file"',
            'echo "SNAPSHOT $file (restore: README, Upgrades)"',
        ]
    )


SNAPSHOT_COMPONENT = "snapshot"
SNAPSHOT_PREFIX = "pre-upgrade-to-"


def snapshot_target(config: ResolvedConfig) -> str:
    """The image a snapshot prepares for, as a name part: its tag (and digest prefix)."""
    image = config.image
    target = image.tag.lower().replace("_", "-").replace(".", "-")
    if image.digest:
        target += "-" + image.digest.removeprefix("sha256:")[:8]
    return target


def snapshot_job_name(config: ResolvedConfig, naming: Naming) -> str:
    """A new image, a new Job: Pulumi runs it (and awaits it) before the migration Job."""
    return naming.object(f"{SNAPSHOT_COMPONENT}-{snapshot_target(config)}")[:63].rstrip("-")


def snapshot_job_spec(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs
) -> JobSpecArgsDict:
    return {
        "backoff_limit": 1,
        "template": _dump_pod(config, naming, secrets, snapshot_script(snapshot_target(config))),
    }


def backup_cron_job_spec(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs
) -> CronJobSpecArgsDict:
    return {
        "schedule": config.backups.schedule,
        "time_zone": "Etc/UTC",
        "concurrency_policy": "Forbid",
        "successful_jobs_history_limit": 1,
        "failed_jobs_history_limit": 3,
        "job_template": {
            "spec": {
                "backoff_limit": 2,
                "template": _dump_pod(config, naming, secrets, backup_script(config.backups.keep)),
            }
        },
    }


def _dump_pod(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs, script: str
) -> PodTemplateSpecArgsDict:
    """A pod running `script` in the Postgres image with the claim at /backups."""
    postgres = config.database.in_cluster
    assert secrets.postgres_password is not None
    return {
        "metadata": {"labels": naming.labels(COMPONENT)},
        "spec": {
            "service_account_name": naming.object(COMPONENT),
            "automount_service_account_token": False,
            "restart_policy": "Never",
            "security_context": pod_security_context(RUN_UID, POSTGRES_GID, POSTGRES_GID),
            "containers": [
                {
                    "name": "pg-dump",
                    "image": postgres.image,
                    "command": ["sh", "-c", literal(script)],
                    "env": [
                        plain_env("PGHOST", naming.service_host("postgres")),
                        plain_env("PGPORT", str(POSTGRES_PORT)),
                        plain_env("PGUSER", postgres.user),
                        plain_env("PGDATABASE", postgres.database),
                        secret_env("PGPASSWORD", secrets.postgres_password),
                    ],
                    "volume_mounts": [
                        {"name": "backups", "mount_path": MOUNT},
                        {"name": "tmp", "mount_path": "/tmp"},
                    ],
                    "resources": resource_requirements(postgres.resources),
                    "security_context": container_security_context(),
                }
            ],
            "volumes": [
                {
                    "name": "backups",
                    "persistent_volume_claim": {"claim_name": backup_claim_name(naming)},
                },
                {"name": "tmp", "empty_dir": {"size_limit": "64Mi"}},
            ],
        },
    }

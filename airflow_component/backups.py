"""Backups of in-cluster Postgres: a nightly `pg_dump` into a claim, keeping the newest N."""

from __future__ import annotations

from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict

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


def backup_cron_job_spec(
    config: ResolvedConfig, naming: Naming, secrets: SecretRefs
) -> CronJobSpecArgsDict:
    postgres = config.database.in_cluster
    assert secrets.postgres_password is not None
    script = backup_script(config.backups.keep)
    return {
        "schedule": config.backups.schedule,
        "time_zone": "Etc/UTC",
        "concurrency_policy": "Forbid",
        "successful_jobs_history_limit": 1,
        "failed_jobs_history_limit": 3,
        "job_template": {
            "spec": {
                "backoff_limit": 2,
                "template": {
                    "metadata": {"labels": naming.labels(COMPONENT)},
                    "spec": {
                        "service_account_name": naming.object(COMPONENT),
                        "automount_service_account_token": False,
                        "restart_policy": "Never",
                        "security_context": pod_security_context(
                            RUN_UID, POSTGRES_GID, POSTGRES_GID
                        ),
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
                                "persistent_volume_claim": {
                                    "claim_name": backup_claim_name(naming)
                                },
                            },
                            {"name": "tmp", "empty_dir": {"size_limit": "64Mi"}},
                        ],
                    },
                },
            }
        },
    }

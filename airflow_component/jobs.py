"""One-off Airflow commands: schema migrations, the first admin user, pools, Fernet rotation,
and the scheduled ones (`airflow db clean`, deleting finished KubernetesExecutor pods).

All are plain Jobs/CronJobs (never Helm-style hooks). The migration Job's pod template embeds the
image, so a new Airflow version changes the template and Pulumi replaces the Job: it re-runs
exactly when the version (or its env) changes. Pulumi awaits its completion before it creates or
updates the parts that depend on the migrations.
"""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict, JobSpecArgsDict
from pulumi_kubernetes.core.v1 import EnvVarArgsDict, VolumeArgsDict, VolumeMountArgsDict

from .airflow_env import AirflowRuntime, airflow_container, airflow_pod_spec
from .backups import MOUNT, SNAPSHOT_PREFIX, backup_claim_name, snapshot_target
from .config.root import version_text
from .declarative import POOLS_FILE, POOLS_MOUNT
from .kube import literal, secret_env
from .needs import (
    CREATE_ADMIN,
    DB_CLEAN,
    DOWNGRADE,
    MIGRATE,
    POD_CLEANUP,
    POOLS,
    ROTATE_FERNET,
    needs_of,
)

ADMIN_PASSWORD_ENV = "AIRFLOW_ADMIN_PASSWORD"


def airflow_job_spec(
    runtime: AirflowRuntime,
    component: str,
    args: list[str],
    *,
    extra_env: Sequence[EnvVarArgsDict] = (),
    extra_mounts: Sequence[VolumeMountArgsDict] = (),
    extra_volumes: Sequence[VolumeArgsDict] = (),
) -> JobSpecArgsDict:
    """A one-off Airflow command as a Job, with the secrets its `Needs` declare."""
    needs = needs_of(runtime.config, component)
    container = airflow_container(
        runtime,
        needs,
        component,
        args,
        runtime.config.job_resources,
        extra_env=extra_env,
        extra_mounts=extra_mounts,
    )
    return {
        "backoff_limit": 4,
        "template": {
            "metadata": {"labels": runtime.naming.airflow_pod_labels(component)},
            "spec": airflow_pod_spec(
                runtime,
                needs,
                [container],
                wait_for_migrations=needs.waits_for_migrations,
                restart_policy="OnFailure",
                extra_volumes=extra_volumes,
            ),
        },
    }


def target_airflow_version(tag: str) -> str:
    return version_text(tag) or f"<the Airflow version of image tag {tag}>"


def downgrade_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    """`upgrade.allowDowngrade`: the image deployed now (`downgradeFrom`) takes the schema back
    to `image.tag`'s Airflow. Only the newer Airflow carries the downgrade migrations; the older
    one cannot even name the database's revision (its migration Job refuses)."""
    config = runtime.config
    assert config.downgrade_from is not None
    target = target_airflow_version(config.image.tag)
    spec = airflow_job_spec(
        runtime, DOWNGRADE, ["db", "downgrade", "--to-version", target, "--yes"]
    )
    container = spec["template"]["spec"]["containers"][0]
    # Both tags passed the tag pattern (no digest: the deployed image is named by its tag).
    container["image"] = f"{config.image.repository}:{config.downgrade_from}"
    return spec


def migration_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    """`airflow db migrate`, whose failure ends with the lines an operator needs (the container's
    termination message holds them, from its log, for `kubectl describe` and the failed Job):
    - a schema newer than this image's Airflow is a downgrade: refused by Airflow's own
      migration (alembic cannot locate the database's revision), nothing changed, and the way
      back is named (README: Downgrades);
    - with a pre-upgrade snapshot: which dump to restore and how."""
    config, naming = runtime.config, runtime.naming
    tag = config.image.tag  # the tag pattern admits no quote, `$` or space: safe in the text
    target = target_airflow_version(tag)
    lines = [
        "set -o pipefail",
        # Shown as it runs (tee to the log) and kept in memory (no file, so nothing to
        # mount) to tell a downgrade from another failure.
        "output=$(airflow db migrate 2>&1 | tee /dev/stderr) && exit 0",
        "status=$?",
        'if [[ $output == *"Can\'t locate revision identified by"* ]]; then',
        f'  echo "DOWNGRADE REFUSED (exit $status): the database schema is newer than the '
        f'Airflow of image.tag {tag}. Nothing was migrated; no Deployment rolled." >&2',
        '  echo "To go back: set upgrade.allowDowngrade: true and upgrade.downgradeFrom: <the '
        "image tag deployed now>, then pulumi up: that image runs airflow db downgrade "
        f'--to-version {target} --yes first (README: Downgrades)." >&2',
        "  exit $status",
        "fi",
        'echo "MIGRATION FAILED (exit $status): the old pods keep serving the old schema." >&2',
    ]
    if config.upgrade_snapshot:
        dump = f"{MOUNT}/{SNAPSHOT_PREFIX}{snapshot_target(config)}-from-*.dump"
        database = config.database.in_cluster.database
        lines += [
            f'echo "Snapshot taken before it: {dump} on claim {backup_claim_name(naming)}." >&2',
            f'echo "Restore: pg_restore --clean --if-exists --dbname={database} <that file>, '
            'then set the previous image and pulumi up (README: Upgrades)." >&2',
        ]
    lines.append("exit $status")
    spec = airflow_job_spec(runtime, MIGRATE, ["bash", "-c", literal("\n".join(lines))])
    container = spec["template"]["spec"]["containers"][0]
    container["termination_message_policy"] = "FallbackToLogsOnError"
    return spec


def admin_user_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    """FAB only: create the admin user. SimpleAuthManager reads its passwords file instead."""
    auth = runtime.config.auth
    args = [
        "users",
        "create",
        "--username",
        literal(auth.admin_username),
        "--firstname",
        literal(auth.admin_first_name),
        "--lastname",
        literal(auth.admin_last_name),
        "--email",
        literal(auth.admin_email),
        "--role",
        "Admin",
        "--password",
        # Expanded by the kubelet from the secretKeyRef env below: never in the manifest.
        f"$({ADMIN_PASSWORD_ENV})",
    ]
    return airflow_job_spec(
        runtime,
        CREATE_ADMIN,
        args,
        extra_env=[secret_env(ADMIN_PASSWORD_ENV, runtime.secrets.admin_password)],
    )


def pools_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    return airflow_job_spec(
        runtime,
        POOLS,
        ["pools", "import", f"{POOLS_MOUNT}/{POOLS_FILE}"],
        extra_mounts=[{"name": "pools", "mount_path": POOLS_MOUNT, "read_only": True}],
        extra_volumes=[{"name": "pools", "config_map": {"name": runtime.naming.object(POOLS)}}],
    )


def rotate_fernet_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    return airflow_job_spec(runtime, ROTATE_FERNET, ["rotate-fernet-key"])


def _cron_job(
    runtime: AirflowRuntime, component: str, schedule: str, args: list[str]
) -> CronJobSpecArgsDict:
    needs = needs_of(runtime.config, component)
    container = airflow_container(runtime, needs, component, args, runtime.config.job_resources)
    return {
        "schedule": schedule,
        "time_zone": "Etc/UTC",
        # A slow run is never doubled up, and a missed one does not pile up.
        "concurrency_policy": "Forbid",
        "starting_deadline_seconds": 600,
        "successful_jobs_history_limit": 1,
        "failed_jobs_history_limit": 3,
        "job_template": {
            "spec": {
                "backoff_limit": 1,
                "template": {
                    "metadata": {"labels": runtime.naming.airflow_pod_labels(component)},
                    "spec": airflow_pod_spec(runtime, needs, [container], restart_policy="Never"),
                },
            }
        },
    }


def db_clean_spec(runtime: AirflowRuntime) -> CronJobSpecArgsDict | None:
    settings = runtime.config.housekeeping.db_clean
    if not settings.enabled:
        return None
    # The image entrypoint runs `bash -c` directly; the cutoff is computed at run time.
    cutoff = f"$(date -u -d '-{settings.retention_days} days' '+%Y-%m-%dT%H:%M:%S+00:00')"
    command = f'exec airflow db clean --clean-before-timestamp "{cutoff}" --yes --skip-archive'
    return _cron_job(runtime, DB_CLEAN, settings.schedule, ["bash", "-c", literal(command)])


def pod_cleanup_spec(runtime: AirflowRuntime) -> CronJobSpecArgsDict | None:
    config = runtime.config
    if config.kubernetes_executor is None or not config.housekeeping.cleanup_pods.enabled:
        return None
    return _cron_job(
        runtime,
        POD_CLEANUP,
        config.housekeeping.cleanup_pods.schedule,
        ["kubernetes", "cleanup-pods", "--namespace", runtime.naming.namespace],
    )

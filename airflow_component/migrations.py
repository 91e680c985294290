"""Schema migrations and the first admin user, as plain Jobs (never Helm-style hooks).

The migration Job's pod template embeds the image, so a new Airflow version changes the template
and Pulumi replaces the Job: it re-runs exactly when the version (or the shared env) changes.
Pulumi awaits the Job's completion before it creates or updates the workloads that depend on it.
"""

from __future__ import annotations

from pulumi_kubernetes.batch.v1 import JobSpecArgsDict

from .airflow_env import AirflowRuntime, airflow_job_spec, secret_env

MIGRATE_COMPONENT = "db-migrate"
ADMIN_USER_COMPONENT = "create-admin"
ADMIN_PASSWORD_ENV = "AIRFLOW_ADMIN_PASSWORD"


def migration_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    return airflow_job_spec(runtime, MIGRATE_COMPONENT, ["db", "migrate"], wait=False)


def admin_user_job_spec(runtime: AirflowRuntime) -> JobSpecArgsDict:
    """FAB only: create the admin user. SimpleAuthManager reads its passwords file instead."""
    auth = runtime.config.auth
    args = [
        "users",
        "create",
        "--username",
        auth.admin_username,
        "--firstname",
        auth.admin_first_name,
        "--lastname",
        auth.admin_last_name,
        "--email",
        auth.admin_email,
        "--role",
        "Admin",
        "--password",
        # Expanded by the kubelet from the secretKeyRef env below: never in the manifest.
        f"$({ADMIN_PASSWORD_ENV})",
    ]
    return airflow_job_spec(
        runtime,
        ADMIN_USER_COMPONENT,
        args,
        extra_env=[secret_env(ADMIN_PASSWORD_ENV, runtime.secrets.admin_password)],
    )

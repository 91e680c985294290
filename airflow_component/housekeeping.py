"""Scheduled maintenance: `airflow db clean` and deleting finished KubernetesExecutor pods."""

from __future__ import annotations

from pulumi_kubernetes.batch.v1 import CronJobSpecArgsDict

from .airflow_env import AirflowRuntime, airflow_container, airflow_pod_spec
from .config import Resources

DB_CLEAN = "db-clean"
POD_CLEANUP = "pod-cleanup"


def _cron_job(
    runtime: AirflowRuntime,
    component: str,
    schedule: str,
    args: list[str],
    resources: Resources,
    api_access: bool = False,
) -> CronJobSpecArgsDict:
    container = airflow_container(runtime, component, args, resources)
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
                    "spec": airflow_pod_spec(
                        runtime,
                        runtime.naming.object(component),
                        [container],
                        restart_policy="Never",
                        api_access=api_access,
                    ),
                },
            }
        },
    }


def db_clean_spec(runtime: AirflowRuntime) -> CronJobSpecArgsDict | None:
    settings = runtime.config.housekeeping.db_clean
    if not settings.enabled:
        return None
    assert runtime.config.job_resources is not None
    # The image entrypoint runs `bash -c` directly; the cutoff is computed at run time.
    cutoff = f"$(date -u -d '-{settings.retention_days} days' '+%Y-%m-%dT%H:%M:%S+00:00')"
    command = f'exec airflow db clean --clean-before-timestamp "{cutoff}" --yes --skip-archive'
    return _cron_job(
        runtime,
        DB_CLEAN,
        settings.schedule,
        ["bash", "-c", command],
        runtime.config.job_resources,
    )


def pod_cleanup_spec(runtime: AirflowRuntime) -> CronJobSpecArgsDict | None:
    config = runtime.config
    if config.kubernetes_executor is None or not config.housekeeping.cleanup_pods.enabled:
        return None
    assert config.job_resources is not None
    return _cron_job(
        runtime,
        POD_CLEANUP,
        config.housekeeping.cleanup_pods.schedule,
        ["kubernetes", "cleanup-pods", "--namespace", runtime.naming.namespace],
        config.job_resources,
        api_access=True,
    )

"""ServiceAccounts: one per component, no token mounted where the Kubernetes API is not used."""

from __future__ import annotations

from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pulumi_kubernetes.rbac.v1 import PolicyRuleArgsDict, SubjectArgsDict

from .config import AirflowConfig
from .naming import Naming
from .resource_args import ServiceAccountArgs

# Every component that runs pods; "jobs" covers the migration and admin-user Jobs.
AIRFLOW_SERVICE_ACCOUNTS = ("api-server", "scheduler", "dag-processor", "triggerer", "jobs")


# Accounts of processes that write or read task logs (IRSA / Workload Identity annotations).
AIRFLOW_IDENTITIES = frozenset(
    {"api-server", "scheduler", "dag-processor", "triggerer", "worker", "task-pod"}
)
POD_LAUNCHER = "pod-launcher"
# Exactly what launching and following pods needs (KubernetesExecutor, KubernetesPodOperator).
POD_LAUNCHER_RULES: tuple[PolicyRuleArgsDict, ...] = (
    {
        "api_groups": [""],
        "resources": ["pods"],
        "verbs": ["create", "get", "list", "watch", "patch", "delete"],
    },
    {"api_groups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"api_groups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {"api_groups": [""], "resources": ["events"], "verbs": ["list", "watch"]},
)


def service_account_components(config: AirflowConfig) -> tuple[str, ...]:
    components: tuple[str, ...] = AIRFLOW_SERVICE_ACCOUNTS
    if config.database.mode == "in-cluster":
        components += ("postgres",)
    if config.celery is not None:
        components += ("worker", "redis")
        if config.celery.flower.enabled:
            components += ("flower",)
    if config.kubernetes_executor is not None:
        components += ("task-pod",)
        if config.housekeeping.cleanup_pods.enabled:
            components += ("pod-cleanup",)
    if config.housekeeping.db_clean.enabled:
        components += ("db-clean",)
    if config.metrics.enabled:
        components += ("statsd",)
    if config.pgbouncer.enabled:
        components += ("pgbouncer",)
    if config.backups.enabled:
        components += ("backup",)
    return components


def pod_launchers(config: AirflowConfig) -> tuple[str, ...]:
    """Components whose ServiceAccount may launch pods; nothing else gets API rights."""
    launchers: tuple[str, ...] = ()
    if config.kubernetes_executor is not None:
        launchers += ("scheduler",)
        if config.housekeeping.cleanup_pods.enabled:
            launchers += ("pod-cleanup",)
    if config.kubernetes_pod_operator.enabled:
        launchers += ("triggerer",)
        if config.celery is not None:
            launchers += ("worker",)
        if config.kubernetes_executor is not None:
            launchers += ("task-pod",)
    return launchers


def pod_launcher_role_rules() -> list[PolicyRuleArgsDict]:
    return [dict(rule) for rule in POD_LAUNCHER_RULES]  # type: ignore[misc]


def pod_launcher_subjects(naming: Naming, config: AirflowConfig) -> list[SubjectArgsDict]:
    return [
        {"kind": "ServiceAccount", "name": naming.object(component), "namespace": naming.namespace}
        for component in pod_launchers(config)
    ]


def service_account_manifest(
    naming: Naming, component: str, config: AirflowConfig | None = None
) -> ServiceAccountArgs:
    """`config` given: Airflow accounts carry the cloud identity annotations for remote logs."""
    metadata: ObjectMetaArgsDict = {
        "name": naming.object(component),
        "namespace": naming.namespace,
        "labels": naming.metadata_labels(component),
    }
    remote = config.logging.remote if config else None
    if remote and remote.service_account_annotations and component in AIRFLOW_IDENTITIES:
        metadata["annotations"] = dict(remote.service_account_annotations)
    return {
        "metadata": metadata,
        # Tokens are mounted per pod where needed, never by default.
        "automount_service_account_token": False,
    }

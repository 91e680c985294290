"""The one place that builds what every Airflow container shares: env, mounts, security, pod spec.

Every Airflow process (migrations, admin Job, api-server, scheduler, dag-processor, triggerer)
is built from `airflow_container` and `airflow_pod_spec`, so the settings that must agree across
processes (DB connection, Fernet key, JWT secret, API secret key, Execution API URL) cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
from pulumi_kubernetes.batch.v1 import JobSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    PodSpecArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)

from .config import AirflowConfig, Resources, SecretKeyRef
from .dags import dag_mounts, dag_volumes, dags_folder, git_sync_init_containers, git_sync_sidecars
from .declarative import declared_env
from .fernet import fernet_env
from .metrics import metrics_env
from .naming import (
    AIRFLOW_GID,
    AIRFLOW_HOME,
    AIRFLOW_UID,
    API_SERVER_PORT,
    LOGS_FOLDER,
    Naming,
)
from .secrets import SecretRefs

SIMPLE_AUTH_MANAGER = (
    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
)
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
SECRETS_MOUNT = f"{AIRFLOW_HOME}/secrets"
POD_TEMPLATE_PATH = f"{AIRFLOW_HOME}/pod_templates/pod_template_file.yaml"
# SimpleAuthManager opens its passwords file read-write ("a+"), so it gets a writable copy of
# the Secret, made by an init container; Secret volumes are always read-only.
SIMPLE_AUTH_SECRET_DIR = f"{SECRETS_MOUNT}/simple-auth"
SIMPLE_AUTH_DIR = f"{AIRFLOW_HOME}/simple-auth"
SIMPLE_AUTH_PASSWORDS_PATH = f"{SIMPLE_AUTH_DIR}/passwords.json"
# Airflow writes a default airflow.cfg into AIRFLOW_HOME at start when there is none; with a
# read-only root filesystem that crashes every command. All settings come from env: the mounted
# file only has to exist.
AIRFLOW_CFG_PATH = f"{AIRFLOW_HOME}/airflow.cfg"
AIRFLOW_CFG = "# Settings come from AIRFLOW__* environment variables (airflow-k8s).\n"
# Kubernetes expands $(VAR) in args from the container's env, so the password never lands
# in the manifest; only the reference does.
METADATA_PASSWORD_ENV = "AIRFLOW_METADATA_DB_PASSWORD"


@dataclass(frozen=True)
class AirflowRuntime:
    """Everything the shared container builders need: validated config, names, secret refs."""

    config: AirflowConfig
    naming: Naming
    secrets: SecretRefs
    # Annotations on long-running Airflow pods: checksums of what they read once at start.
    pod_annotations: tuple[tuple[str, pulumi.Input[str]], ...] = field(default=())

    @property
    def base_url(self) -> str:
        config = self.config
        if config.base_url:
            return config.base_url.rstrip("/")
        if config.ingress.enabled and config.ingress.host:
            scheme = "https" if config.ingress.tls_secret_name else "http"
            return f"{scheme}://{config.ingress.host}{config.ingress.path.rstrip('/')}"
        service = config.api_server.service
        if service.type == "NodePort" and service.node_port:
            return f"http://localhost:{service.node_port}"
        return self.naming.api_server_url

    @property
    def execution_api_url(self) -> str:
        # In-cluster Service DNS, never the public URL: workers must not depend on the ingress.
        return f"{self.naming.api_server_url}/execution/"

    @property
    def auth_manager(self) -> str:
        return FAB_AUTH_MANAGER if self.config.auth.manager == "fab" else SIMPLE_AUTH_MANAGER


def secret_env(name: str, ref: SecretKeyRef) -> EnvVarArgsDict:
    return {"name": name, "value_from": {"secret_key_ref": {"name": ref.name, "key": ref.key}}}


def plain_env(name: str, value: str) -> EnvVarArgsDict:
    return {"name": name, "value": value}


def metadata_connection_env(
    secrets: SecretRefs, config: AirflowConfig, naming: Naming
) -> list[EnvVarArgsDict]:
    """The metadata DB connection: a URL from a Secret, or a command composing it at runtime."""
    if secrets.metadata_connection is not None:
        return [secret_env("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", secrets.metadata_connection)]
    assert secrets.metadata_password is not None
    # The password lives in a Secret we do not own: Airflow's `_CMD` form of this sensitive
    # option builds the URL in the container, URL-encoding the password there.
    from .secrets import postgres_url_command

    return [
        secret_env(METADATA_PASSWORD_ENV, secrets.metadata_password),
        plain_env(
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
            postgres_url_command(config, naming, METADATA_PASSWORD_ENV),
        ),
    ]


def airflow_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    """The environment shared by every Airflow container, secrets only as secretKeyRef."""
    config, secrets = runtime.config, runtime.secrets
    env: list[EnvVarArgsDict] = [
        *metadata_connection_env(secrets, config, runtime.naming),
        *fernet_env(config, secrets.fernet_key),
        secret_env("AIRFLOW__API_AUTH__JWT_SECRET", secrets.jwt_secret),
        secret_env("AIRFLOW__API__SECRET_KEY", secrets.api_secret_key),
        plain_env("AIRFLOW__CORE__EXECUTOR", config.executor_setting),
        plain_env("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", runtime.execution_api_url),
        plain_env("AIRFLOW__API__BASE_URL", runtime.base_url),
        plain_env("AIRFLOW__CORE__LOAD_EXAMPLES", "False"),
        plain_env("AIRFLOW__CORE__DAGS_FOLDER", dags_folder(config)),
        plain_env("AIRFLOW__LOGGING__BASE_LOG_FOLDER", LOGS_FOLDER),
        plain_env("AIRFLOW__CORE__AUTH_MANAGER", runtime.auth_manager),
        plain_env("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "True"),
        # Task logs are served by the pod that ran the task; its IP is reachable in-cluster,
        # a Deployment pod's hostname is not.
        plain_env("AIRFLOW__CORE__HOSTNAME_CALLABLE", "airflow.utils.net.get_host_ip_address"),
    ]
    if config.auth.manager == "simple":
        env += [
            plain_env(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{config.auth.admin_username}:admin"
            ),
            plain_env(
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", SIMPLE_AUTH_PASSWORDS_PATH
            ),
        ]
    env.append(plain_env("AIRFLOW__CORE__PARALLELISM", str(config.parallelism)))
    env += celery_env(runtime) + kubernetes_executor_env(runtime)
    env += metrics_env(config, runtime.naming) + remote_logging_env(config)
    env += declared_env(config, runtime.naming)
    return env


def remote_logging_env(config: AirflowConfig) -> list[EnvVarArgsDict]:
    remote = config.logging.remote
    if remote is None:
        return []
    env = [
        plain_env("AIRFLOW__LOGGING__REMOTE_LOGGING", "True"),
        plain_env("AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER", remote.base_folder),
        plain_env("AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID", remote.connection_id),
    ]
    if remote.connection_secret is not None:
        env.append(
            secret_env(f"AIRFLOW_CONN_{remote.connection_id.upper()}", remote.connection_secret)
        )
    return env


def celery_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    celery, secrets = runtime.config.celery, runtime.secrets
    if celery is None:
        return []
    assert secrets.celery_broker_url is not None
    env = [
        secret_env("AIRFLOW__CELERY__BROKER_URL", secrets.celery_broker_url),
        plain_env("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(celery.workers.concurrency)),
    ]
    if secrets.celery_result_backend is not None:
        env.append(secret_env("AIRFLOW__CELERY__RESULT_BACKEND", secrets.celery_result_backend))
    else:
        from .secrets import postgres_url_command

        env.append(
            plain_env(
                "AIRFLOW__CELERY__RESULT_BACKEND_CMD",
                postgres_url_command(
                    runtime.config, runtime.naming, METADATA_PASSWORD_ENV, scheme_prefix="db+"
                ),
            )
        )
    return env


def kubernetes_executor_env(runtime: AirflowRuntime) -> list[EnvVarArgsDict]:
    settings = runtime.config.kubernetes_executor
    if settings is None:
        return []
    return [
        plain_env("AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE", POD_TEMPLATE_PATH),
        plain_env("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", runtime.naming.namespace),
        plain_env(
            "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS", str(settings.delete_worker_pods)
        ),
        plain_env(
            "AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS_ON_FAILURE",
            str(settings.delete_worker_pods_on_failure),
        ),
    ]


def _writable_dir(name: str) -> VolumeArgsDict:
    return {"name": name, "empty_dir": {"size_limit": "1Gi"}}


def logs_claim_name(naming: Naming) -> str:
    return naming.object("logs")


def airflow_volumes(runtime: AirflowRuntime) -> list[VolumeArgsDict]:
    logs: VolumeArgsDict = (
        {
            "name": "logs",
            "persistent_volume_claim": {"claim_name": logs_claim_name(runtime.naming)},
        }
        if runtime.config.logging.volume is not None
        else _writable_dir("logs")
    )
    volumes: list[VolumeArgsDict] = [
        logs,
        _writable_dir("tmp"),
        {"name": "airflow-cfg", "config_map": {"name": airflow_cfg_config_map(runtime.naming)}},
    ]
    if runtime.config.auth.manager == "simple":
        ref = runtime.secrets.simple_auth_passwords
        volumes += [
            {
                "name": "simple-auth-secret",
                "secret": {
                    "secret_name": ref.name,
                    "items": [{"key": ref.key, "path": "passwords.json"}],
                    "default_mode": 0o440,
                },
            },
            {"name": "simple-auth", "empty_dir": {"size_limit": "1Mi"}},
        ]
    return volumes


def airflow_cfg_config_map(naming: Naming) -> str:
    return naming.object("airflow-cfg")


def simple_auth_init_container(runtime: AirflowRuntime) -> ContainerArgsDict:
    """Copies the passwords file from its Secret into the writable emptyDir Airflow uses."""
    assert runtime.config.job_resources is not None
    source = f"{SIMPLE_AUTH_SECRET_DIR}/passwords.json"
    return {
        "name": "simple-auth-passwords",
        "image": runtime.config.image.reference,
        "image_pull_policy": runtime.config.image.pull_policy,
        # `install` sets the mode; `cp` would keep the Secret's read-only 0440.
        "command": ["install", "-m", "0660", source, SIMPLE_AUTH_PASSWORDS_PATH],
        "volume_mounts": [
            {"name": "simple-auth-secret", "mount_path": SIMPLE_AUTH_SECRET_DIR, "read_only": True},
            {"name": "simple-auth", "mount_path": SIMPLE_AUTH_DIR},
        ],
        "resources": resource_requirements(runtime.config.job_resources),  # type: ignore[typeddict-item]
        "security_context": container_security_context(),  # type: ignore[typeddict-item]
    }


def airflow_volume_mounts(runtime: AirflowRuntime) -> list[VolumeMountArgsDict]:
    mounts: list[VolumeMountArgsDict] = [
        {"name": "logs", "mount_path": LOGS_FOLDER},
        {"name": "tmp", "mount_path": "/tmp"},
        {
            "name": "airflow-cfg",
            "mount_path": AIRFLOW_CFG_PATH,
            "sub_path": "airflow.cfg",
            "read_only": True,
        },
    ]
    if runtime.config.auth.manager == "simple":
        mounts.append({"name": "simple-auth", "mount_path": SIMPLE_AUTH_DIR})
    return mounts


def container_security_context() -> dict[str, object]:
    """Pod Security "restricted" at container level, with a read-only root filesystem."""
    return {
        "allow_privilege_escalation": False,
        "capabilities": {"drop": ["ALL"]},
        "read_only_root_filesystem": True,
        "run_as_non_root": True,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def pod_security_context(uid: int, gid: int, fs_group: int | None = None) -> dict[str, object]:
    context: dict[str, object] = {
        "run_as_non_root": True,
        "run_as_user": uid,
        "run_as_group": gid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    if fs_group is not None:
        context["fs_group"] = fs_group
    return context


def resource_requirements(resources: Resources) -> dict[str, dict[str, str]]:
    return {side: getattr(resources, side).model_dump() for side in ("requests", "limits")}


def airflow_container(
    runtime: AirflowRuntime,
    name: str,
    args: Sequence[str],
    resources: Resources,
    *,
    extra: ContainerArgsDict | None = None,
    extra_env: Sequence[EnvVarArgsDict] = (),
    reads_dags: bool = False,
    extra_mounts: Sequence[VolumeMountArgsDict] = (),
) -> ContainerArgsDict:
    """An Airflow container: the image entrypoint runs `airflow <args>`."""
    mounts = airflow_volume_mounts(runtime)
    if reads_dags:
        mounts += dag_mounts(runtime.config)
    container: ContainerArgsDict = {
        "name": name,
        "image": runtime.config.image.reference,
        "image_pull_policy": runtime.config.image.pull_policy,
        "args": list(args),
        "env": [*airflow_env(runtime), *extra_env],
        "volume_mounts": [*mounts, *extra_mounts],
        "resources": resource_requirements(resources),  # type: ignore[typeddict-item]
        "security_context": container_security_context(),  # type: ignore[typeddict-item]
    }
    if extra:
        container.update(extra)
    return container


def wait_for_migrations_container(runtime: AirflowRuntime) -> ContainerArgsDict:
    """Init container: block until the schema matches this image, so no pod runs on an old one."""
    timeout = runtime.config.migrations.wait_timeout_seconds
    assert runtime.config.job_resources is not None
    return airflow_container(
        runtime,
        "wait-for-migrations",
        ["db", "check-migrations", f"--migration-wait-timeout={timeout}"],
        runtime.config.job_resources,
    )


def airflow_pod_spec(
    runtime: AirflowRuntime,
    service_account: str,
    containers: list[ContainerArgsDict],
    *,
    wait_for_migrations: bool = True,
    reads_dags: bool = False,
    dag_sidecar: bool = True,
    api_access: bool = False,
    restart_policy: str | None = None,
    termination_grace_period_seconds: int | None = None,
    extra_volumes: Sequence[VolumeArgsDict] = (),
) -> PodSpecArgsDict:
    config = runtime.config
    volumes = airflow_volumes(runtime)
    init_containers: list[ContainerArgsDict] = []
    if reads_dags:
        volumes += dag_volumes(config, runtime.naming)
        if dag_sidecar:
            containers = [*containers, *git_sync_sidecars(config)]
        init_containers += git_sync_init_containers(config)
    if config.auth.manager == "simple":
        init_containers.insert(0, simple_auth_init_container(runtime))
    if wait_for_migrations:
        init_containers.append(wait_for_migrations_container(runtime))
    spec: PodSpecArgsDict = {
        "service_account_name": service_account,
        # A token only where the process calls the Kubernetes API (launching pods).
        "automount_service_account_token": api_access,
        "security_context": pod_security_context(AIRFLOW_UID, AIRFLOW_GID, AIRFLOW_GID),  # type: ignore[typeddict-item]
        "containers": containers,
        "volumes": [*volumes, *extra_volumes],
    }
    if init_containers:
        spec["init_containers"] = init_containers
    if config.image.pull_secrets:
        spec["image_pull_secrets"] = [{"name": name} for name in config.image.pull_secrets]
    if restart_policy:
        spec["restart_policy"] = restart_policy
    if termination_grace_period_seconds is not None:
        spec["termination_grace_period_seconds"] = termination_grace_period_seconds
    return spec


__all__ = [
    "API_SERVER_PORT",
    "AirflowRuntime",
    "airflow_container",
    "airflow_env",
    "airflow_pod_spec",
]


def airflow_job_spec(
    runtime: AirflowRuntime,
    component: str,
    args: list[str],
    *,
    wait: bool = True,
    extra_env: Sequence[EnvVarArgsDict] = (),
    extra_mounts: Sequence[VolumeMountArgsDict] = (),
    extra_volumes: Sequence[VolumeArgsDict] = (),
) -> JobSpecArgsDict:
    """A one-off Airflow command as a Job, with the shared env and the Jobs' ServiceAccount."""
    assert runtime.config.job_resources is not None
    container = airflow_container(
        runtime,
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
                runtime.naming.object("jobs"),
                [container],
                wait_for_migrations=wait,
                restart_policy="OnFailure",
                extra_volumes=extra_volumes,
            ),
        },
    }

"""PgBouncer between Airflow and in-cluster Postgres: many Airflow connections, few server ones."""

from __future__ import annotations

import pulumi
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict
from pulumi_kubernetes.core.v1 import ProbeArgsDict, ServiceSpecArgsDict

from .kube import container_security_context, pod_security_context, resource_requirements
from .naming import PGBOUNCER_PORT, POSTGRES_PORT, Naming
from .needs import PGBOUNCER, database_session_pods, needs_of
from .resolve import ResolvedConfig

COMPONENT = "pgbouncer"
PORT = PGBOUNCER_PORT
UID = 10998
CONFIG_DIR = "/etc/pgbouncer"
# Postgres' default max_connections is 100; keep room for superuser and backup sessions.
MAX_SERVER_CONNECTIONS = 90


def pool_size(config: ResolvedConfig) -> int:
    """Server connections: one per running task slot, plus a few per Airflow process pod."""
    task_slots = config.parallelism * config.scheduler.replicas
    if config.celery is not None:
        task_slots = max(
            task_slots,
            sum(pool.concurrency * pool.replicas for pool in config.celery.pools),
        )
    return min(MAX_SERVER_CONNECTIONS, task_slots + 2 * database_session_pods(config))


def pgbouncer_ini(config: ResolvedConfig, naming: Naming) -> str:
    database = config.database.in_cluster.database
    return "\n".join(
        [
            "[databases]",
            f"{database} = host={naming.service_host('postgres')} port={POSTGRES_PORT} "
            f"dbname={database}",
            "",
            "[pgbouncer]",
            "listen_addr = 0.0.0.0",
            f"listen_port = {PORT}",
            "unix_socket_dir =",
            "auth_type = scram-sha-256",
            f"auth_file = {CONFIG_DIR}/userlist.txt",
            # Airflow holds sessions briefly; transaction pooling multiplexes them.
            "pool_mode = transaction",
            f"max_client_conn = {config.pgbouncer.max_client_connections}",
            f"default_pool_size = {pool_size(config)}",
            "ignore_startup_parameters = extra_float_digits",
            "server_tls_sslmode = prefer",
            "",
        ]
    )


def userlist(user: str, password: str) -> str:
    escaped = password.replace('"', '""')
    return f'"{user}" "{escaped}"\n'


def service_spec(naming: Naming) -> ServiceSpecArgsDict:
    return {
        "selector": naming.labels(COMPONENT),
        "ports": [{"name": "pgbouncer", "port": PORT, "target_port": "pgbouncer"}],
    }


def deployment_spec(
    config: ResolvedConfig, naming: Naming, config_checksum: pulumi.Input[str]
) -> DeploymentSpecArgsDict:
    probe: ProbeArgsDict = {"tcp_socket": {"port": "pgbouncer"}, "period_seconds": 10}
    return {
        "replicas": needs_of(config, PGBOUNCER).replicas,
        "selector": {"match_labels": naming.labels(COMPONENT)},
        "template": {
            "metadata": {
                "labels": naming.labels(COMPONENT),
                # The config is read at start: a new password or pool size rolls PgBouncer.
                "annotations": {"checksum/config": config_checksum},
            },
            "spec": {
                "service_account_name": naming.object(COMPONENT),
                "automount_service_account_token": False,
                "security_context": pod_security_context(UID, UID, UID),
                "containers": [
                    {
                        "name": "pgbouncer",
                        "image": config.pgbouncer.image,
                        "command": ["pgbouncer", f"{CONFIG_DIR}/pgbouncer.ini"],
                        "ports": [{"name": "pgbouncer", "container_port": PORT}],
                        "volume_mounts": [
                            {"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
                            {"name": "tmp", "mount_path": "/tmp"},
                        ],
                        "liveness_probe": probe,
                        "readiness_probe": probe,
                        "resources": resource_requirements(config.pgbouncer.resources),
                        "security_context": container_security_context(),
                    }
                ],
                "volumes": [
                    {
                        "name": "config",
                        "secret": {"secret_name": naming.object(COMPONENT), "default_mode": 0o440},
                    },
                    {"name": "tmp", "empty_dir": {"size_limit": "16Mi"}},
                ],
            },
        },
    }

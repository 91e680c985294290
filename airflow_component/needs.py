"""What every pod-running part needs, declared once; RBAC, NetworkPolicies, disruption budgets,
PgBouncer sizing, ServiceAccounts and secret scope are derived from these declarations.

`workload_needs(config)` is the catalogue: one `Needs` per component that runs pods. Adding an
executor means adding its processes here (and their commands in `processes.py`); nothing that
derives from needs names a component.

Which secret each Airflow process needs (sources in the README's "Secret scope" table):
- the JWT signing key signs and checks tokens: the api-server (UI/REST and Execution API) and
  the scheduler (its executor signs each task's Execution API token). Nothing else.
- the Fernet key decrypts connections, variables and trigger arguments: the api-server (the
  Execution API serves them to tasks), the scheduler, dag-processor and triggerer (in-process
  Execution API, trigger kwargs), and the Jobs that migrate or re-encrypt. Never workers or
  task pods.
- `[api] secret_key` signs log-fetch tokens (api-server) and checks them in every log server
  (scheduler with LocalExecutor, Celery workers, triggerer).
- the metadata DB: every Airflow process but Celery workers, Flower and task pods (tasks go
  through the Execution API). Celery workers and Flower read task results from the DB through
  the Celery result backend, which carries the same credentials.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from .resolve import ResolvedConfig


class Secret(enum.Enum):
    """A secret an Airflow container may be given (as secretKeyRef env or a mounted file)."""

    METADATA_DB = "metadata database connection"
    FERNET_KEY = "Fernet key"
    JWT_SECRET = "JWT signing secret"
    API_SECRET_KEY = "[api] secret_key"
    BROKER_URL = "Celery broker URL"
    RESULT_BACKEND = "Celery result backend"
    FLOWER_AUTH = "Flower basic auth"
    ADMIN_PASSWORD = "admin password"
    DECLARED = "declared connections and variables"
    REMOTE_LOGS = "remote log connection"
    BUNDLE_CONNECTIONS = "DAG bundle connections"


# What runs task code (DAG authors' code): it gets only what tasks themselves use.
TASK_SECRETS = frozenset({Secret.DECLARED, Secret.REMOTE_LOGS})

API_SERVER = "api-server"
SCHEDULER = "scheduler"
DAG_PROCESSOR = "dag-processor"
TRIGGERER = "triggerer"
WORKER = "worker"
FLOWER = "flower"
TASK_POD = "task-pod"
MIGRATE = "db-migrate"
DOWNGRADE = "db-downgrade"
CREATE_ADMIN = "create-admin"
POOLS = "pools"
ROTATE_FERNET = "rotate-fernet"
DB_CLEAN = "db-clean"
POD_CLEANUP = "pod-cleanup"
SELF_CHECK = "self-check"
POSTGRES = "postgres"
REDIS = "redis"
PGBOUNCER = "pgbouncer"
STATSD = "statsd"
BACKUP = "backup"
# The migration, admin, pools and rotation Jobs share one ServiceAccount.
JOBS_ACCOUNT = "jobs"

WORKER_LOG_SERVER_PORT = 8793
TRIGGERER_LOG_SERVER_PORT = 8794


@dataclass(frozen=True)
class Peer:
    """One end of a network flow: a component of this release, any pod of another namespace,
    addresses outside the cluster, or (nothing set) any destination."""

    component: str | None = None
    namespace: str | None = None
    cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flow:
    """Traffic a component needs: to (egress) or from (ingress) a peer, on these ports."""

    peer: Peer
    ports: tuple[int, ...]
    protocol: str = "TCP"
    purpose: str = ""


@dataclass(frozen=True)
class Needs:
    """What one pod-running component needs from the rest of the deployment."""

    component: str
    # Runs the Airflow image with the shared Airflow env, mounts and labels.
    airflow: bool = True
    service_account: str = ""
    secrets: frozenset[Secret] = frozenset()
    reads_dags: bool = False
    # Calls the Kubernetes API to launch, follow or delete pods: a token and the pod Role.
    launches_pods: bool = False
    # Reads running task pods' logs from the Kubernetes API: a token and a read-only Role.
    reads_pod_logs: bool = False
    # Writes or reads task logs (remote log storage identity and access).
    task_logs: bool = False
    # Deletes its old local log files (a log-groomer sidecar): processes that write logs, and
    # with a shared logs claim only one of them (the scheduler), not every pod on the claim.
    grooms_logs: bool = False
    # Serves task logs to the api-server on these ports.
    log_server_ports: tuple[int, ...] = ()
    # Fetches a task's log from the log server of the pod that ran it (the api-server).
    fetches_served_logs: bool = False
    # Connects to the Postgres server itself, never through PgBouncer (PgBouncer, pg_dump).
    connects_to_postgres: bool = False
    # Long-running (Deployment/StatefulSet), with these replica counts.
    long_running: bool = False
    replicas: int = 1
    # The fewest pods it can have, autoscaled or not.
    min_replicas: int = 1
    autoscaled: bool = False
    # Losing every pod at once stops scheduling, the UI/Execution API or task execution.
    guarded: bool = False
    # Runs task code, which calls the api-server's Execution API.
    runs_tasks: bool = False
    # Calls the api-server (Execution API, REST API) without running tasks.
    calls_api_server: bool = False
    # Serves the UI/REST login: SimpleAuthManager's passwords file lives in this pod.
    authenticates_users: bool = False
    # Loads FAB's webserver_config.py (auth.webserverConfig): the api-server and the admin Job.
    reads_auth_config: bool = False
    # Connects to the DAG source (the git server) itself, without syncing DAGs.
    probes_dag_source: bool = False
    # DAG bundles it initializes (with `dags.bundles`): its own bundle for a dag-processor,
    # every bundle where tasks run (a task fetches its run's bundle version).
    fetches_bundles: tuple[str, ...] = ()
    # Waits for the schema in an init container (every Airflow pod but task pods and migrate).
    waits_for_migrations: bool = True
    # Network flows: what it connects to, and who outside this release connects to it.
    # Flows between components of this release are declared once, as the client's egress.
    egress: tuple[Flow, ...] = ()
    ingress: tuple[Flow, ...] = ()

    @property
    def account(self) -> str:
        return self.service_account or self.component

    @property
    def has_budget(self) -> bool:
        """A disruption budget only where the fewest replicas is above one: a budget on a single
        pod would block node drains."""
        return self.guarded and self.min_replicas > 1

    def needs(self, secret: Secret) -> bool:
        return secret in self.secrets

    @property
    def calls_kubernetes_api(self) -> bool:
        return self.launches_pods or self.reads_pod_logs

    @property
    def uses_database(self) -> bool:
        return self.airflow and (
            self.waits_for_migrations
            or self.needs(Secret.METADATA_DB)
            or self.needs(Secret.RESULT_BACKEND)
        )


def _optional(config: ResolvedConfig) -> frozenset[Secret]:
    """Secrets that exist only with some settings; a process that could use them gets them."""
    present: set[Secret] = set()
    if config.connections or config.variables:
        present.add(Secret.DECLARED)
    if config.logging.remote is not None and config.logging.remote.connection_secret is not None:
        present.add(Secret.REMOTE_LOGS)
    return frozenset(present)


def workload_needs(config: ResolvedConfig) -> tuple[Needs, ...]:
    """Every component that runs pods, with what it needs. The one catalogue of components."""
    celery = config.celery
    k8s_executor = config.kubernetes_executor
    local_executor = "LocalExecutor" in config.executors
    kpo = config.kubernetes_pod_operator.enabled
    optional = _optional(config)
    task_data = TASK_SECRETS & optional
    scaling = config.autoscaling
    api_min = (
        scaling.api_server.min_replicas
        if scaling.api_server.enabled
        else config.api_server.replicas
    )
    core = frozenset({Secret.METADATA_DB, Secret.FERNET_KEY})
    explicit = config.dags.explicit_bundles
    folder = config.dags.reads_dag_folder
    every_bundle = tuple(bundle.name for bundle in config.dags.bundles) if explicit else ()
    with_secret = {b.name for b in config.dags.bundles if b.connection_secret is not None}

    def bundle_secrets(names: tuple[str, ...]) -> frozenset[Secret]:
        return frozenset({Secret.BUNDLE_CONNECTIONS} if with_secret & set(names) else ())

    # Where tasks run: their run's version of any bundle is fetched there.
    runner_bundles = bundle_secrets(every_bundle)
    # With a shared logs claim one groomer (the scheduler's) serves every pod on it.
    groom_own = config.logging.volume is None
    celery_client = frozenset({Secret.BROKER_URL, Secret.RESULT_BACKEND} if celery else ())
    needs = [
        Needs(
            API_SERVER,
            task_logs=True,
            fetches_served_logs=True,
            secrets=core
            | {Secret.JWT_SECRET, Secret.API_SECRET_KEY}
            | task_data
            | ({Secret.ADMIN_PASSWORD} if config.auth.manager == "simple" else set()),
            authenticates_users=True,
            reads_auth_config=True,
            # KubernetesExecutor.get_task_log: a running task's log comes from its pod.
            reads_pod_logs=k8s_executor is not None,
            long_running=True,
            replicas=config.api_server.replicas,
            min_replicas=api_min,
            autoscaled=scaling.api_server.enabled,
            guarded=True,
        ),
        Needs(
            SCHEDULER,
            grooms_logs=True,
            task_logs=True,
            # The executor signs each task's Execution API token; LocalExecutor runs the tasks
            # (and their log server) in this pod, so they see what the scheduler sees.
            secrets=core
            | {Secret.JWT_SECRET}
            | celery_client
            | ({Secret.API_SECRET_KEY} | task_data | runner_bundles if local_executor else set()),
            reads_dags=folder,
            fetches_bundles=every_bundle if local_executor else (),
            launches_pods=k8s_executor is not None,
            runs_tasks=local_executor,
            log_server_ports=(WORKER_LOG_SERVER_PORT,) if local_executor else (),
            long_running=True,
            replicas=config.scheduler.replicas,
            min_replicas=config.scheduler.replicas,
            guarded=True,
        ),
        *(
            Needs(
                bundle.component,
                # Every processor runs as one ServiceAccount (one identity reading DAG sources).
                service_account=DAG_PROCESSOR,
                grooms_logs=groom_own,
                task_logs=True,
                secrets=core | task_data | bundle_secrets((bundle.name,)),
                reads_dags=not bundle.fetched,
                fetches_bundles=(bundle.name,) if explicit else (),
                long_running=True,
                replicas=bundle.processor.replicas,
                min_replicas=bundle.processor.replicas,
            )
            for bundle in config.dags.bundles
        ),
        Needs(
            TRIGGERER,
            grooms_logs=groom_own,
            task_logs=True,
            secrets=core | {Secret.API_SECRET_KEY} | task_data,
            reads_dags=folder,
            # Deferrable KubernetesPodOperator tasks watch their pods from the triggerer.
            launches_pods=kpo,
            log_server_ports=(TRIGGERER_LOG_SERVER_PORT,),
            long_running=True,
            replicas=config.triggerer.replicas,
            min_replicas=config.triggerer.replicas,
        ),
        Needs(MIGRATE, service_account=JOBS_ACCOUNT, secrets=core, waits_for_migrations=False),
    ]
    if config.downgrade_from is not None:
        # The newer image's `airflow db downgrade`, before the migration Job: what it reads
        # and reaches is the migration's.
        needs.append(
            Needs(DOWNGRADE, service_account=JOBS_ACCOUNT, secrets=core, waits_for_migrations=False)
        )
    for pool in celery.pools if celery is not None else ():
        needs.append(
            Needs(
                pool.component,
                # Every pool runs tasks as the same identity (cloud access for logs and tasks).
                service_account=WORKER,
                grooms_logs=groom_own,
                task_logs=True,
                # The log server checks log-fetch tokens with [api] secret_key.
                secrets=celery_client | {Secret.API_SECRET_KEY} | task_data | runner_bundles,
                reads_dags=folder,
                fetches_bundles=every_bundle,
                launches_pods=kpo,
                runs_tasks=True,
                log_server_ports=(WORKER_LOG_SERVER_PORT,),
                long_running=True,
                replicas=pool.replicas,
                min_replicas=(
                    pool.autoscaling.min_replicas if pool.autoscaling.enabled else pool.replicas
                ),
                autoscaled=pool.autoscaling.enabled,
                guarded=True,
            )
        )
    if celery is not None and celery.flower.enabled:
        needs.append(
            Needs(
                FLOWER,
                # Flower reads the broker only (Airflow 3.3: broker_url, basic auth).
                secrets=frozenset({Secret.BROKER_URL, Secret.FLOWER_AUTH}),
                long_running=True,
            )
        )
    if k8s_executor is not None:
        needs.append(
            Needs(
                TASK_POD,
                secrets=task_data | runner_bundles,
                reads_dags=folder,
                fetches_bundles=every_bundle,
                launches_pods=kpo,
                task_logs=True,
                runs_tasks=True,
                waits_for_migrations=False,
            )
        )
        if config.housekeeping.cleanup_pods.enabled:
            needs.append(Needs(POD_CLEANUP, launches_pods=True))
    if config.auth.manager == "fab" and config.auth.create_admin:
        needs.append(
            Needs(
                CREATE_ADMIN,
                service_account=JOBS_ACCOUNT,
                reads_auth_config=True,
                secrets=frozenset({Secret.METADATA_DB, Secret.ADMIN_PASSWORD}),
            )
        )
    if config.pools:
        needs.append(
            Needs(POOLS, service_account=JOBS_ACCOUNT, secrets=frozenset({Secret.METADATA_DB}))
        )
    if config.fernet.previous_keys:
        needs.append(Needs(ROTATE_FERNET, service_account=JOBS_ACCOUNT, secrets=core))
    if config.housekeeping.db_clean.enabled:
        needs.append(Needs(DB_CLEAN, secrets=frozenset({Secret.METADATA_DB})))
    if config.self_check.enabled:
        # A task runner's identity (its ServiceAccount: cloud identity for log storage) and the
        # flows a task depends on; it logs in to the api-server as the admin.
        runner = WORKER if celery else SCHEDULER if local_executor else TASK_POD
        needs.append(
            Needs(
                SELF_CHECK,
                service_account=runner,
                secrets=frozenset({Secret.METADATA_DB})
                | ({Secret.ADMIN_PASSWORD} if config.auth.create_admin else set())
                | (celery_client - {Secret.RESULT_BACKEND})
                | (optional & {Secret.REMOTE_LOGS}),
                task_logs=True,
                calls_api_server=True,
                probes_dag_source=True,
                # The workloads it runs after have waited; it checks the DB path itself and
                # names it when blocked (a schema wait would only time out).
                waits_for_migrations=False,
            )
        )
    # Not Airflow: they declare only what RBAC, policies and budgets derive from.
    if config.database.mode == "in-cluster":
        needs.append(Needs(POSTGRES, airflow=False, long_running=True, waits_for_migrations=False))
    if celery is not None:
        needs.append(Needs(REDIS, airflow=False, long_running=True, waits_for_migrations=False))
    if config.pgbouncer.enabled:
        pgbouncer_replicas = 2 if config.environment == "prod" else 1
        needs.append(
            Needs(
                PGBOUNCER,
                airflow=False,
                connects_to_postgres=True,
                long_running=True,
                waits_for_migrations=False,
                replicas=pgbouncer_replicas,
                min_replicas=pgbouncer_replicas,
            )
        )
    if config.metrics.enabled:
        needs.append(Needs(STATSD, airflow=False, long_running=True, waits_for_migrations=False))
    if config.backups.enabled:
        needs.append(
            Needs(BACKUP, airflow=False, connects_to_postgres=True, waits_for_migrations=False)
        )
    return tuple(_with_flows(config, needs))


POSTGRES_PORT = 5432
PGBOUNCER_PORT = 6432
REDIS_PORT = 6379
API_SERVER_PORT = 8080
FLOWER_PORT = 5555
STATSD_PORT = 9125
METRICS_PORT = 9102
KUBERNETES_API_PORTS = (443, 6443)
HTTPS_PORT = 443
SSH_PORT = 22


GIT_DAEMON_PORT = 9418
_SCHEME_PORTS = {
    "https://": HTTPS_PORT,
    "http://": 80,
    "ssh://": SSH_PORT,
    "git://": GIT_DAEMON_PORT,
}


def git_endpoint(repo: str) -> tuple[str, int] | None:
    """The host and port a Git client connects to for this URL (None: a local file:// repo)."""
    if repo.startswith("file://"):
        return None
    for scheme, default_port in _SCHEME_PORTS.items():
        if repo.startswith(scheme):
            authority = repo.removeprefix(scheme).split("/", 1)[0].rsplit("@", 1)[-1]
            host, _, port = authority.partition(":")
            return host, int(port) if port.isdigit() else default_port
    # scp-like: [user@]host:path, always SSH on its default port
    return repo.split(":", 1)[0].rsplit("@", 1)[-1], SSH_PORT


def git_host(repo: str) -> str | None:
    """The host git-sync connects to (None: a local file:// repo)."""
    endpoint = git_endpoint(repo)
    return endpoint[0] if endpoint else None


def git_port(repo: str) -> int | None:
    """The port git-sync connects to, from the repository URL (None: a local file:// repo)."""
    endpoint = git_endpoint(repo)
    return endpoint[1] if endpoint else None


def dag_source_ports(config: ResolvedConfig, bundles: tuple[str, ...] | None) -> tuple[int, ...]:
    """Ports of the servers of these bundles (None: every DAG source, git-sync's too): a Git
    repository's from its URL, an object store's HTTPS."""
    ports: set[int] = set()
    for bundle in config.dags.fetched_bundles:
        if bundles is not None and bundle.name not in bundles:
            continue
        if bundle.git is not None and (port := git_port(bundle.git.repo)) is not None:
            ports.add(port)
        if bundle.object_store is not None:
            ports.add(HTTPS_PORT)
    git_sync = config.dags.git_sync
    sync_port = git_port(git_sync.repo) if git_sync is not None else None
    if bundles is None and config.dags.delivery == "git-sync" and sync_port is not None:
        ports.add(sync_port)
    return tuple(sorted(ports))


def _database_flow(config: ResolvedConfig, present: set[str]) -> Flow:
    if config.database.mode == "in-cluster":
        if PGBOUNCER in present:
            return Flow(Peer(component=PGBOUNCER), (PGBOUNCER_PORT,), purpose="metadata DB")
        return Flow(Peer(component=POSTGRES), (POSTGRES_PORT,), purpose="metadata DB")
    assert config.database.external is not None
    # The external server's address is not known here: its port, to any address.
    return Flow(Peer(), (config.database.external.port,), purpose="metadata DB")


def _external_ingress(config: ResolvedConfig, item: Needs, database: Flow) -> list[Flow]:
    """Who outside this release connects to a component."""
    policies = config.network_policies
    sources: list[Flow] = []
    if item.component in {API_SERVER, FLOWER}:
        port = API_SERVER_PORT if item.component == API_SERVER else FLOWER_PORT
        controller = Peer(namespace=policies.ingress_controller_namespace)
        sources.append(Flow(controller, (port,), purpose="ingress controller"))
    if item.component == STATSD:
        prometheus = Peer(namespace=config.metrics.prometheus_namespace)
        sources.append(Flow(prometheus, (METRICS_PORT,), purpose="Prometheus"))
    keda_scales = config.celery is not None and config.celery.autoscaled
    if database.peer.component == item.component and keda_scales:
        keda = Peer(namespace=policies.keda_namespace)
        sources.append(Flow(keda, database.ports, purpose="KEDA's postgresql scaler"))
    return sources


def _with_flows(config: ResolvedConfig, needs: list[Needs]) -> list[Needs]:
    """Each component's network flows, from what it does."""
    policies = config.network_policies
    database = _database_flow(config, {n.component for n in needs})
    git_sync = config.dags.git_sync if config.dags.delivery == "git-sync" else None
    repo_port = git_port(git_sync.repo) if git_sync else None
    log_servers = [n for n in needs if n.log_server_ports]
    result = []
    for item in needs:
        egress: list[Flow] = []
        if item.uses_database:
            egress.append(database)
        if item.needs(Secret.BROKER_URL):
            egress.append(Flow(Peer(component=REDIS), (REDIS_PORT,), purpose="Celery broker"))
        if item.runs_tasks or item.calls_api_server:
            api = Peer(component=API_SERVER)
            egress.append(Flow(api, (API_SERVER_PORT,), purpose="Execution API"))
        if item.airflow and config.metrics.enabled:
            egress.append(Flow(Peer(component=STATSD), (STATSD_PORT,), "UDP", "metrics"))
        if item.calls_kubernetes_api:
            api_server = Peer(cidrs=tuple(policies.kubernetes_api_cidrs))
            egress.append(Flow(api_server, KUBERNETES_API_PORTS, purpose="Kubernetes API"))
        source = Peer(cidrs=tuple(policies.dag_source_cidrs))
        if (item.reads_dags or item.probes_dag_source) and repo_port is not None:
            egress.append(Flow(source, (repo_port,), purpose="git"))
        bundle_ports = dag_source_ports(
            config, None if item.probes_dag_source else item.fetches_bundles
        )
        if item.fetches_bundles or item.probes_dag_source:
            egress += [
                Flow(source, (port,), purpose="DAG bundle")
                for port in bundle_ports
                if port != repo_port or not (item.reads_dags or item.probes_dag_source)
            ]
        if item.task_logs and config.logging.remote is not None:
            storage = Peer(cidrs=tuple(policies.log_storage_cidrs))
            egress.append(Flow(storage, (HTTPS_PORT,), purpose="remote task logs"))
        if item.fetches_served_logs:
            egress += [
                Flow(Peer(component=s.component), s.log_server_ports, purpose="task logs")
                for s in log_servers
            ]
        if item.connects_to_postgres:
            egress.append(Flow(Peer(component=POSTGRES), (POSTGRES_PORT,), purpose="Postgres"))
        if item.airflow:
            egress += [
                Flow(Peer(cidrs=tuple(rule.cidrs)), (port.port,), port.protocol, "extra egress")
                for rule in policies.extra_egress
                for port in rule.ports
            ]
        ingress = _external_ingress(config, item, database)
        result.append(dataclasses.replace(item, egress=tuple(egress), ingress=tuple(ingress)))
    return result


def needs_of(config: ResolvedConfig, component: str) -> Needs:
    for needs in workload_needs(config):
        if needs.component == component:
            return needs
    raise KeyError(component)


def pod_launchers(config: ResolvedConfig) -> tuple[str, ...]:
    """ServiceAccounts that launch pods, each once (worker pools share one)."""
    return tuple(dict.fromkeys(n.account for n in workload_needs(config) if n.launches_pods))


def pod_log_readers(config: ResolvedConfig) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.account for n in workload_needs(config) if n.reads_pod_logs))


def log_servers(config: ResolvedConfig) -> tuple[Needs, ...]:
    return tuple(n for n in workload_needs(config) if n.log_server_ports)


def budgeted(config: ResolvedConfig) -> tuple[str, ...]:
    if not config.availability.pod_disruption_budgets:
        return ()
    return tuple(n.component for n in workload_needs(config) if n.has_budget)


def database_session_pods(config: ResolvedConfig) -> int:
    """Pods of long-running Airflow processes that hold metadata DB sessions (PgBouncer sizing)."""
    return sum(
        n.replicas
        for n in workload_needs(config)
        if n.airflow and n.long_running and n.needs(Secret.METADATA_DB)
    )

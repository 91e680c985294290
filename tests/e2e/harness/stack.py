"""One stack, end to end: render it, play its database, run its Jobs and Deployments, use it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .api import ApiClient, DagRunResult, run_secret_scope_dag, run_smoke_dag
from .cluster import HarnessError, LocalCluster, ProbeResult
from .procs import tail
from .services import PostgresServer, TcpListener


@dataclass
class StackRun:
    stack: str
    rendering: Any
    cluster: LocalCluster
    admin_username: str
    admin_password: str
    client: ApiClient | None = None
    startup_seconds: dict[str, float] = field(default_factory=dict)
    result: DagRunResult | None = None
    seconds_to_first_success: float | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    closed_ports: list[str] = field(default_factory=list)
    operator_password: str | None = None
    deviations: list[str] = field(default_factory=list)
    statsd_metrics: set[str] = field(default_factory=set)
    timings: dict[str, float] = field(default_factory=dict)
    dag_timeout: float = 240
    # The hostile task's run: its state, the secret labels it found, its log.
    secret_scope: tuple[str, list[str], str] | None = None
    git_server: TcpListener | None = None
    self_check_log: str = ""

    def stop(self) -> None:
        self.cluster.stop()
        if self.git_server is not None:
            self.git_server.stop()


def operator_password() -> str:
    """What a platform's secret manager would hold; special characters exercise URL encoding."""
    return f"op-{secrets.token_urlsafe(12)}@:/%+!"


def prepare_stack(
    stack: str,
    *,
    base_dir: Path,
    venv: Path,
    postgres: PostgresServer,
    dag_files: list[Path],
    dag_timeout: float = 240,
    cluster_override: dict[str, Any] | None = None,
    extra_config: dict[str, Any] | None = None,
    external_hosts: dict[tuple[str, int], int] | None = None,
    keep_database: bool = False,
) -> StackRun:
    """Render the stack and lay out its pods (no process runs yet); then call `execute`."""
    from airflow_component.config import parse_config
    from airflow_component.needs import git_host, git_port
    from tests.support.rendering import cluster_config, render_stack

    deviations = []
    raw = cluster_override or cluster_config(stack)
    if "KubernetesExecutor" in str(raw.get("executors", "")):
        # The KubernetesExecutor launches pods through the Kubernetes API, which does not exist
        # here: render the same stack with its other executors (documented, never silent).
        kept = [
            e.strip() for e in str(raw["executors"]).split(",") if e.strip() != "KubernetesExecutor"
        ]
        raw = {**raw, "executors": ",".join(kept) or "LocalExecutor"}
        raw.pop("kubernetesExecutor", None)
        cluster_override = raw
        deviations.append(
            f"executors rendered as {raw['executors']!r}: "
            "the KubernetesExecutor needs a Kubernetes API"
        )
    remote = (raw.get("logging") or {}).get("remote")
    if remote:
        # Remote task logs go to object storage (s3://, gs://, ...) that does not exist here;
        # the stack runs with its local log volumes instead (documented, never silent).
        raw = {**raw, "logging": {k: v for k, v in raw["logging"].items() if k != "remote"}}
        cluster_override = raw
        deviations.append(f"logging.remote ({remote.get('baseFolder')}) left out: no object store")
    rendering = render_stack(stack, cluster=cluster_override, extra_config=extra_config)
    config = parse_config(raw)
    namespace = rendering.outputs["namespace"]

    operator_secrets = []
    external = {}
    password = None
    if config.database.mode == "external":
        ext = config.database.external
        assert ext is not None
        if ext.password_secret is not None:
            # Play the operator: the Secret the component expects to exist, with our password.
            password = operator_password()
            operator_secrets.append(
                (namespace, ext.password_secret.name, {ext.password_secret.key: password})
            )
        else:
            password = (extra_config or {}).get("airflow-k8s:externalDatabasePassword")
            if password is None:
                raise HarnessError(
                    "external database without passwordSecret or externalDatabasePassword"
                )
        postgres.provision(ext.database, ext.user, password, superuser=False)
        external[(ext.host, ext.port)] = postgres.port

    # Servers outside the cluster the test runs itself (a git daemon): host:port -> local port.
    external.update(external_hosts or {})
    git = config.dags.git_sync if config.dags.delivery == "git-sync" else None
    git_server = None
    if git is not None and (host := git_host(git.repo)) and (port := git_port(git.repo)):
        # git-sync is played; the git server a check connects to is played by a listener.
        git_server = TcpListener()
        external[(host, port)] = git_server.port
        deviations.append(f"git server {host}:{port} played by a TCP listener")
    cluster = LocalCluster(
        name=stack,
        manifests=[r.manifest for r in in_dependency_order(rendering.kubernetes)],
        jobs_after_workloads=jobs_after_workloads(rendering),
        base_dir=base_dir,
        venv=venv,
        dag_files=dag_files,
        postgres=postgres,
        operator_secrets=operator_secrets,
        external_databases=external,
        git_sub_path=(config.dags.git_sync.sub_path or "") if config.dags.git_sync else "",
    )
    run = StackRun(
        git_server=git_server,
        stack=stack,
        rendering=rendering,
        cluster=cluster,
        admin_username=rendering.outputs["adminUsername"],
        admin_password=rendering.outputs["adminPassword"],
        operator_password=password,
        dag_timeout=dag_timeout,
        deviations=deviations,
    )
    if not keep_database:
        # A fresh database; kept for an upgrade, which renders the same release again.
        cluster.provision_in_cluster_databases()
    return run


def execute(run: StackRun) -> None:
    """Run the Jobs, start the Deployments, log in, run the DAG, probe. Raises on a problem."""
    cluster = run.cluster

    t0 = time.monotonic()
    cluster.started_at = t0
    cluster.start_infrastructure()
    run.timings["infrastructure"] = time.monotonic() - t0
    cluster.run_jobs()
    run.timings["jobs"] = time.monotonic() - t0
    cluster.start_workloads()
    run.timings["workloads_started"] = time.monotonic() - t0
    run.startup_seconds = cluster.wait_started(network_probes_only=True)
    run.timings["probes_passed"] = time.monotonic() - t0
    # Pulumi awaits the Deployments' readiness, then the Jobs that depend on them (self-check).
    cluster.run_jobs(after_workloads=True)
    run.self_check_log = "\n".join(
        tail(c.log_path, 60)
        for pod in cluster.job_pods
        if pod.workload.name in cluster.jobs_after_workloads
        for c in pod.containers
    )
    run.timings["jobs_after_workloads"] = time.monotonic() - t0

    client = log_in(run)
    run.result = run_smoke_dag(client, timeout=run.dag_timeout, alive=cluster.check_alive)
    if run.result.state == "success":
        run.seconds_to_first_success = run.result.finished_at - t0
    run.timings["dag_finished"] = time.monotonic() - t0
    run.secret_scope = run_secret_scope_dag(
        client, secret_needles(run), timeout=run.dag_timeout, alive=cluster.check_alive
    )
    cluster.check_alive()
    run.probes = cluster.probe_all()
    run.closed_ports = cluster.closed_ports()
    run.statsd_metrics = {name for sink in cluster.statsd_sinks for name in sink.metric_names()}
    run.timings["probes_done"] = time.monotonic() - t0


@contextmanager
def stopped_on_failure(label: str, run: StackRun, *also: Callable[[], object]) -> Iterator[None]:
    """A fixture's set-up: when it fails, print the processes' log tails (the only trace of
    why), stop them and whatever else `also` stops, and raise."""
    try:
        yield
    except BaseException:
        print(f"\n[e2e] {label} failed; process log tails:\n{run.cluster.log_tails()}")
        run.stop()
        for stop in also:
            stop()
        raise


def start_and_log_in(run: StackRun, *, jobs: bool = True) -> ApiClient:
    """The short path of `execute` for a test about something else: Jobs (unless `jobs` is
    false), the Deployments until their probes pass, and the admin's login. No DAG is run."""
    cluster = run.cluster
    cluster.started_at = cluster.started_at or time.monotonic()
    cluster.start_infrastructure()
    if jobs:
        cluster.run_jobs()
    cluster.start_workloads()
    run.startup_seconds = cluster.wait_started(network_probes_only=True)
    return log_in(run)


def log_in(run: StackRun) -> ApiClient:
    """The admin's session through the rendered public URL (its host and scheme, as the
    ingress passes them on)."""
    url = run.rendering.outputs["url"]
    port, host_header = run.cluster.network.external_url_endpoint(url)
    client = ApiClient(
        base_url=f"http://127.0.0.1:{port}",
        host_header=host_header,
        forwarded_proto="https" if url.startswith("https://") else None,
    )
    client.login(run.admin_username, run.admin_password)
    run.client = client
    return client


def secret_needles(run: StackRun) -> dict[str, str]:
    """The deployment's secret values, and one value every container's files hold (a canary
    that shows the search reads mounted files)."""
    from airflow_component.airflow_env import AIRFLOW_CFG

    data = run.rendering.secret_data()
    needles = {
        "jwt-secret": data.get(("airflow-keys", "jwt-secret")),
        "fernet-key": data.get(("airflow-keys", "fernet-key")),
        "api-secret-key": data.get(("airflow-keys", "api-secret-key")),
        "admin-password": run.admin_password,
        "db-password": data.get(("airflow-postgres", "password")) or run.operator_password,
        "cfg-marker": AIRFLOW_CFG.strip(),
    }
    if needles["db-password"]:
        # In a connection URL the password is URL-encoded.
        needles["db-password-in-url"] = quote(needles["db-password"], safe="")
    return {label: value for label, value in needles.items() if value}


def in_dependency_order(resources: list[Any]) -> list[Any]:
    """Resources in the order Pulumi would finish them: each after what it `depends_on`
    (stable otherwise), so Jobs run as `pulumi up` would await them, not as the mock saw them."""
    by_urn = {r.urn: r for r in resources}
    ordered: list[Any] = []
    placed: set[str] = set()

    def place(resource: Any, path: tuple[str, ...] = ()) -> None:
        if resource.urn in placed:
            return
        if resource.urn in path:
            raise HarnessError(f"dependency cycle through {resource.name}")
        for dependency in resource.options.get("dependencies", []):
            if dependency in by_urn:
                place(by_urn[dependency], (*path, resource.urn))
        placed.add(resource.urn)
        ordered.append(resource)

    for resource in resources:
        place(resource)
    return ordered


def jobs_after_workloads(rendering: Any) -> list[str]:
    """Jobs that depend on an Airflow Deployment (or on the part that holds one): `pulumi up`
    starts them once those workloads are ready. (Depending on PgBouncer's Deployment, as the
    migration Job does, is not that: it is infrastructure the harness starts first.)"""
    from .cluster import image_role

    holders = set()
    for resource in rendering.kubernetes:
        containers = (resource.inputs.get("spec") or {}).get("template", {}).get("spec", {})
        images = {image_role(c["image"]) for c in containers.get("containers") or []}
        if resource.kind == "Deployment" and "airflow" in images:
            holders |= {resource.urn, resource.parent}
    return [
        str(resource.object_name)
        for resource in rendering.kubernetes
        if resource.kind == "Job" and holders & set(resource.options.get("dependencies", []))
    ]

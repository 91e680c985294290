"""Production features under mocks: metrics, logs, PgBouncer, autoscaling, housekeeping,
declarative connections/variables/pools, Fernet rotation, backups."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import yaml

from tests.support.rendering import (
    CapturingMocks,
    Rendering,
    cluster_config,
    render_program,
    render_stack,
    stack_config,
)


def render(stack: str = "local", **settings: Any) -> Rendering:
    cluster = cluster_config(stack)
    cluster.update(settings)
    return render_stack(stack, cluster=cluster)


def airflow_env(rendering: Rendering, deployment: str = "airflow-scheduler") -> dict[str, Any]:
    pod = rendering.one("Deployment", deployment).inputs["spec"]["template"]["spec"]
    return {e["name"]: e for e in pod["containers"][0]["env"]}


def cron_pod(rendering: Rendering, name: str) -> dict[str, Any]:
    cron = rendering.one("CronJob", name).inputs["spec"]
    return cron["jobTemplate"]["spec"]["template"]["spec"]


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_statsd_exporter_and_airflow_settings() -> None:
    local = {d.object_name for d in render_stack("local").of_kind("Deployment")}
    assert "airflow-statsd" not in local, "metrics are off by default locally"
    rendering = render("local", metrics={"enabled": True, "serviceMonitor": True})
    env = airflow_env(rendering)
    assert env["AIRFLOW__METRICS__STATSD_ON"]["value"] == "True"
    host = env["AIRFLOW__METRICS__STATSD_HOST"]["value"]
    port = int(env["AIRFLOW__METRICS__STATSD_PORT"]["value"])
    service = rendering.one("Service", "airflow-statsd")
    assert host == "airflow-statsd.airflow.svc.cluster.local"
    udp = [p for p in service.inputs["spec"]["ports"] if p.get("protocol") == "UDP"]
    assert [p["port"] for p in udp] == [port]
    assert service.inputs["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    exporter = rendering.one("Deployment", "airflow-statsd").inputs["spec"]["template"]
    args = exporter["spec"]["containers"][0]["args"]
    assert f"--statsd.listen-udp=:{port}" in args
    mapping = rendering.one("ConfigMap", "airflow-statsd").inputs["data"]["mappings.yml"]
    assert "airflow_dagrun_duration_success" in mapping
    (monitor,) = [r for r in rendering.resources if r.typ.endswith("ServiceMonitor")]
    assert monitor.inputs["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor.inputs["spec"]["endpoints"][0]["port"] == "metrics"


# --- logs ------------------------------------------------------------------------------------


def test_remote_logging_to_s3_with_connection_secret_and_irsa() -> None:
    rendering = render(
        "local",
        logging={
            "remote": {
                "baseFolder": "s3://company-airflow-logs/prod",
                "connectionSecret": {"name": "aws-logs", "key": "uri"},
            }
        },
    )
    env = airflow_env(rendering)
    assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"]["value"] == "True"
    assert (
        env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"]["value"] == "s3://company-airflow-logs/prod"
    )
    conn_id = env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"]["value"]
    ref = env[f"AIRFLOW_CONN_{conn_id.upper()}"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "aws-logs", "key": "uri"}


def test_logs_volume_replaces_the_emptydir_everywhere_logs_are_written() -> None:
    rendering = render("local", logging={"volume": {"size": "50Gi", "storageClassName": "efs"}})
    claim = rendering.one("PersistentVolumeClaim", "airflow-logs").inputs["spec"]
    assert claim["accessModes"] == ["ReadWriteMany"] and claim["storageClassName"] == "efs"
    for name in ("airflow-scheduler", "airflow-triggerer", "airflow-api-server"):
        pod = rendering.one("Deployment", name).inputs["spec"]["template"]["spec"]
        (logs,) = [v for v in pod["volumes"] if v["name"] == "logs"]
        assert logs == {"name": "logs", "persistentVolumeClaim": {"claimName": "airflow-logs"}}


def test_kubernetes_executor_without_log_persistence_warns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    render("local", executors="KubernetesExecutor")
    assert any("task logs" in w for w in warnings)
    warnings.clear()
    render("local", executors="KubernetesExecutor", logging={"volume": {"storageClassName": "efs"}})
    assert not any("task logs" in w for w in warnings)


# --- PgBouncer -------------------------------------------------------------------------------


def test_pgbouncer_sits_between_airflow_and_postgres() -> None:
    rendering = render("staging", pgbouncer={"enabled": True}, parallelism=24)
    data = rendering.secret_data()
    url = data[("airflow-metadata-db", "connection")]
    assert "@airflow-pgbouncer.airflow-staging.svc.cluster.local:6432/airflow" in url
    ini = data[("airflow-pgbouncer", "pgbouncer.ini")]
    assert "host=airflow-postgres.airflow-staging.svc.cluster.local port=5432" in ini
    password = data[("airflow-postgres", "password")]
    assert data[("airflow-pgbouncer", "userlist.txt")] == f'"airflow" "{password}"\n'
    pool = int(next(line for line in ini.splitlines() if "default_pool_size" in line).split()[-1])
    assert 24 <= pool <= 90
    bigger = render("staging", pgbouncer={"enabled": True}, parallelism=48)
    bigger_ini = bigger.secret_data()[("airflow-pgbouncer", "pgbouncer.ini")]
    assert f"default_pool_size = {pool}" not in bigger_ini, "pool size follows parallelism"
    deployment = rendering.one("Deployment", "airflow-pgbouncer").inputs["spec"]["template"]
    assert "checksum/config" in deployment["metadata"]["annotations"]


def test_pgbouncer_is_on_by_default_only_in_prod_with_in_cluster_postgres() -> None:
    prod_like = cluster_config("staging")
    prod_like["environment"] = "prod"
    rendering = render_stack("staging", cluster=prod_like)
    assert rendering.one("Deployment", "airflow-pgbouncer")
    assert not [
        d
        for d in render_stack("staging").of_kind("Deployment")
        if "pgbouncer" in str(d.object_name)
    ]
    assert not [
        d for d in render_stack("prod").of_kind("Deployment") if "pgbouncer" in str(d.object_name)
    ]


# --- autoscaling -----------------------------------------------------------------------------


def test_api_server_hpa_and_keda_workers_keep_pdbs_consistent() -> None:
    rendering = render(
        "staging",
        autoscaling={
            "apiServer": {"enabled": True, "minReplicas": 2, "maxReplicas": 5},
            "celeryWorkers": {"enabled": True, "minReplicas": 1, "maxReplicas": 8},
        },
    )
    hpa = rendering.one("HorizontalPodAutoscaler", "airflow-api-server").inputs["spec"]
    assert hpa["scaleTargetRef"]["name"] == "airflow-api-server"
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    api = rendering.one("Deployment", "airflow-api-server").inputs["spec"]
    assert "replicas" not in api, "the HPA owns the replica count"
    (scaled,) = [r for r in rendering.resources if r.typ.endswith("ScaledObject")]
    assert scaled.inputs["spec"]["maxReplicaCount"] == 8
    assert "task_instance" in scaled.inputs["spec"]["triggers"][0]["metadata"]["query"]
    keda_url = rendering.secret_data()[("airflow-metadata-db", "keda-connection")]
    assert keda_url.startswith("postgresql://")
    budgets = {r.object_name for r in rendering.of_kind("PodDisruptionBudget")}
    # min 2 api-servers: budget; min 1 worker: a budget would block node drains.
    assert budgets == {"airflow-api-server"}


# --- housekeeping ----------------------------------------------------------------------------


def test_db_clean_cron_job_uses_the_configured_retention_and_schedule() -> None:
    rendering = render(
        "local", housekeeping={"dbClean": {"schedule": "30 4 * * 0", "retentionDays": 14}}
    )
    cron = rendering.one("CronJob", "airflow-db-clean").inputs["spec"]
    assert cron["schedule"] == "30 4 * * 0"
    assert cron["concurrencyPolicy"] == "Forbid"
    args = cron_pod(rendering, "airflow-db-clean")["containers"][0]["args"]
    assert args[:2] == ["bash", "-c"]
    assert "airflow db clean" in args[2] and "-14 days" in args[2] and "--yes" in args[2]


def test_pod_cleanup_only_with_the_kubernetes_executor() -> None:
    assert not [
        c for c in render_stack("local").of_kind("CronJob") if "pod-cleanup" in str(c.object_name)
    ]
    rendering = render("local", executors="KubernetesExecutor")
    pod = cron_pod(rendering, "airflow-pod-cleanup")
    assert pod["containers"][0]["args"][:2] == ["kubernetes", "cleanup-pods"]
    assert pod["automountServiceAccountToken"] is True


# --- declarative connections, variables, pools -----------------------------------------------


DECLARED = {
    "connections": {
        "warehouse": {"fromConfig": "warehouseUri"},
        "s3_default": {"secret": {"name": "aws-conn", "key": "uri"}},
    },
    "variables": {
        "environment_name": {"value": "staging"},
        "api_token": {"fromConfig": "apiToken"},
    },
    "pools": {"warehouse": {"slots": 4, "description": "Warehouse queries"}},
}


def render_declared(pools: dict[str, Any] | None = None, token: str = "t0ken") -> Rendering:
    cluster = cluster_config("local")
    cluster.update(DECLARED)
    if pools is not None:
        cluster["pools"] = pools
    config = {
        **stack_config("local"),
        "airflow-k8s:cluster": cluster,
        "airflow-k8s:warehouseUri": "postgresql://dwh:secret@dwh.example.com/dwh",
        "airflow-k8s:apiToken": token,
    }
    return render_program(
        config, secret_keys=["airflow-k8s:warehouseUri", "airflow-k8s:apiToken"], stack="local"
    )


def test_connections_and_variables_arrive_as_env_from_secrets() -> None:
    rendering = render_declared()
    env = airflow_env(rendering)
    refs = {
        name: item["valueFrom"]["secretKeyRef"] for name, item in env.items() if "valueFrom" in item
    }
    values = rendering.secret_data()
    assert values[
        (refs["AIRFLOW_CONN_WAREHOUSE"]["name"], refs["AIRFLOW_CONN_WAREHOUSE"]["key"])
    ] == ("postgresql://dwh:secret@dwh.example.com/dwh")
    assert refs["AIRFLOW_CONN_S3_DEFAULT"] == {"name": "aws-conn", "key": "uri"}
    assert (
        values[
            (
                refs["AIRFLOW_VAR_ENVIRONMENT_NAME"]["name"],
                refs["AIRFLOW_VAR_ENVIRONMENT_NAME"]["key"],
            )
        ]
        == "staging"
    )
    assert (
        values[(refs["AIRFLOW_VAR_API_TOKEN"]["name"], refs["AIRFLOW_VAR_API_TOKEN"]["key"])]
        == "t0ken"
    )
    declared = rendering.one("Secret", "airflow-declared")
    assert declared.secret_paths, "declared values are Pulumi secrets"


def test_changing_a_declared_value_rolls_the_airflow_pods() -> None:
    first, second = render_declared(token="one"), render_declared(token="two")
    before = {(r.kind, r.object_name): r.inputs for r in first.kubernetes}
    after = {(r.kind, r.object_name): r.inputs for r in second.kubernetes}
    changed = {key for key in after if before.get(key) != after[key]}
    assert ("Secret", "airflow-declared") in changed
    assert ("Deployment", "airflow-scheduler") in changed
    assert ("StatefulSet", "airflow-postgres") not in changed


def test_missing_secret_stack_config_key_is_refused_naming_it() -> None:
    cluster = cluster_config("local")
    cluster.update(DECLARED)
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=r"airflow-k8s:(apiToken|warehouseUri): "):
        render_program({**stack_config("local"), "airflow-k8s:cluster": cluster}, mocks=mocks)
    assert mocks.resources == []


def test_pools_job_reruns_exactly_when_pools_change() -> None:
    first = render_declared()
    job = [j for j in first.of_kind("Job") if "pools" in str(j.object_name)]
    assert len(job) == 1
    args = job[0].inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["pools", "import"]
    pools = json.loads(first.one("ConfigMap", "airflow-pools").inputs["data"]["pools.json"])
    assert pools == {
        "warehouse": {"slots": 4, "description": "Warehouse queries", "include_deferred": False}
    }
    same = render_declared()
    assert [j.object_name for j in same.of_kind("Job") if "pools" in str(j.object_name)] == [
        job[0].object_name
    ]
    changed = render_declared(pools={"warehouse": {"slots": 8, "description": "Warehouse queries"}})
    renamed = [j.object_name for j in changed.of_kind("Job") if "pools" in str(j.object_name)]
    assert renamed != [job[0].object_name]


# --- Fernet rotation -------------------------------------------------------------------------


def test_fernet_rotation_combines_new_and_old_keys_and_runs_a_job() -> None:
    assert not [j for j in render_stack("local").of_kind("Job") if "rotate" in str(j.object_name)]
    rendering = render(
        "local",
        fernet={"generation": 2, "previousKeys": [{"name": "fernet-old", "key": "fernet-key"}]},
    )
    env = airflow_env(rendering)
    combined = env["AIRFLOW__CORE__FERNET_KEY"]["value"]
    names = [part.strip("$()") for part in combined.split(",")]
    assert len(names) == 2
    assert env[names[0]]["valueFrom"]["secretKeyRef"]["name"] == "airflow-keys"
    assert env[names[1]]["valueFrom"]["secretKeyRef"] == {"name": "fernet-old", "key": "fernet-key"}
    (job,) = [j for j in rendering.of_kind("Job") if "rotate" in str(j.object_name)]
    assert job.inputs["spec"]["template"]["spec"]["containers"][0]["args"] == ["rotate-fernet-key"]
    (seed,) = [r for r in rendering.resources if r.name == "airflow-fernet-seed"]
    assert seed.inputs["keepers"] == {"generation": "2"}
    (default_seed,) = [
        r for r in render_stack("local").resources if r.name == "airflow-fernet-seed"
    ]
    assert "keepers" not in default_seed.inputs, "existing deployments keep their key"


# --- backups ---------------------------------------------------------------------------------


def test_backups_cron_job_dumps_postgres_into_a_protected_claim() -> None:
    rendering = render_stack("staging")
    pod = cron_pod(rendering, "airflow-backup")
    container = pod["containers"][0]
    assert container["image"].startswith("postgres:")
    assert "pg_dump --format=custom" in container["command"][2]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGHOST"]["value"] == "airflow-postgres.airflow-staging.svc.cluster.local"
    assert "secretKeyRef" in env["PGPASSWORD"]["valueFrom"]
    claim = rendering.one("PersistentVolumeClaim", "airflow-backups")
    assert claim.options["protect"] is True
    assert not [
        c for c in render_stack("local").of_kind("CronJob") if "backup" in str(c.object_name)
    ]


@pytest.mark.parametrize(
    ("folder", "scheme"),
    [("s3://logs-bucket/p", "aws"), ("gs://logs-bucket/p", "google-cloud-platform")],
)
def test_the_remote_log_connection_exists_where_logs_are_written_or_read(
    folder: str, scheme: str
) -> None:
    """Airflow's remote log handler looks up `[logging] remote_log_conn_id`: every process that
    writes or reads task logs must be able to resolve that id (without a connection Secret: one
    with no credentials, so the SDK uses the pod's cloud identity)."""
    rendering = render(
        "prod",
        executors="CeleryExecutor,KubernetesExecutor",
        logging={"remote": {"baseFolder": folder, "connectionId": "task_logs"}},
    )
    checked = set()
    for resource, spec in rendering.pod_specs():
        component = resource.inputs["metadata"]["labels"]["app.kubernetes.io/component"]
        if component not in {"api-server", "scheduler", "dag-processor", "triggerer", "worker"}:
            continue
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"]["value"] == "task_logs"
        assert env["AIRFLOW_CONN_TASK_LOGS"]["value"] == f"{scheme}://", component
        checked.add(component)
    template = yaml.safe_load(
        rendering.one("ConfigMap", "airflow-pod-template").inputs["data"]["pod_template_file.yaml"]
    )
    base = {e["name"]: e for e in template["spec"]["containers"][0]["env"]}
    assert base["AIRFLOW_CONN_TASK_LOGS"]["value"] == f"{scheme}://"
    assert len(checked) == 5


def test_locally_a_saved_dag_appears_within_seconds() -> None:
    """Airflow lists the DAG folder every `refresh_interval` (300 s by default) and re-parses a
    file every `min_file_process_interval` (30 s): on a laptop both must be a few seconds."""
    env = airflow_env(render("local"), "airflow-dag-processor")
    for option in ("REFRESH_INTERVAL", "MIN_FILE_PROCESS_INTERVAL"):
        assert int(env[f"AIRFLOW__DAG_PROCESSOR__{option}"]["value"]) <= 10
    assert "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL" not in airflow_env(render("prod"))

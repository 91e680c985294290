"""The component under Pulumi mocks: what each stack registers and how it is wired."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pulumi
import pytest
from cryptography.fernet import Fernet

from airflow_component import AIRFLOW_VERSION, AirflowCluster, AirflowClusterArgs, AirflowConfig
from airflow_component.component import TYPE_TOKEN
from tests.support.rendering import Rendering, cluster_config, render_stack, run_under_mocks

Renderer = Callable[[str], Rendering]
AIRFLOW_PROCESSES = ("api-server", "scheduler", "dag-processor", "triggerer")
SHARED_SECRET_ENV = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)


def containers(rendering: Rendering) -> Iterator[tuple[str, dict[str, Any]]]:
    for resource, spec in rendering.pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f"{resource.kind}/{resource.object_name}/{container['name']}", container


def airflow_containers(rendering: Rendering) -> Iterator[tuple[str, dict[str, Any]]]:
    """Containers running Airflow (the image entrypoint runs `airflow <args>`); a `command`
    replaces the entrypoint, as in the init container copying the SimpleAuth passwords."""
    for where, container in containers(rendering):
        if container["image"].startswith("apache/airflow:") and "command" not in container:
            yield where, container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def secret_value(rendering: Rendering, env_item: dict[str, Any]) -> str:
    ref = env_item["valueFrom"]["secretKeyRef"]
    return rendering.secret_data()[(ref["name"], ref["key"])]


# --- what each stack registers -------------------------------------------------------------


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_stack_registers_a_complete_deployment(rendered_stack: Renderer, stack: str) -> None:
    rendering = rendered_stack(stack)
    kinds = Counter(resource.kind for resource in rendering.kubernetes)
    assert kinds["Namespace"] == 1
    assert kinds["Secret"] >= 2
    deployments = {r.object_name for r in rendering.of_kind("Deployment")}
    extra = {
        "local": set(),
        "staging": {"worker", "flower", "statsd"},
        "prod": {"worker", "statsd"},
    }[stack]
    assert deployments == {f"airflow-{process}" for process in {*AIRFLOW_PROCESSES, *extra}}
    jobs = [r.object_name for r in rendering.of_kind("Job")]
    # In-cluster Postgres with backups is snapshotted before the migration (#15).
    snapshots = [j for j in jobs if str(j).startswith("airflow-snapshot-")]
    assert len(snapshots) == (1 if stack == "staging" else 0), jobs
    jobs = [j for j in jobs if j not in snapshots]
    assert jobs[0] == "airflow-db-migrate"
    accounts = {r.object_name for r in rendering.of_kind("ServiceAccount")}
    assert {f"airflow-{p}" for p in AIRFLOW_PROCESSES} <= accounts
    assert "airflow-api-server" in {r.object_name for r in rendering.of_kind("Service")}
    statefulsets = {r.object_name for r in rendering.of_kind("StatefulSet")}
    assert ("airflow-postgres" in statefulsets) == (stack != "prod")
    if stack == "prod":
        secret = rendering.one("Secret", "airflow-keys")
        assert secret is not None
    assert bool(rendering.of_kind("Ingress")) == (stack != "local")


def test_every_resource_descends_from_the_component_through_named_parts(
    rendered_stack: Renderer,
) -> None:
    """`pulumi preview` shows a tree: the component, its parts, their objects."""
    rendering = rendered_stack("staging")
    component = [r for r in rendering.resources if r.typ == TYPE_TOKEN]
    assert len(component) == 1
    by_urn = {r.urn: r for r in rendering.resources}
    parts = [r for r in rendering.resources if r.typ.startswith("airflow-k8s:parts:")]
    assert {"Secrets", "Migrations", "AirflowProcess", "Database"} <= {
        r.typ.rsplit(":", 1)[1] for r in parts
    }
    for part in parts:
        assert part.parent == component[0].urn, part.name
    for resource in rendering.resources:
        if resource is component[0]:
            continue
        assert resource.name.startswith("airflow-"), resource.name
        ancestor = by_urn.get(resource.parent or "")
        while ancestor is not None and ancestor is not component[0]:
            ancestor = by_urn.get(ancestor.parent or "")
        assert ancestor is component[0], resource.name
        if resource.custom and resource.typ.startswith("kubernetes:"):
            # Objects live in parts (only the namespace is the component's own).
            assert resource.parent != component[0].urn or resource.kind == "Namespace", (
                resource.name
            )


def _two_teams() -> Rendering:
    def program() -> None:
        for team in ("team-a", "team-b"):
            config = AirflowConfig.model_validate({"namespace": {"name": f"airflow-{team}"}})
            AirflowCluster(team, AirflowClusterArgs(config=config))

    return run_under_mocks(program)


def test_two_instances_in_one_program_never_collide() -> None:
    rendering = _two_teams()
    names = Counter((r.typ, r.name) for r in rendering.resources)
    assert max(names.values()) == 1
    objects = Counter(
        (r.kind, r.inputs["metadata"].get("namespace"), r.object_name) for r in rendering.kubernetes
    )
    assert max(objects.values()) == 1
    for team in ("team-a", "team-b"):
        mine = [
            r for r in rendering.of_kind("Deployment") if (r.object_name or "").startswith(team)
        ]
        assert len(mine) == len(AIRFLOW_PROCESSES)


def test_library_use_with_python_models_matches_stack_config() -> None:
    """`AirflowCluster(name, AirflowClusterArgs(config=...))` is what the stack file builds."""
    config = AirflowConfig.model_validate(cluster_config("staging"))
    direct = run_under_mocks(lambda: AirflowCluster("airflow", AirflowClusterArgs(config=config)))
    via_stack = render_stack("staging")

    def by_name(rendering: Rendering) -> dict[tuple[str, str], Any]:
        return {(r.typ, r.name): r.inputs for r in rendering.resources}

    assert by_name(direct) == by_name(via_stack)


# --- namespace -----------------------------------------------------------------------------


def test_namespace_is_created_with_labels(rendered_stack: Renderer) -> None:
    namespace = rendered_stack("staging").of_kind("Namespace")[0]
    labels = namespace.inputs["metadata"]["labels"]
    assert labels["team"] == "data-platform"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_existing_namespace_is_used_not_created() -> None:
    cluster = cluster_config("local")
    cluster["namespace"] = {"name": "shared-data", "create": False}
    rendering = render_stack("local", cluster=cluster)
    assert rendering.of_kind("Namespace") == []
    namespaced = [r for r in rendering.kubernetes if r.kind != "PersistentVolume"]
    assert {r.inputs["metadata"]["namespace"] for r in namespaced} == {"shared-data"}


# --- secrets -------------------------------------------------------------------------------


def test_generated_keys_are_valid_and_shared(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("local")
    fernet_values, jwt_values = set(), set()
    for _, container in airflow_containers(rendering):
        env = env_of(container)
        if "AIRFLOW__CORE__FERNET_KEY" in env:
            fernet_values.add(secret_value(rendering, env["AIRFLOW__CORE__FERNET_KEY"]))
        if "AIRFLOW__API_AUTH__JWT_SECRET" in env:
            jwt_values.add(secret_value(rendering, env["AIRFLOW__API_AUTH__JWT_SECRET"]))
    # Every process that has a key has the same one (the api-server and scheduler have both).
    assert len(fernet_values) == 1 and len(jwt_values) == 1
    (fernet_key,) = fernet_values
    token = Fernet(fernet_key.encode()).encrypt(b"variable value")
    assert Fernet(fernet_key.encode()).decrypt(token) == b"variable value"
    (jwt_secret,) = jwt_values
    assert len(jwt_secret) >= 64


def test_only_random_password_generates_secrets(stack_rendering: Rendering) -> None:
    types = {r.typ for r in stack_rendering.resources if r.typ.startswith("random:")}
    assert types == {"random:index/randomPassword:RandomPassword"}


def test_secret_env_only_through_secret_key_ref(stack_rendering: Rendering) -> None:
    literals = {
        v["value"]
        for v in cluster_config(stack_rendering.stack).get("variables", {}).values()
        if "value" in v
    }
    # Literal Variable values are config, not secrets (they ride in a Secret all the same).
    secret_values = set(stack_rendering.secret_data().values()) - literals
    for where, container in containers(stack_rendering):
        for item in container.get("env", []):
            if item["name"] in SHARED_SECRET_ENV or item["name"].endswith("PASSWORD"):
                assert "secretKeyRef" in item.get("valueFrom", {}), (where, item["name"])
            assert item.get("value") not in secret_values, (where, item["name"])
    non_secret = [r for r in stack_rendering.kubernetes if r.kind != "Secret"]
    dumped = json.dumps([r.inputs for r in non_secret])
    for value in secret_values:
        for line in value.splitlines():
            assert line not in dumped


def test_secret_values_are_pulumi_secrets(stack_rendering: Rendering) -> None:
    for secret in stack_rendering.of_kind("Secret"):
        for key in secret.inputs["stringData"]:
            path = f"stringData.{key}"
            covered = any(path == p or path.startswith(f"{p}.") for p in secret.secret_paths)
            assert covered, (secret.object_name, key)
    assert "adminPassword" in stack_rendering.secret_outputs


def test_existing_secrets_replace_generated_ones() -> None:
    cluster = cluster_config("staging")
    cluster["existingSecrets"] = {
        "fernetKey": {"name": "vault-airflow", "key": "fernet"},
        "jwtSecret": {"name": "vault-airflow", "key": "jwt"},
        "apiSecretKey": {"name": "vault-airflow", "key": "api"},
        "adminPassword": {"name": "vault-airflow", "key": "admin"},
        "postgresPassword": {"name": "vault-airflow", "key": "postgres"},
    }
    rendering = render_stack("staging", cluster=cluster)
    generated = {r.name for r in rendering.resources if r.typ.startswith("random:")}
    # Only the broker's own credentials (and the key of the restart checksums) stay generated;
    # the Fernet seed stays declared, unused, so that switching back never regenerates it.
    assert generated == {
        "airflow-redis-password",
        "airflow-flower-password",
        "airflow-checksum-key",
        "airflow-fernet-seed",
    }
    assert not [key for (_, key) in rendering.secret_data() if key == "fernet-key"]
    seen = set()
    for _, container in airflow_containers(rendering):
        env = env_of(container)
        for name in SHARED_SECRET_ENV:
            if name in env:
                seen.add(name)
                assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "vault-airflow"
        # The password Secret is not ours: URLs are composed in the container (`_CMD`).
        assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env
        if "AIRFLOW_METADATA_DB_PASSWORD" in env:
            assert {
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD",
                "AIRFLOW__CELERY__RESULT_BACKEND_CMD",
            } & env.keys()
    assert seen == set(SHARED_SECRET_ENV)
    postgres = rendering.one("StatefulSet", "airflow-postgres")
    pg_env = env_of(postgres.inputs["spec"]["template"]["spec"]["containers"][0])
    assert pg_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "vault-airflow",
        "key": "postgres",
    }


# --- database ------------------------------------------------------------------------------


def test_connection_string_url_encodes_the_password(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("staging")
    password = rendering.secret_data()[("airflow-postgres", "password")]
    assert set(password) & set("@:/%"), "fake password should exercise encoding"
    url = rendering.secret_data()[("airflow-metadata-db", "connection")]
    parts = urlsplit(url)
    assert parts.scheme == "postgresql+psycopg2"
    assert unquote(parts.password or "") == password
    assert parts.hostname == "airflow-postgres.airflow-staging.svc.cluster.local"
    assert parts.path == "/airflow"


def test_external_database_from_secret_stack_config() -> None:
    cluster = cluster_config("prod")
    del cluster["database"]["external"]["passwordSecret"]
    rendering = render_stack(
        "prod", cluster=cluster, extra_config={"airflow-k8s:externalDatabasePassword": "p@ss/w:rd"}
    )
    url = rendering.secret_data()[("airflow-metadata-db", "connection")]
    assert url == (
        "postgresql+psycopg2://airflow:p%40ss%2Fw%3Ard@airflow-db.prod.internal.example.com:5432"
        "/airflow?sslmode=require"
    )


def test_postgres_statefulset(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("staging")
    statefulset = rendering.one("StatefulSet", "airflow-postgres")
    spec = statefulset.inputs["spec"]
    container = spec["template"]["spec"]["containers"][0]
    repository, tag = container["image"].split(":")
    assert repository == "postgres" and tag.split(".")[0].isdigit()
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["livenessProbe"]["exec"]["command"][0] == "pg_isready"
    claim = spec["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "20Gi"
    # No class assumed: `standard` does not exist on EKS; the cluster's default is used.
    assert "storageClassName" not in claim
    service = rendering.one("Service", "airflow-postgres")
    assert service.inputs["spec"]["clusterIP"] == "None"
    assert spec["serviceName"] == "airflow-postgres"
    assert statefulset.options["protect"] and statefulset.options["retain_on_delete"]


def test_local_postgres_survives_a_pod_replacement_and_is_unprotected(
    rendered_stack: Renderer,
) -> None:
    """A completed migration Job never re-runs: if a new Postgres pod came back with an empty
    emptyDir, every pod would wait for migrations forever. Locally the data lives on a claim
    from kind's own `standard` (local-path) class; `pulumi destroy` still removes everything."""
    statefulset = rendered_stack("local").one("StatefulSet", "airflow-postgres")
    spec = statefulset.inputs["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "standard"
    assert not any(v["name"] == "data" for v in spec["template"]["spec"]["volumes"])
    assert not statefulset.options["protect"]
    # `pulumi destroy` takes the data with it: the next `up` generates a new password that a
    # surviving database would reject.
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    protected = rendered_stack("staging").one("StatefulSet", "airflow-postgres").inputs["spec"]
    assert protected["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_an_ephemeral_database_is_still_possible_locally() -> None:
    cluster = cluster_config("local")
    cluster["database"] = {"inCluster": {"storage": {"ephemeral": True}}}
    statefulset = render_stack("local", cluster=cluster).one("StatefulSet", "airflow-postgres")
    spec = statefulset.inputs["spec"]
    assert "volumeClaimTemplates" not in spec
    assert any(v["name"] == "data" and "emptyDir" in v for v in spec["template"]["spec"]["volumes"])


# --- migrations and workloads --------------------------------------------------------------


def test_migration_job_runs_before_workloads(stack_rendering: Rendering) -> None:
    migrate = stack_rendering.one("Job", "airflow-db-migrate")
    container = migrate.inputs["spec"]["template"]["spec"]["containers"][0]
    # `airflow db migrate` in a script whose failure explains itself (#15: a downgrade, or
    # which snapshot to restore); its exit code is kept (tests/test_upgrade.py runs it).
    assert container["args"][:2] == ["bash", "-c"]
    assert "$$(airflow db migrate 2>&1 " in container["args"][2]
    assert container["image"].endswith(f":{AIRFLOW_VERSION}")
    for deployment in stack_rendering.of_kind("Deployment"):
        pod = deployment.inputs["spec"]["template"]["spec"]
        if not pod["containers"][0]["image"].startswith("apache/airflow"):
            continue
        assert migrate.urn in deployment.options["dependencies"], deployment.object_name
        init = deployment.inputs["spec"]["template"]["spec"]["initContainers"]
        (wait,) = [c for c in init if c["name"] == "wait-for-migrations"]
        assert wait["args"][:2] == ["db", "check-migrations"]


def test_migration_job_changes_exactly_when_the_version_changes() -> None:
    def migrate_template(tag: str | None, replicas: int) -> Any:
        cluster = cluster_config("staging")
        if tag:
            cluster["image"] = {"tag": tag}
        cluster["scheduler"] = {"replicas": replicas}
        return render_stack("staging", cluster=cluster).one("Job", "airflow-db-migrate").inputs

    baseline = migrate_template(None, 1)
    assert migrate_template(None, 3) == baseline
    assert migrate_template("3.3.3", 1)["spec"]["template"] != baseline["spec"]["template"]


def test_workloads_use_airflow_health_checks(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("prod")
    probes = {}
    for deployment in rendering.of_kind("Deployment"):
        container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
        probes[deployment.object_name] = container["livenessProbe"]
    assert probes["airflow-api-server"]["httpGet"]["path"] == "/api/v2/version"
    assert probes["airflow-scheduler"]["httpGet"]["path"] == "/health"
    assert "DagProcessorJob" in probes["airflow-dag-processor"]["exec"]["command"]
    assert "TriggererJob" in probes["airflow-triggerer"]["exec"]["command"]
    replicas = {
        d.object_name: d.inputs["spec"].get("replicas") for d in rendering.of_kind("Deployment")
    }
    assert replicas["airflow-scheduler"] == 2
    # prod autoscales the api-server: the HPA, not the Deployment, holds the count.
    assert replicas["airflow-api-server"] is None
    hpa = rendering.one("HorizontalPodAutoscaler", "airflow-api-server").inputs["spec"]
    assert hpa["minReplicas"] == 2


def test_settings_agree_in_every_airflow_container(stack_rendering: Rendering) -> None:
    """Plain settings are identical everywhere; a secret a container has comes from the same
    Secret key as everywhere else (which secrets it has is its own: see the scope tests)."""
    shared = None
    refs: dict[str, Any] = {}
    for where, container in airflow_containers(stack_rendering):
        env = env_of(container)
        plain = {
            name: item
            for name, item in env.items()
            if "valueFrom" not in item
            # Per-container: the URL command and the SimpleAuth file come with their secret.
            and not name.endswith("_CMD")
            and not name.startswith("AIRFLOW_METADATA_DB_URL_")
            and name != "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
            # Set where the container has no DB credentials (test_secret_scope).
            and name != "CONNECTION_CHECK_MAX_COUNT"
            # Process runtime, not Airflow settings: dumb-init's signal mode on Celery
            # workers, uvicorn's trusted proxies on the api-server.
            and name not in {"DUMB_INIT_SETSID", "FORWARDED_ALLOW_IPS"}
            # The self-check program's input (data for that program, not an Airflow setting).
            and name != "AIRFLOW_SELF_CHECK"
            # Connections reach only the processes that use them (the log connection: those
            # that write or read task logs).
            and not name.startswith("AIRFLOW_CONN_")
            and not name.startswith("AIRFLOW_FERNET_KEY")
            and name != "AIRFLOW__CORE__FERNET_KEY"
        }
        if shared is None:
            shared = plain
        assert plain == shared, where
        for name, item in env.items():
            if "valueFrom" in item:
                assert refs.setdefault(name, item) == item, (where, name)
    assert shared is not None
    execution = shared["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]["value"]
    namespace = stack_rendering.of_kind("Namespace")[0].object_name
    assert execution == f"http://airflow-api-server.{namespace}.svc.cluster.local:8080/execution/"
    assert shared["AIRFLOW__CORE__LOAD_EXAMPLES"]["value"] == "False"
    configured = cluster_config(stack_rendering.stack).get("executors", "LocalExecutor")
    assert shared["AIRFLOW__CORE__EXECUTOR"]["value"] == configured
    assert shared["AIRFLOW__API__BASE_URL"]["value"] == stack_rendering.outputs["url"]


def test_resources_come_from_config(rendered_stack: Renderer) -> None:
    cluster = cluster_config("local")
    cluster["triggerer"] = {
        "resources": {
            "requests": {"cpu": "123m", "memory": "321Mi"},
            "limits": {"cpu": "2", "memory": "1Gi"},
        }
    }
    rendering = render_stack("local", cluster=cluster)
    triggerer = rendering.one("Deployment", "airflow-triggerer")
    resources = triggerer.inputs["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "123m", "memory": "321Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


# --- auth ----------------------------------------------------------------------------------


def test_simple_auth_reads_the_generated_password_from_a_mounted_secret(
    rendered_stack: Renderer,
) -> None:
    rendering = rendered_stack("local")
    api = rendering.one("Deployment", "airflow-api-server").inputs["spec"]["template"]["spec"]
    env = env_of(api["containers"][0])
    assert env["AIRFLOW__CORE__AUTH_MANAGER"]["value"].endswith("SimpleAuthManager")
    path = env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]["value"]
    volumes = {v["name"]: v for v in api["volumes"]}
    # Airflow opens the file read-write: it reads a copy on an emptyDir...
    (mount,) = [m for m in api["containers"][0]["volumeMounts"] if path.startswith(m["mountPath"])]
    assert "emptyDir" in volumes[mount["name"]] and not mount.get("readOnly")
    # ...made by the first init container from the Secret.
    copier = api["initContainers"][0]
    source, target = copier["command"][-2:]
    assert copier["command"][:1] == ["install"] and target == path
    (secret_mount,) = [m for m in copier["volumeMounts"] if source.startswith(m["mountPath"])]
    secret = volumes[secret_mount["name"]]["secret"]
    (item,) = secret["items"]
    assert source == f"{secret_mount['mountPath']}/{item['path']}"
    passwords = json.loads(rendering.secret_data()[(secret["secretName"], item["key"])])
    assert passwords == {"admin": rendering.outputs["adminPassword"]}
    # No Job creates users: SimpleAuthManager reads the file.
    assert not [
        j
        for j in rendering.of_kind("Job")
        if "users" in j.inputs["spec"]["template"]["spec"]["containers"][0].get("args", [])
    ]


def test_fab_auth_creates_the_admin_in_a_job(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("prod")
    job = rendering.one("Job", "airflow-create-admin")
    container = job.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["users", "create"]
    password_arg = container["args"][container["args"].index("--password") + 1]
    assert password_arg == "$(AIRFLOW_ADMIN_PASSWORD)"
    env = env_of(container)
    assert (
        secret_value(rendering, env["AIRFLOW_ADMIN_PASSWORD"]) == rendering.outputs["adminPassword"]
    )
    assert env["AIRFLOW__CORE__AUTH_MANAGER"]["value"].endswith("FabAuthManager")
    migrate = rendering.one("Job", "airflow-db-migrate")
    assert migrate.urn in job.options["dependencies"]


# --- RBAC and exposure ---------------------------------------------------------------------


def test_one_service_account_per_component_without_tokens(stack_rendering: Rendering) -> None:
    for account in stack_rendering.of_kind("ServiceAccount"):
        assert account.inputs["automountServiceAccountToken"] is False
    launches_pods = "KubernetesExecutor" in cluster_config(stack_rendering.stack).get(
        "executors", ""
    )
    for resource, spec in stack_rendering.pod_specs():
        component = resource.inputs["metadata"]["labels"]["app.kubernetes.io/component"]
        # Launching task pods, deleting finished ones, reading a running task pod's log.
        needs_token = launches_pods and component in {"scheduler", "pod-cleanup", "api-server"}
        assert spec["automountServiceAccountToken"] is needs_token, resource.object_name
        expected = "airflow-jobs" if resource.kind == "Job" else f"airflow-{component}"
        if component == "snapshot":
            # A Postgres client like the backups: their identity and NetworkPolicy.
            expected = "airflow-backup"
        if component == "self-check":
            # It checks what tasks depend on with a task runner's identity (IRSA/Workload
            # Identity for log storage included): a Celery worker's, else the scheduler's.
            executors = cluster_config(stack_rendering.stack).get("executors", "")
            expected = "airflow-worker" if "CeleryExecutor" in executors else "airflow-scheduler"
        assert spec["serviceAccountName"] == expected
    assert bool(stack_rendering.of_kind("Role")) == launches_pods
    assert not stack_rendering.of_kind("ClusterRole")


def test_local_exposes_a_node_port(rendered_stack: Renderer) -> None:
    rendering = rendered_stack("local")
    service = rendering.one("Service", "airflow-api-server").inputs["spec"]
    assert service["type"] == "NodePort"
    assert service["ports"][0]["nodePort"] == 30080
    assert rendering.outputs["url"] == "http://localhost:30080"


def test_prod_ingress_has_tls_class_and_annotations(rendered_stack: Renderer) -> None:
    ingress = rendered_stack("prod").one("Ingress", "airflow-api-server").inputs
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["airflow.example.com"], "secretName": "airflow-example-com-tls"}
    ]
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "16m"
    )
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "airflow-api-server"


def test_outputs(stack_rendering: Rendering) -> None:
    outputs = stack_rendering.outputs
    assert set(outputs) == {"namespace", "url", "adminUsername", "adminPassword"}
    assert outputs["adminUsername"] == "admin"
    assert len(outputs["adminPassword"]) >= 16


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_running_a_stack_twice_gives_identical_inputs(stack: str) -> None:
    first, second = render_stack(stack), render_stack(stack)
    assert len(first.resources) == len(second.resources)
    assert {(r.typ, r.name): r.inputs for r in first.resources} == {
        (r.typ, r.name): r.inputs for r in second.resources
    }


def test_run_error_is_raised_for_component_name() -> None:
    with pytest.raises(pulumi.RunError, match="AirflowCluster name"):
        run_under_mocks(lambda: AirflowCluster("Team A", AirflowClusterArgs()))

"""What a team sets on top of the component: any Airflow option (checked against the pinned
Airflow's catalog), extra env, and where pods run. The rules a user relies on:
- a set option reaches every Airflow container, the KubernetesExecutor's task pods included;
- a misspelled option or section fails at preview, naming it, before anything is registered;
- a secret-valued option is never a plain value anywhere;
- a process block overrides the top level for that process only;
- top-level placement reaches every pod the component creates.
"""

from __future__ import annotations

import copy
import re
import typing
from functools import partial
from typing import Any

import pulumi
import pytest

from airflow_component import AirflowCluster, AirflowClusterArgs
from airflow_component.airflow_env import DEFAULT_OPTIONS
from airflow_component.config import AirflowConfig, parse_config
from airflow_component.config.airflow_options import MANAGED, catalog
from airflow_component.config.extensions import PodCustomization
from tests.support.model_tree import model_types
from tests.support.rendering import (
    CapturingMocks,
    Rendering,
    cluster_config,
    render_stack,
    run_under_mocks,
)
from tests.test_pod_security import pods

AIRFLOW_IMAGE = re.compile(r"(^|/)airflow:")


def with_cluster(stack: str, **changes: Any) -> Rendering:
    cluster = copy.deepcopy(cluster_config(stack))
    cluster.update(changes)
    return render_stack(stack, cluster=cluster)


def airflow_containers(rendering: Rendering) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for where, spec, _ in pods(rendering):
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            if AIRFLOW_IMAGE.search(container["image"]) and container["name"] != "log-groomer":
                found.append((f"{where}/{container['name']}", container))
    return found


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env") or []}


def test_a_set_option_reaches_every_airflow_container_task_pods_included() -> None:
    rendering = with_cluster("prod", airflowConfig={"core": {"dagbag_import_timeout": 123}})
    containers = airflow_containers(rendering)
    assert any(where.startswith("ConfigMap/") for where, _ in containers), "no task-pod template"
    for where, container in containers:
        env = env_of(container)
        assert env.get("AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT", {}).get("value") == "123", where


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (
            {"core": {"dagbag_import_timeot": 1}},
            r"core\.dagbag_import_timeot: .*dagbag_import_timeout",
        ),
        ({"cor": {"dagbag_import_timeout": 1}}, r"cor: not a configuration section.*'core'"),
        ({"scheduler": {"parsing_processes": 2}}, r"parsing_processes.*it is in \[dag_processor\]"),
        ({"core": {"dagbag_import_timeout": "slow"}}, r"expected a float"),
        (
            {"core": {"executor": "CeleryExecutor"}},
            r"core\.executor: set by this component; use executors",
        ),
        ({"sentry": {"sentry_dsn": "https://k@o.ingest/1"}}, r"sentry\.sentry_dsn: a sensitive"),
        ({"logging": {"logging_level": "LOUD"}}, r"not one of"),
    ],
)
def test_a_wrong_option_fails_before_anything_is_registered_naming_it(
    options: dict[str, Any], named: str
) -> None:
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=named):
        run_under_mocks(
            lambda: AirflowCluster(
                "airflow", AirflowClusterArgs(config=parse_config({"airflowConfig": options}))
            ),
            mocks=mocks,
        )
    assert mocks.resources == []


def test_a_secret_valued_option_is_never_a_plain_value() -> None:
    secret = {"secret": {"name": "sentry", "key": "dsn"}}
    rendering = with_cluster("prod", airflowConfig={"sentry": {"sentry_dsn": secret}})
    for where, container in airflow_containers(rendering):
        item = env_of(container)["AIRFLOW__SENTRY__SENTRY_DSN"]
        assert "value" not in item, where
        assert item["valueFrom"]["secretKeyRef"] == {"name": "sentry", "key": "dsn"}


def test_a_process_block_overrides_the_top_level_for_that_process_only() -> None:
    rendering = with_cluster(
        "prod",
        airflowConfig={"core": {"dagbag_import_timeout": 60}},
        scheduler={
            **cluster_config("prod").get("scheduler", {}),
            "airflowConfig": {"core": {"dagbag_import_timeout": 90}},
            "nodeSelector": {"pool": "schedulers"},
        },
        nodeSelector={"pool": "airflow"},
        tolerations=[{"key": "dedicated", "value": "airflow", "effect": "NoSchedule"}],
    )
    # The process's own containers get its value; init containers (schema wait, DAG sync) and
    # every other pod keep the top level.
    for where, container in airflow_containers(rendering):
        value = env_of(container)["AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT"]["value"]
        assert value == ("90" if where == "Deployment/airflow-scheduler/scheduler" else "60"), where
    for where, spec, _ in pods(rendering):
        expected = "schedulers" if where == "Deployment/airflow-scheduler" else "airflow"
        assert spec.get("nodeSelector") == {"pool": expected}, where
        assert spec.get("tolerations") == [
            {"key": "dedicated", "operator": "Equal", "value": "airflow", "effect": "NoSchedule"}
        ], where


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_top_level_placement_reaches_every_pod(stack: str) -> None:
    rendering = with_cluster(stack, nodeSelector={"pool": "airflow"}, priorityClassName="batch")
    everything = pods(rendering)
    kinds = {where.split("/")[0] for where, _, _ in everything}
    assert {"Deployment", "StatefulSet", "Job", "CronJob"} <= kinds | {"StatefulSet"}
    for where, spec, _ in everything:
        assert spec.get("nodeSelector") == {"pool": "airflow"}, where
        assert spec.get("priorityClassName") == "batch", where


def test_extra_env_reaches_airflow_containers_and_managed_names_are_refused() -> None:
    rendering = with_cluster(
        "staging", extraEnv=[{"name": "HTTPS_PROXY", "value": "http://proxy:3128/$(HOME)"}]
    )
    for where, container in airflow_containers(rendering):
        # `$` escaped: the kubelet hands the process the text as written.
        assert env_of(container)["HTTPS_PROXY"]["value"] == "http://proxy:3128/$$(HOME)", where
    for name in ("AIRFLOW__CORE__PARALLELISM", "DUMB_INIT_SETSID", "AIRFLOW_CONN_X"):
        with pytest.raises(pulumi.RunError, match=rf"extraEnv\[0\]: {name}: set by this component"):
            parse_config({"extraEnv": [{"name": name, "value": "1"}]})


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_option_the_component_sets_is_refused_to_users(stack: str) -> None:
    """Keeps the managed list honest: an option the component renders cannot be set twice."""
    rendering = render_stack(stack)
    pattern = re.compile(r"AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)")
    sections = {s.replace(".", "_").upper(): s for s in catalog()["sections"]}
    for where, container in airflow_containers(rendering):
        for name in env_of(container):
            match = pattern.fullmatch(name)
            if not match:
                continue
            section = sections[match.group(1)]
            option = match.group(2).lower()
            if option not in catalog()["sections"][section]:  # the _CMD / _SECRET forms
                option = re.sub(r"_(cmd|secret)$", "", option)
            assert (section, option) in MANAGED or (section, option) in DEFAULT_OPTIONS, (
                f"{where}: {name} is neither refused (MANAGED) nor a default a team may override"
            )


# Airflow's own values (config.yml, [workers]) for what a container does not set.
AIRFLOW_EXECUTION_API_RETRIES = 5
AIRFLOW_EXECUTION_API_RETRY_WAIT_MIN = 1.0
# How long a restarted api-server may take to answer again: the suite measures 13-15 s from the
# restart to a passing readiness probe on an idle 2-core machine (`BENCHMARK ...
# fault=api-server-sigkill`); a busy node, or the kubelet's restart delay, adds to that.
API_SERVER_RESTART_SECONDS = 30.0


def shortest_retry_window(env: dict[str, dict[str, Any]]) -> float:
    """The least time a Task SDK call keeps retrying: `execution_api_retries` attempts in all,
    each wait drawn from [wait_min, 2**n] (tenacity's wait_random_exponential), so at least
    (attempts - 1) * wait_min."""
    attempts = int(
        env.get("AIRFLOW__WORKERS__EXECUTION_API_RETRIES", {}).get(
            "value", AIRFLOW_EXECUTION_API_RETRIES
        )
    )
    wait_min = float(
        env.get("AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN", {}).get(
            "value", AIRFLOW_EXECUTION_API_RETRY_WAIT_MIN
        )
    )
    return (attempts - 1) * wait_min


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_every_task_runner_retries_the_execution_api_through_an_api_server_restart(
    stack: str,
) -> None:
    """A task whose api-server restarts under it must not fail for that alone: every Airflow
    container (workers, the LocalExecutor's scheduler, task pods) keeps retrying its Execution
    API calls for longer than a restarted api-server takes to answer."""
    # The containers told where the Execution API is are the ones that call it.
    containers = [
        (where, container)
        for where, container in airflow_containers(render_stack(stack))
        if "AIRFLOW__CORE__EXECUTION_API_SERVER_URL" in env_of(container)
    ]
    assert any("worker" in where or "ConfigMap" in where for where, _ in containers) or (
        stack == "local"
    )
    assert any(where.startswith("Deployment/airflow-scheduler/") for where, _ in containers)
    for where, container in containers:
        window = shortest_retry_window(env_of(container))
        assert window >= API_SERVER_RESTART_SECONDS, (where, window)


def test_a_team_overrides_a_default_option_and_it_is_set_once() -> None:
    rendering = with_cluster("prod", airflowConfig={"workers": {"execution_api_retries": 3}})
    for where, container in airflow_containers(rendering):
        names = [item["name"] for item in container.get("env") or []]
        assert names.count("AIRFLOW__WORKERS__EXECUTION_API_RETRIES") == 1, where
        assert env_of(container)["AIRFLOW__WORKERS__EXECUTION_API_RETRIES"]["value"] == "3", where


def test_pod_labels_and_annotations_reach_every_pod_and_ours_win() -> None:
    rendering = with_cluster(
        "prod",
        podAnnotations={"sidecar.istio.io/inject": "false", "prometheus.io/scrape": "false"},
        podLabels={"team": "data"},
        scheduler={
            **cluster_config("prod").get("scheduler", {}),
            "podAnnotations": {"vault.hashicorp.com/agent-inject": "true"},
        },
    )
    everything = [(where, (pod_meta or {})) for where, pod_meta in _pod_metadata(rendering)]
    assert len(everything) > 10
    for where, metadata in everything:
        labels, annotations = metadata.get("labels") or {}, metadata.get("annotations") or {}
        assert labels.get("team") == "data", where
        assert labels.get("app.kubernetes.io/name") == "airflow", where
        assert annotations.get("sidecar.istio.io/inject") == "false", where
        # The statsd exporter's own scrape annotation is not overridden.
        if "statsd" in where:
            assert annotations.get("prometheus.io/scrape") == "true", where
        has_vault = "vault.hashicorp.com/agent-inject" in annotations
        assert has_vault == (where == "Deployment/airflow-scheduler"), where


def _pod_metadata(rendering: Rendering) -> list[tuple[str, dict[str, Any]]]:
    import yaml

    found = []
    for resource in rendering.kubernetes:
        spec = resource.inputs.get("spec") or {}
        template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get(
            "template"
        )
        if template:
            found.append((f"{resource.kind}/{resource.object_name}", template.get("metadata")))
        for text in (
            (resource.inputs.get("data") or {}).values() if resource.kind == "ConfigMap" else []
        ):
            document = yaml.safe_load(text) if text.startswith("apiVersion") else None
            if isinstance(document, dict) and document.get("kind") == "Pod":
                found.append((f"ConfigMap/{resource.object_name}", document["metadata"]))
    return found


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"podLabels": {"app.kubernetes.io/component": "x"}}, r"podLabels: app\.kubernetes\.io"),
        ({"podAnnotations": {"checksum/declared": "x"}}, r"podAnnotations: checksum/declared"),
    ],
)
def test_labels_and_annotations_the_component_relies_on_are_refused(
    raw: dict[str, Any], named: str
) -> None:
    with pytest.raises(pulumi.RunError, match=named):
        parse_config(raw)


def test_a_setting_airflow_would_ignore_on_the_api_server_is_refused() -> None:
    """Airflow 3.3 ignores [api] worker_refresh_interval unless server_type is gunicorn."""
    with pytest.raises(pulumi.RunError, match=r"worker_refresh_interval is ignored unless"):
        parse_config({"apiServer": {"airflowConfig": {"api": {"worker_refresh_interval": 3600}}}})
    both = {"api": {"worker_refresh_interval": 3600, "server_type": "gunicorn"}}
    # gunicorn is an extra the official image does not install (its Dockerfile's AIRFLOW_EXTRAS):
    # the api-server would exit at start. An image built with it may use it.
    for official in ("apache/airflow", "docker.io/apache/airflow"):
        with pytest.raises(pulumi.RunError, match=r"does not ship gunicorn.*image\.repository"):
            parse_config({"image": {"repository": official}, "apiServer": {"airflowConfig": both}})
    custom = {"repository": "registry.example.com/airflow-gunicorn"}
    assert parse_config({"image": custom, "apiServer": {"airflowConfig": both}}) is not None
    with pytest.raises(
        pulumi.RunError, match=r"api\.workers: set by this component; use apiServer"
    ):
        parse_config({"airflowConfig": {"api": {"workers": 4}}})


def test_sso_config_reaches_only_where_fab_reads_it_and_admin_creation_can_be_off() -> None:
    """FAB's webserver_config.py (often holding OAuth client secrets) is mounted read-only into
    the api-server only, `[fab] config_file` points at it there; with createAdmin off no Job
    creates a user and nothing else gets the admin password."""
    auth = {
        **cluster_config("prod").get("auth", {}),
        "webserverConfig": {"secret": {"name": "oauth", "key": "webserver_config.py"}},
        "createAdmin": False,
    }
    rendering = with_cluster("prod", auth=auth)
    readers = []
    for where, spec, _ in pods(rendering):
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            mounts = {m["name"]: m for m in container.get("volumeMounts") or []}
            env = env_of(container)
            if "webserver-config" in mounts:
                readers.append(f"{where}/{container['name']}")
                mount = mounts["webserver-config"]
                assert mount["readOnly"] is True
                path = env["AIRFLOW__FAB__CONFIG_FILE"]["value"]
                assert path == f"{mount['mountPath']}/webserver_config.py"
                assert volumes["webserver-config"]["secret"]["secretName"] == "oauth"
            else:
                assert "AIRFLOW__FAB__CONFIG_FILE" not in env, where
    assert readers == ["Deployment/airflow-api-server/api-server"], readers
    assert not [j for j in rendering.of_kind("Job") if "create-admin" in str(j.object_name)]
    for where, container in airflow_containers(rendering):
        names = {e["name"] for e in container.get("env") or []}
        assert "AIRFLOW_SELF_CHECK_PASSWORD" not in names, where


def test_sso_settings_need_fab() -> None:
    with pytest.raises(pulumi.RunError, match="webserverConfig is FAB's"):
        parse_config({"auth": {"webserverConfig": {"configMap": {"name": "w", "key": "w.py"}}}})
    with pytest.raises(pulumi.RunError, match="createAdmin: false needs manager: fab"):
        parse_config({"auth": {"createAdmin": False}})


def test_extra_volumes_reach_airflow_pods_valid_and_restricted() -> None:
    """A CA bundle from a ConfigMap, mounted in every Airflow container: the manifests stay
    strict-valid and every pod stays Pod Security "restricted"."""
    from tests.test_manifests import KUBERNETES_VERSIONS, strict_errors
    from tests.test_pod_security import restricted_violations

    rendering = with_cluster(
        "prod",
        extraVolumes=[{"name": "ca-bundle", "configMap": {"name": "corporate-ca"}}],
        extraVolumeMounts=[
            {"name": "ca-bundle", "mountPath": "/etc/ssl/certs/corporate.pem", "subPath": "ca.pem"}
        ],
        extraEnv=[{"name": "REQUESTS_CA_BUNDLE", "value": "/etc/ssl/certs/corporate.pem"}],
    )
    containers = airflow_containers(rendering)
    for where, container in containers:
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "ca-bundle"]
        assert mount["mountPath"] == "/etc/ssl/certs/corporate.pem" and mount["readOnly"], where
    for where, spec, pod_annotations in pods(rendering):
        if any(AIRFLOW_IMAGE.search(c["image"]) for c in spec["containers"]):
            names = {v["name"] for v in spec.get("volumes") or []}
            assert "ca-bundle" in names, where
        assert not restricted_violations(spec, pod_annotations), where
    for version in KUBERNETES_VERSIONS:
        errors = [e for m in rendering.manifests() if (e := strict_errors(m, version))]
        assert not errors, errors


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            {
                "extraVolumes": [{"name": "x", "emptyDir": {}}],
                "extraVolumeMounts": [{"name": "x", "mountPath": "/opt/airflow/logs"}],
            },
            r"would shadow /opt/airflow",
        ),
        ({"extraVolumeMounts": [{"name": "nope", "mountPath": "/data"}]}, r"no volume 'nope'"),
        ({"extraVolumes": [{"name": "logs", "emptyDir": {}}]}, r"'logs' is a volume of the"),
        (
            {"extraVolumes": [{"name": "h", "hostPath": {"path": "/var/run/docker.sock"}}]},
            r"hostPath",
        ),
        (
            {
                "extraVolumes": [{"name": "x", "emptyDir": {}}],
                "extraVolumeMounts": [{"name": "x", "mountPath": "/data/../opt"}],
            },
            r"'\.\.' is not allowed",
        ),
    ],
)
def test_an_extra_volume_that_breaks_the_pod_is_refused(raw: dict[str, Any], named: str) -> None:
    with pytest.raises(pulumi.RunError, match=named):
        parse_config(raw)


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_reserved_names_and_paths_cover_every_rendered_one(stack: str) -> None:
    """Keeps the lists honest: a team's volume or mount can never collide with ours."""
    from airflow_component.config.extensions import (
        RESERVED_CONTAINER_NAMES,
        RESERVED_MOUNT_PATHS,
        RESERVED_VOLUME_NAMES,
    )

    for where, spec, _ in pods(render_stack(stack)):
        if not any(AIRFLOW_IMAGE.search(c["image"]) for c in spec["containers"]):
            continue
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            name = container["name"]
            # Jobs and CronJobs name their one container after themselves.
            if not where.startswith(("Job/", "CronJob/")):
                assert name in RESERVED_CONTAINER_NAMES, (where, name)
        for volume in spec.get("volumes") or []:
            assert volume["name"] in RESERVED_VOLUME_NAMES, (where, volume["name"])
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            if not AIRFLOW_IMAGE.search(container["image"]):
                continue
            for mount in container.get("volumeMounts") or []:
                path = mount["mountPath"]
                assert any(
                    path == reserved or path.startswith(reserved + "/")
                    for reserved in RESERVED_MOUNT_PATHS
                ), (where, path)


def test_node_affinity_reaches_every_pod_and_spread_merges_with_ours() -> None:
    """Required node terms reach every pod; a zone spread on the scheduler joins the
    component's own node spread, and a team's node spread replaces it."""
    from tests.test_manifests import KUBERNETES_VERSIONS, strict_errors

    affinity = {
        "required": [
            {
                "matchExpressions": [
                    {"key": "node.kubernetes.io/pool", "operator": "In", "values": ["airflow"]}
                ]
            }
        ],
        "preferred": [
            {
                "weight": 50,
                "preference": {"matchExpressions": [{"key": "spot", "operator": "DoesNotExist"}]},
            }
        ],
    }
    scheduler = {
        **cluster_config("prod").get("scheduler", {}),
        "topologySpread": [
            {"topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}
        ],
    }
    workers = {
        **cluster_config("prod")["celery"],
        "workers": {
            **cluster_config("prod")["celery"]["workers"],
            "topologySpread": [{"topologyKey": "kubernetes.io/hostname", "maxSkew": 2}],
        },
    }
    rendering = with_cluster("prod", nodeAffinity=affinity, scheduler=scheduler, celery=workers)
    for where, spec, _ in pods(rendering):
        terms = spec["affinity"]["nodeAffinity"]
        required = terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert required[0]["matchExpressions"][0]["values"] == ["airflow"], where
        assert terms["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 50, where
    spec = rendering.one("Deployment", "airflow-scheduler").inputs["spec"]["template"]["spec"]
    keys = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
    assert set(keys) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    zone = keys["topology.kubernetes.io/zone"]
    assert zone["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "scheduler"
    worker = rendering.one("Deployment", "airflow-worker").inputs["spec"]["template"]["spec"]
    (only,) = worker["topologySpreadConstraints"]
    assert only["topologyKey"] == "kubernetes.io/hostname" and only["maxSkew"] == 2
    for version in KUBERNETES_VERSIONS:
        errors = [e for m in rendering.manifests() if (e := strict_errors(m, version))]
        assert not errors, errors


@pytest.mark.parametrize(
    ("term", "named"),
    [
        ({"key": "a", "operator": "In"}, "In needs values"),
        ({"key": "a", "operator": "Exists", "values": ["x"]}, "Exists takes no values"),
        ({"key": "a", "operator": "Gt", "values": ["x"]}, "one integer value"),
    ],
)
def test_a_node_requirement_kubernetes_would_reject_is_refused(
    term: dict[str, Any], named: str
) -> None:
    with pytest.raises(pulumi.RunError, match=named):
        parse_config({"nodeAffinity": {"required": [{"matchExpressions": [term]}]}})


def test_a_process_sidecar_and_init_container_stay_restricted_and_valid() -> None:
    from tests.test_manifests import KUBERNETES_VERSIONS, strict_errors
    from tests.test_pod_security import restricted_violations

    resources = {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "200m", "memory": "128Mi"},
    }
    scheduler = {
        **cluster_config("prod").get("scheduler", {}),
        "extraContainers": [
            {
                "name": "sql-proxy",
                "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0",
                "args": ["--port=5432", "project:region:$(INSTANCE)"],
                "resources": resources,
                "ports": [{"containerPort": 5432, "name": "sql"}],
            }
        ],
        "extraInitContainers": [
            {
                "name": "fetch-plugins",
                "image": "busybox:1.36",
                "command": ["sh", "-c", "echo ready"],
                "resources": resources,
                "volumeMounts": [{"name": "plugins", "mountPath": "/plugins", "readOnly": False}],
            }
        ],
        "extraVolumes": [{"name": "plugins", "emptyDir": {}}],
    }
    rendering = with_cluster("prod", scheduler=scheduler)
    spec = rendering.one("Deployment", "airflow-scheduler").inputs["spec"]["template"]["spec"]
    sidecar = next(c for c in spec["containers"] if c["name"] == "sql-proxy")
    assert sidecar["args"][1] == "project:region:$$(INSTANCE)"  # text as written, not expanded
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    names = [c["name"] for c in spec["initContainers"]]
    assert names.index("fetch-plugins") > names.index("wait-for-migrations")
    assert not restricted_violations(spec, {})
    others = [r for r in rendering.of_kind("Deployment") if r.object_name != "airflow-scheduler"]
    for other in others:
        containers = other.inputs["spec"]["template"]["spec"]["containers"]
        assert "sql-proxy" not in [c["name"] for c in containers], other.object_name
    for version in KUBERNETES_VERSIONS:
        errors = [e for m in rendering.manifests() if (e := strict_errors(m, version))]
        assert not errors, errors


@pytest.mark.parametrize(
    ("container", "named"),
    [
        ({"name": "scheduler", "image": "x:1"}, "a container of the component's"),
        ({"name": "side", "image": "x:1"}, "resources"),
    ],
)
def test_an_extra_container_that_would_break_the_pod_is_refused(
    container: dict[str, Any], named: str
) -> None:
    with pytest.raises(pulumi.RunError, match=named):
        parse_config({"scheduler": {"extraContainers": [container]}})
    resources = {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    dangling = {
        "name": "side",
        "image": "x:1",
        "resources": resources,
        "volumeMounts": [{"name": "nowhere", "mountPath": "/data"}],
    }
    with pytest.raises(
        pulumi.RunError, match=r"extraContainers\[0\]\.volumeMounts\[0\]: no volume"
    ):
        parse_config({"scheduler": {"extraContainers": [dangling]}})


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics: every matchLabels pair and every expression holds."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        present, values = e["key"] in labels, e.get("values") or []
        holds = {
            "In": present and labels.get(e["key"]) in values,
            "NotIn": not present or labels.get(e["key"]) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[e["operator"]]
        if not holds:
            return False
    return bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def test_pod_anti_affinity_without_a_selector_keeps_only_a_process_own_replicas_apart() -> None:
    """A term without labelSelector means the process's own pods: on the scheduler it must
    select every scheduler pod and no pod of any other workload (or schedulers would repel
    workers). A top-level affinity to pods the team names reaches every pod, merged with the
    node affinity; everything stays strict-valid."""
    from tests.test_manifests import KUBERNETES_VERSIONS, strict_errors

    near_cache = {
        "preferred": [
            {
                "weight": 80,
                "podAffinityTerm": {
                    "topologyKey": "topology.kubernetes.io/zone",
                    "labelSelector": {
                        "matchExpressions": [
                            {"key": "app", "operator": "In", "values": ["redis-cache"]}
                        ]
                    },
                    "namespaces": ["caches"],
                },
            }
        ]
    }
    scheduler = {
        **cluster_config("prod").get("scheduler", {}),
        "podAntiAffinity": {"required": [{"topologyKey": "kubernetes.io/hostname"}]},
    }
    node = {"required": [{"matchExpressions": [{"key": "pool", "operator": "Exists"}]}]}
    rendering = with_cluster("prod", podAffinity=near_cache, nodeAffinity=node, scheduler=scheduler)
    from tests.test_network_and_availability import pods as pod_labels

    labels = {component: pod.label_map for component, pod in pod_labels(rendering).items()}
    for where, spec, _ in pods(rendering):
        affinity = spec["affinity"]
        assert "nodeAffinity" in affinity, where
        (preferred,) = affinity["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert preferred["podAffinityTerm"]["namespaces"] == ["caches"], where
        anti = affinity.get("podAntiAffinity")
        assert (anti is not None) == (where == "Deployment/airflow-scheduler"), where
    spec = rendering.one("Deployment", "airflow-scheduler").inputs["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    selected = {name for name, found in labels.items() if selects(term["labelSelector"], found)}
    assert selected == {"scheduler"}, selected
    assert len(labels) > 8, sorted(labels)  # every workload and the task-pod template
    for version in KUBERNETES_VERSIONS:
        errors = [e for m in rendering.manifests() if (e := strict_errors(m, version))]
        assert not errors, errors


@pytest.mark.parametrize(
    ("affinity", "named"),
    [
        ({"required": [{"topologyKey": "x", "labelSelector": {}}]}, "empty selector matches"),
        ({"required": [{"topologyKey": "x", "namespaces": ["a"]}]}, "namespaces without"),
        (
            {
                "required": [
                    {
                        "topologyKey": "x",
                        "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]},
                    }
                ]
            },
            "In needs values",
        ),
        ({"preferred": [{"weight": 0, "podAffinityTerm": {"topologyKey": "x"}}]}, "weight"),
    ],
)
def test_a_pod_affinity_kubernetes_would_reject_or_that_selects_everything_is_refused(
    affinity: dict[str, Any], named: str
) -> None:
    with pytest.raises(pulumi.RunError, match=named):
        parse_config({"podAntiAffinity": affinity})


def test_extra_env_from_reaches_airflow_containers_and_never_one_of_our_secrets() -> None:
    """Whole Secrets/ConfigMaps as env: top level in every Airflow container, a process block's
    only in that process's; the component's own `env` entries win (Kubernetes ranks `env` above
    `envFrom`, so a key there cannot replace a managed setting); naming a Secret the component
    owns is refused (every key of it would reach containers outside its secret scope)."""
    from tests.test_references import dangling

    scheduler = {
        **cluster_config("prod").get("scheduler", {}),
        "extraEnvFrom": [{"configMap": "scheduler-tuning", "prefix": "TUNING_"}],
    }
    rendering = with_cluster(
        "prod", extraEnvFrom=[{"secret": "team-settings"}], scheduler=scheduler
    )
    for where, container in airflow_containers(rendering):
        sources = container.get("envFrom") or []
        assert {"secretRef": {"name": "team-settings"}} in sources, where
        own = {"configMapRef": {"name": "scheduler-tuning"}, "prefix": "TUNING_"}
        assert (own in sources) == (where == "Deployment/airflow-scheduler/scheduler"), where
    for where, spec, _ in pods(rendering):
        for container in spec["containers"]:
            if not AIRFLOW_IMAGE.search(container["image"]):
                assert not container.get("envFrom"), where
    raw = {**cluster_config("prod"), "extraEnvFrom": [{"secret": "team-settings"}]}
    raw["scheduler"] = scheduler
    assert not dangling(rendering, raw)
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=r"celery\.workers\.extraEnvFrom\[0\]\.secret"):
        run_under_mocks(
            lambda: AirflowCluster(
                "airflow",
                AirflowClusterArgs(
                    config=parse_config(
                        {
                            "executors": "CeleryExecutor",
                            "celery": {"workers": {"extraEnvFrom": [{"secret": "airflow-keys"}]}},
                        }
                    )
                ),
            ),
            mocks=mocks,
        )
    assert mocks.resources == []


def _pod_block_paths() -> set[str]:
    """Where the config model can hold a pod customisation (extra env, volumes, containers),
    found by walking its fields' types: a block added anywhere shows up here."""
    return {
        ".".join(path)
        for path, held in model_types(AirflowConfig)
        if isinstance(held, type) and issubclass(held, PodCustomization)
    }


# What makes each block exist in a config (its executor, a pool, a bundle).
POD_BLOCK_CONFIGS: dict[str, dict[str, Any]] = {
    "": {},
    "apiServer": {},
    "scheduler": {},
    "dagProcessor": {},
    "triggerer": {},
    "celery.workers": {"executors": "CeleryExecutor"},
    "celery.workerPools[0]": {
        "executors": "CeleryExecutor",
        "celery": {"workerPools": [{"name": "gpu", "queues": ["gpu"]}]},
    },
    "dags.bundles[0].dagProcessor": {
        "dags": {"bundles": [{"name": "finance", "git": {"repo": "git@git.example.com:o/f.git"}}]}
    },
}


def _block_at(raw: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = raw
    for step in filter(None, path.split(".")):
        key, _, index = step.partition("[")
        node = node.setdefault(key, [] if index else {})
        if index:
            node = node[int(index.rstrip("]"))]
    return typing.cast(dict[str, Any], node)


def test_every_pod_block_of_the_model_is_checked() -> None:
    """Wherever the model takes extra env sources and mounts, one of our Secrets as a source
    and a mount of a volume nobody declares are refused there, naming that block."""
    assert _pod_block_paths() | {""} == set(POD_BLOCK_CONFIGS)
    for path, enabling in POD_BLOCK_CONFIGS.items():
        prefix = f"{path}." if path else ""
        raw = copy.deepcopy(enabling)
        _block_at(raw, path)["extraVolumeMounts"] = [{"name": "nope", "mountPath": "/data"}]
        with pytest.raises(pulumi.RunError, match=re.escape(f"{prefix}extraVolumeMounts[0]: ")):
            parse_config(raw)
        raw = copy.deepcopy(enabling)
        _block_at(raw, path)["extraEnvFrom"] = [{"secret": "airflow-keys"}]
        args = AirflowClusterArgs(config=parse_config(raw))
        mocks = CapturingMocks()
        with pytest.raises(
            pulumi.RunError, match=re.escape(f"cluster.{prefix}extraEnvFrom[0].secret: ")
        ):
            run_under_mocks(partial(AirflowCluster, "airflow", args), mocks=mocks)
        assert mocks.resources == [], path

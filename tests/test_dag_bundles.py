"""DAG bundles (`dags.bundles`). The rules Airflow 3.3 and Kubernetes enforce:
- a process that initializes bundles needs `[dag_processor] dag_bundle_config_list`: the
  dag-processor (its own bundle), and wherever tasks run, since a task fetches its run's version
  of its bundle (Celery workers, the scheduler with LocalExecutor, KubernetesExecutor task pods;
  Airflow 3.3.2 `task_runner.py` and `dag_processing/manager.py` use `DagBundlesManager`, the
  api-server and triggerer do not). Nothing else gets it, nor the Git credentials;
- one dag-processor per bundle (`--bundle-name`): two processors on one bundle parse its files
  twice, Airflow 3.3 has no coordination between them;
- a Git bundle clones into `dag_bundle_storage_path`, which must be writable (the root is not);
- a process that fetches a Git bundle may reach the repository's port, and only those do;
- the list is JSON written by a serializer: no accepted string changes its structure.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pulumi
import pytest
import yaml

from airflow_component import AirflowCluster, AirflowClusterArgs
from airflow_component.config import parse_config
from tests.support.rendering import (
    CapturingMocks,
    Rendering,
    cluster_config,
    render_stack,
    run_under_mocks,
)
from tests.test_network_and_availability import address, allowed, pods, policies_of

LIST = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"
STORAGE = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH"
ANALYTICS = {
    "name": "analytics",
    "git": {
        "repo": "https://git.example.com:8443/org/analytics.git",
        "trackingRef": "release/2026.11",
        "subdir": "dags/prod",
        "connectionSecret": {"name": "analytics-git", "key": "connection"},
        "refreshInterval": 120,
    },
    "dagProcessor": {"nodeSelector": {"pool": "parsing"}},
}
FINANCE = {"name": "finance", "git": {"repo": "git@git.example.com:org/finance.git"}}
# One ServiceAccount holds one role: prod's log role also reads the DAG bucket.
ROLE = {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/airflow-prod-logs"}
REPORTS = {
    "name": "reports",
    "objectStore": {"url": "s3://company-dags/reports", "serviceAccountAnnotations": ROLE},
}
FOLDER = {"name": "dags-folder", "dagsFolder": {}}
GIT_SOURCE = "10.20.0.7"  # inside prod's dagSourceCidrs, set below


def with_bundles(stack: str, bundles: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    cluster = copy.deepcopy(cluster_config(stack))
    cluster["dags"] = {**cluster.get("dags", {}), "bundles": bundles}
    policies = cluster.setdefault("networkPolicies", {})
    policies["dagSourceCidrs"] = ["10.20.0.0/16"]
    cluster.update(changes)
    return cluster


def containers(rendering: Rendering) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(where, container, pod volumes) for every container, task-pod template included."""
    found: list[tuple[str, dict[str, Any], list[dict[str, Any]]]] = []
    for resource, spec in rendering.pod_specs():
        for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
            found.append(
                (
                    f"{resource.object_name}/{container['name']}",
                    container,
                    spec.get("volumes") or [],
                )
            )
    for config_map in rendering.of_kind("ConfigMap"):
        template = (config_map.inputs.get("data") or {}).get("pod_template_file.yaml")
        if template:
            pod = yaml.safe_load(template)
            for container in pod["spec"]["containers"]:
                found.append((f"task-pod/{container['name']}", container, pod["spec"]["volumes"]))
    return found


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env") or []}


def bundle_list(container: dict[str, Any]) -> list[dict[str, Any]] | None:
    item = env(container).get(LIST)
    return None if item is None else json.loads(item["value"])


def role(where: str, container: dict[str, Any], local_executor: bool) -> str:
    """What a container does, from its command, as Airflow sees it."""
    args = container.get("args") or []
    if where.startswith("task-pod/"):
        return "runs tasks"
    if args[:1] == ["dag-processor"]:
        return "parses"
    if args[:2] == ["celery", "worker"] or (args[:1] == ["scheduler"] and local_executor):
        return "runs tasks"
    return "other"


@pytest.fixture(scope="module")
def prod() -> Rendering:
    return render_stack("prod", cluster=with_bundles("prod", [FOLDER, ANALYTICS, FINANCE]))


@pytest.mark.parametrize("executors", ["CeleryExecutor,KubernetesExecutor", "LocalExecutor"])
def test_the_bundle_list_reaches_exactly_the_processes_that_initialize_bundles(
    executors: str,
) -> None:
    cluster = with_bundles("prod", [FOLDER, ANALYTICS, FINANCE], executors=executors)
    if executors == "LocalExecutor":
        cluster.pop("celery", None)
        cluster.pop("kubernetesExecutor", None)
        cluster.get("autoscaling", {}).pop("celeryWorkers", None)
    rendering = render_stack("prod", cluster=cluster)
    every = {"dags-folder", "analytics", "finance"}
    roles: dict[str, int] = {}
    for where, container, _ in containers(rendering):
        what = role(where, container, executors == "LocalExecutor")
        roles[what] = roles.get(what, 0) + 1
        listed = bundle_list(container)
        names = None if listed is None else {entry["name"] for entry in listed}
        if what == "runs tasks":
            assert names == every, where
        elif what == "parses":
            args = container["args"]
            assert names == {args[args.index("--bundle-name") + 1]}, where
        else:
            assert names is None, where
    assert roles.get("runs tasks", 0) >= (2 if executors != "LocalExecutor" else 1), roles
    assert roles["parses"] == 3, roles


def test_one_dag_processor_per_bundle_with_its_own_settings(prod: Rendering) -> None:
    processors = {}
    for deployment in prod.of_kind("Deployment"):
        spec = deployment.inputs["spec"]["template"]["spec"]
        args = spec["containers"][0]["args"]
        if args[:1] == ["dag-processor"]:
            processors[args[args.index("--bundle-name") + 1]] = (deployment, spec)
    assert sorted(processors) == ["analytics", "dags-folder", "finance"]
    for name, (deployment, spec) in processors.items():
        assert deployment.inputs["spec"]["replicas"] == 1, name
        assert deployment.object_name == f"airflow-dag-processor-{name}"
        probe = spec["containers"][0]["livenessProbe"]["exec"]["command"]
        assert "DagProcessorJob" in probe, name
        # The bundle's own block, over the top-level dagProcessor block.
        expected = {"pool": "parsing"} if name == "analytics" else None
        assert spec.get("nodeSelector") == expected, name
    # Only the DAG-folder bundle's processor mounts the DAG folder; a Git bundle's clones.
    folder_spec = processors["dags-folder"][1]
    analytics_spec = processors["analytics"][1]
    assert {m["name"] for m in folder_spec["containers"][0]["volumeMounts"]} >= {"dags"}
    assert "dags" not in {m["name"] for m in analytics_spec["containers"][0]["volumeMounts"]}


def test_git_bundles_are_rendered_as_airflow_reads_them(prod: Rendering) -> None:
    worker = next(c for w, c, _ in containers(prod) if w == "airflow-worker/worker")
    listed = {entry["name"]: entry for entry in bundle_list(worker) or []}
    analytics = listed["analytics"]
    assert analytics["classpath"] == "airflow.providers.git.bundles.git.GitDagBundle"
    assert analytics["kwargs"] == {
        "repo_url": "https://git.example.com:8443/org/analytics.git",
        "tracking_ref": "release/2026.11",
        "subdir": "dags/prod",
        "git_conn_id": "bundle_analytics",
        "refresh_interval": 120,
    }
    # A public repository: no connection named (GitDagBundle then clones without one).
    assert "git_conn_id" not in listed["finance"]["kwargs"]
    assert listed["dags-folder"] == {
        "name": "dags-folder",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {},
    }


def test_git_credentials_reach_only_who_fetches_that_bundle_by_secret_ref(
    prod: Rendering,
) -> None:
    holders = []
    for where, container, _ in containers(prod):
        item = env(container).get("AIRFLOW_CONN_BUNDLE_ANALYTICS")
        listed = {entry["name"] for entry in bundle_list(container) or []}
        assert (item is not None) == ("analytics" in listed), where
        if item is not None:
            assert "value" not in item, where
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "analytics-git", "key": "connection"}, where
            holders.append(where)
    assert "airflow-dag-processor-analytics/dag-processor" in holders
    assert not [h for h in holders if "finance" in h or "api-server" in h], holders


def test_git_bundles_clone_into_a_writable_volume(prod: Rendering) -> None:
    checked = 0
    for where, container, volumes in containers(prod):
        listed = bundle_list(container) or []
        if not any(entry["kwargs"].get("repo_url") for entry in listed):
            assert STORAGE not in env(container), where
            continue
        path = env(container)[STORAGE]["value"]
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
        assert not mount.get("readOnly"), where
        (volume,) = [v for v in volumes if v["name"] == mount["name"]]
        assert "emptyDir" in volume, where
        checked += 1
    assert checked >= 3


def test_who_fetches_a_git_bundle_reaches_its_server_and_nobody_else_does(
    prod: Rendering,
) -> None:
    policies, by = policies_of(prod), pods(prod)
    git_server = address(GIT_SOURCE)
    # analytics is served on 8443 (its URL's port), finance over SSH (22).
    for component in ("dag-processor-analytics", "worker", "task-pod"):
        assert allowed(policies, by[component], git_server, 8443), component
    for component in ("dag-processor-finance", "worker", "task-pod"):
        assert allowed(policies, by[component], git_server, 22), component
    assert not allowed(policies, by["dag-processor-finance"], git_server, 8443)
    assert not allowed(policies, by["dag-processor-analytics"], git_server, 22)
    # (22 is also prod's git-sync port, which DAG-folder readers use: 8443 tells them apart.)
    for component in ("api-server", "scheduler", "triggerer", "dag-processor-dags-folder"):
        assert not allowed(policies, by[component], git_server, 8443), component


def test_without_bundles_the_dag_folder_is_parsed_as_before() -> None:
    """`dags.delivery` alone keeps working: Airflow's default list, one processor, no flag."""
    for stack in ("local", "staging", "prod"):
        rendering = render_stack(stack)
        names = [d.object_name for d in rendering.of_kind("Deployment")]
        assert [n for n in names if "dag-processor" in str(n)] == ["airflow-dag-processor"]
        for where, container, _ in containers(rendering):
            assert LIST not in env(container), where
            assert "--bundle-name" not in (container.get("args") or []), where


@pytest.mark.parametrize(
    "text",
    ['a"b', "x\\y", "ré", "a b", "$(AIRFLOW__API_AUTH__JWT_SECRET)", "main\n"],
)
def test_a_hostile_ref_is_refused_and_an_accepted_one_round_trips(text: str) -> None:
    def bundle(ref: str) -> dict[str, Any]:
        return {"name": "a", "git": {"repo": "https://h.example/r.git", "trackingRef": ref}}

    with pytest.raises(pulumi.RunError, match=r"dags\.bundles\[0\]\.git\.trackingRef"):
        parse_config({"dags": {"bundles": [bundle(text)]}})
    accepted = "feature/x.y-z_1"
    rendering = render_stack(
        "local",
        cluster={**cluster_config("local"), "dags": {"bundles": [FOLDER, bundle(accepted)]}},
    )
    scheduler = next(c for w, c, _ in containers(rendering) if w == "airflow-scheduler/scheduler")
    (entry,) = [e for e in bundle_list(scheduler) or [] if e["name"] == "a"]
    assert entry["kwargs"]["tracking_ref"] == accepted


@pytest.mark.parametrize(
    ("dags", "extra", "named"),
    [
        ({"bundles": [FOLDER, FOLDER]}, {}, r"dags\.bundles\[1\]\.name: 'dags-folder' is also"),
        (
            {"bundles": [FOLDER, {"name": "f2", "dagsFolder": {}}]},
            {},
            r"dags\.bundles\[1\]\.dagsFolder: the DAG folder is already dags\.bundles\[0\]",
        ),
        (
            {"bundles": [{**FINANCE, "dagsFolder": {}}]},
            {},
            r"exactly one of `git`, `objectStore`, `dagsFolder`",
        ),
        (
            {"bundles": [{**FINANCE, "dagProcessor": {"replicas": 2}}]},
            {},
            r"dags\.bundles\[0\]\.dagProcessor\.replicas: .*one dag-processor per bundle",
        ),
        ({}, {"dagProcessor": {"replicas": 2}}, r"dagProcessor\.replicas: 2 processors"),
        (
            {"bundles": [FINANCE], "delivery": "git-sync", "gitSync": {"repo": "https://h/r"}},
            {},
            r"no bundle in dags\.bundles reads it",
        ),
        (
            {"bundles": [{"name": "a", "git": {"repo": "https://user:tok@h.example/r.git"}}]},
            {},
            r"dags\.bundles\[0\]\.git\.repo: .*without credentials",
        ),
        (
            {"bundles": [{"name": "a", "git": {"repo": "https://h/r", "subdir": "../etc"}}]},
            {},
            r"subdir: .*'\.\.' is not allowed",
        ),
        ({"bundles": [{"name": "A", "git": {"repo": "https://h/r"}}]}, {}, r"bundle name"),
        (
            {"bundles": [ANALYTICS]},
            {"connections": {"bundle_analytics": {"secret": {"name": "c", "key": "uri"}}}},
            r"connections\.bundle_analytics: dags\.bundles\[0\]",
        ),
    ],
)
def test_a_bundle_list_that_would_parse_twice_or_leak_is_refused_before_anything_is_registered(
    dags: dict[str, Any], extra: dict[str, Any], named: str
) -> None:
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=named):
        run_under_mocks(
            lambda: AirflowCluster(
                "airflow", AirflowClusterArgs(config=parse_config({"dags": dags, **extra}))
            ),
            mocks=mocks,
        )
    assert mocks.resources == []


def test_a_bundle_name_that_would_not_fit_in_object_names_is_refused_naming_it() -> None:
    """`<release>-dag-processor-<bundle>-ingress` must fit in 63 characters."""
    release = "a" * 30
    room = 63 - len(f"{release}-dag-processor--ingress")

    def cluster(name: str) -> AirflowClusterArgs:
        bundle = {"name": name, "git": FINANCE["git"]}
        return AirflowClusterArgs(config=parse_config({"dags": {"bundles": [bundle]}}))

    rendering = run_under_mocks(lambda: AirflowCluster(release, cluster("b" * room)))
    assert all(len(str(r.object_name)) <= 63 for r in rendering.kubernetes)
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=rf"dags\.bundles\[0\]\.name: .*at most {room}"):
        run_under_mocks(lambda: AirflowCluster(release, cluster("b" * (room + 1))), mocks=mocks)
    assert mocks.resources == []


def test_an_object_store_bundle_is_fetched_with_the_pod_identity_or_its_secret() -> None:
    """S3/GCS bundles: the provider's class and kwargs; without a connection Secret the fetching
    pods carry the bucket's cloud identity (ServiceAccount annotations) and an identity-only
    connection; with one, only a secretKeyRef; HTTPS to the store is allowed to them only."""
    gcs = {
        "name": "ml",
        "objectStore": {
            "url": "gs://ml-dags",
            "connectionSecret": {"name": "gcp-dags", "key": "connection"},
        },
    }
    rendering = render_stack("prod", cluster=with_bundles("prod", [FOLDER, REPORTS, gcs]))
    worker = next(c for w, c, _ in containers(rendering) if w == "airflow-worker/worker")
    listed = {entry["name"]: entry for entry in bundle_list(worker) or []}
    assert listed["reports"] == {
        "name": "reports",
        "classpath": "airflow.providers.amazon.aws.bundles.s3.S3DagBundle",
        "kwargs": {
            "bucket_name": "company-dags",
            "prefix": "reports",
            "aws_conn_id": "bundle_reports",
        },
    }
    assert listed["ml"]["classpath"] == "airflow.providers.google.cloud.bundles.gcs.GCSDagBundle"
    assert listed["ml"]["kwargs"] == {
        "bucket_name": "ml-dags",
        "prefix": "",
        "gcp_conn_id": "bundle_ml",
    }
    for where, container, _ in containers(rendering):
        fetched = {entry["name"] for entry in bundle_list(container) or []}
        variables = env(container)
        reports = variables.get("AIRFLOW_CONN_BUNDLE_REPORTS")
        ml = variables.get("AIRFLOW_CONN_BUNDLE_ML")
        assert (reports is not None) == ("reports" in fetched), where
        assert (ml is not None) == ("ml" in fetched), where
        if reports is not None:
            assert reports["value"] == "aws://", where  # identity only: no credentials in it
        if ml is not None:
            assert ml["valueFrom"]["secretKeyRef"] == {"name": "gcp-dags", "key": "connection"}
    accounts = {a.object_name: a.inputs["metadata"] for a in rendering.of_kind("ServiceAccount")}
    for name in ("airflow-worker", "airflow-dag-processor"):
        assert ROLE.items() <= (accounts[name].get("annotations") or {}).items(), name
    # Without remote logs, the bucket's identity goes only where the bucket is read.
    cluster = with_bundles("prod", [FOLDER, REPORTS])
    cluster["logging"] = {k: v for k, v in cluster["logging"].items() if k != "remote"}
    alone = render_stack("prod", cluster=cluster)
    annotated = {
        str(a.object_name)
        for a in alone.of_kind("ServiceAccount")
        if ROLE.items() <= (a.inputs["metadata"].get("annotations") or {}).items()
    }
    assert annotated == {"airflow-worker", "airflow-dag-processor", "airflow-task-pod"}, annotated


def test_two_cloud_identities_for_one_service_account_are_refused() -> None:
    other = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/other"}
    second = {
        "name": "more",
        "objectStore": {"url": "s3://more-dags", "serviceAccountAnnotations": other},
    }
    with pytest.raises(
        pulumi.RunError, match=r"dags\.bundles\[1\]\.objectStore\.serviceAccountAnnotations: eks"
    ):
        parse_config({"dags": {"bundles": [REPORTS, second]}})


def test_a_bundle_processor_overrides_the_shared_processor_options_one_by_one() -> None:
    """`dagProcessor.airflowConfig` applies to every bundle's processor; a bundle's own block
    replaces only the options it names, in the sections it names: the rest of a section it
    touches stays the shared value (as Airflow reads one env var per option)."""
    shared = {"dag_processor": {"print_stats_interval": 120, "stale_dag_threshold": 60}}
    own = {"dag_processor": {"print_stats_interval": 30}, "core": {"dagbag_import_timeout": 90}}
    cluster = with_bundles(
        "prod",
        [FOLDER, {**FINANCE, "dagProcessor": {"airflowConfig": own}}, REPORTS],
        dagProcessor={**cluster_config("prod").get("dagProcessor", {}), "airflowConfig": shared},
    )
    rendering = render_stack("prod", cluster=cluster)
    found = {}
    for where, container, _ in containers(rendering):
        if where.endswith("/dag-processor") and where.startswith("airflow-dag-processor-"):
            values = env(container)
            found[where.split("/")[0]] = tuple(
                values.get(f"AIRFLOW__{name}", {}).get("value")
                for name in (
                    "DAG_PROCESSOR__PRINT_STATS_INTERVAL",
                    "DAG_PROCESSOR__STALE_DAG_THRESHOLD",
                    "CORE__DAGBAG_IMPORT_TIMEOUT",
                )
            )
    assert found == {
        "airflow-dag-processor-finance": ("30", "60", "90"),
        "airflow-dag-processor-reports": ("120", "60", None),
        "airflow-dag-processor-dags-folder": ("120", "60", None),
    }

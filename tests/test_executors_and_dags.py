"""Executors (Local, Celery, Kubernetes, both) and DAG delivery (image, git-sync, volume, host)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.rendering import ROOT, Rendering, cluster_config, render_stack

# The Pulumi name of the self-check Job (its Kubernetes name carries a checksum).
SELF_CHECK = "airflow-self-check"

# Processes that parse or run DAG files, per executor.
DAG_READERS = {"scheduler", "dag-processor", "triggerer", "worker"}
POD_LAUNCH_RULES = {
    ("pods", frozenset({"create", "get", "list", "watch", "patch", "delete"})),
    ("pods/log", frozenset({"get"})),
    ("pods/exec", frozenset({"create", "get"})),
    ("events", frozenset({"list", "watch"})),
}


def render(executors: str, **settings: Any) -> Rendering:
    cluster = cluster_config("local")
    cluster["executors"] = executors
    cluster.update(settings)
    return render_stack("local", cluster=cluster)


def deployment_pod(rendering: Rendering, component: str) -> dict[str, Any]:
    spec: dict[str, Any] = rendering.one("Deployment", f"airflow-{component}").inputs["spec"]
    return spec["template"]["spec"]


def main_container(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["containers"][0]


def env_value(container: dict[str, Any], name: str) -> Any:
    (item,) = [e for e in container["env"] if e["name"] == name]
    return item.get("value", item.get("valueFrom"))


def pod_template(rendering: Rendering) -> dict[str, Any]:
    config_map = rendering.one("ConfigMap", "airflow-pod-template")
    return yaml.safe_load(config_map.inputs["data"]["pod_template_file.yaml"])


# --- Celery ----------------------------------------------------------------------------------


def test_celery_executor_objects() -> None:
    rendering = render(
        "CeleryExecutor",
        celery={"workers": {"replicas": 3, "concurrency": 7}, "flower": {"enabled": True}},
    )
    redis = rendering.one("StatefulSet", "airflow-redis").inputs["spec"]["template"]["spec"]
    assert redis["containers"][0]["image"].startswith("redis:")
    assert rendering.one("Service", "airflow-redis")
    worker = rendering.one("Deployment", "airflow-worker").inputs["spec"]
    assert worker["replicas"] == 3
    container = main_container(worker["template"]["spec"])
    assert container["args"][:2] == ["celery", "worker"]
    assert "7" in container["args"]
    assert worker["template"]["spec"]["terminationGracePeriodSeconds"] >= 300
    ping = " ".join(container["livenessProbe"]["exec"]["command"])
    assert "inspect ping" in ping and "celery@" in ping
    assert {"name": "task-logs", "containerPort": 8793} in container["ports"]
    for name in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"):
        assert "secretKeyRef" in env_value(container, name)
    broker = rendering.secret_data()[("airflow-celery", "broker-url")]
    password = rendering.secret_data()[("airflow-redis", "password")]
    assert broker == f"redis://:{password}@airflow-redis.airflow.svc.cluster.local:6379/0"
    backend = rendering.secret_data()[("airflow-metadata-db", "celery-result-backend")]
    assert backend == "db+" + rendering.secret_data()[("airflow-metadata-db", "connection")]
    flower = main_container(deployment_pod(rendering, "flower"))
    assert flower["args"][:2] == ["celery", "flower"]
    assert "secretKeyRef" in env_value(flower, "AIRFLOW__CELERY__FLOWER_BASIC_AUTH")
    assert rendering.one("Service", "airflow-flower")


def test_flower_is_off_by_default_and_gets_an_ingress_path_on_request() -> None:
    assert not [
        r
        for r in render("CeleryExecutor").of_kind("Deployment")
        if r.object_name == "airflow-flower"
    ]
    rendering = render(
        "CeleryExecutor",
        celery={"flower": {"enabled": True, "ingressPath": "/flower"}},
        ingress={"enabled": True, "host": "airflow.local.test"},
    )
    paths = rendering.one("Ingress", "airflow-api-server").inputs["spec"]["rules"][0]["http"]
    services = {p["path"]: p["backend"]["service"]["name"] for p in paths["paths"]}
    assert services == {"/flower": "airflow-flower", "/": "airflow-api-server"}
    assert "--url-prefix" in main_container(deployment_pod(rendering, "flower"))["args"]


def test_local_executor_has_no_celery_or_kubernetes_objects() -> None:
    rendering = render_stack("local")
    names = {(r.kind, r.object_name) for r in rendering.kubernetes}
    assert ("StatefulSet", "airflow-redis") not in names
    assert ("Deployment", "airflow-worker") not in names
    assert not rendering.of_kind("Role")
    # airflow.cfg and the self-check program; no pod template.
    assert {c.object_name for c in rendering.of_kind("ConfigMap")} == {
        "airflow-airflow-cfg",
        "airflow-self-check",
    }


# --- Kubernetes executor ---------------------------------------------------------------------


def role_grants(
    rendering: Rendering, name: str = "airflow-pod-launcher"
) -> tuple[set[tuple[str, frozenset[str]]], set[str]]:
    role = rendering.one("Role", name)
    binding = rendering.one("RoleBinding", name)
    assert binding.inputs["roleRef"]["name"] == role.object_name
    rules = set()
    for rule in role.inputs["rules"]:
        assert rule["apiGroups"] == [""]
        for resource in rule["resources"]:
            rules.add((resource, frozenset(rule["verbs"])))
    subjects = {s["name"] for s in binding.inputs["subjects"]}
    return rules, subjects


def test_kubernetes_executor_pod_template_and_rbac() -> None:
    rendering = render("KubernetesExecutor")
    template = pod_template(rendering)
    kubernetes_validate.validate(template, "1.30.0", strict=True)
    kubernetes_validate.validate(template, "1.37.0", strict=True)
    assert template["kind"] == "Pod"
    (base,) = template["spec"]["containers"]
    assert base["name"] == "base"
    scheduler = deployment_pod(rendering, "scheduler")
    scheduler_env = {e["name"]: e for e in main_container(scheduler)["env"]}
    base_env = {e["name"]: e for e in base["env"]}
    # The task pod has the scheduler's settings, and none of its secrets: DAG authors' code
    # runs there (no DB credentials, no JWT signing key, no Fernet key, no API secret key).
    settings = {n: e for n, e in scheduler_env.items() if "valueFrom" not in e}
    # Without DB credentials, the image's entrypoint must skip its `airflow db check`.
    assert base_env.pop("CONNECTION_CHECK_MAX_COUNT") == {
        "name": "CONNECTION_CHECK_MAX_COUNT",
        "value": "0",
    }
    assert settings == base_env
    assert not any("valueFrom" in e for e in base_env.values())
    assert base["securityContext"] == main_container(scheduler)["securityContext"]
    assert template["spec"]["securityContext"] == scheduler["securityContext"]
    template_path = scheduler_env["AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in main_container(scheduler)["volumeMounts"]}
    volume = mounts[str(Path(template_path).parent)]
    (config_map,) = [v for v in scheduler["volumes"] if v["name"] == volume]
    assert config_map["configMap"]["name"] == "airflow-pod-template"
    assert scheduler_env["AIRFLOW__KUBERNETES_EXECUTOR__DELETE_WORKER_PODS"]["value"] == "True"
    rules, subjects = role_grants(rendering)
    assert rules == POD_LAUNCH_RULES
    # The scheduler launches task pods; the cleanup CronJob deletes finished ones.
    assert subjects == {"airflow-scheduler", "airflow-pod-cleanup"}
    assert scheduler["automountServiceAccountToken"] is True
    # The api-server's token is for reading running task pods' logs (its own Role).
    for component in ("dag-processor", "triggerer"):
        assert deployment_pod(rendering, component)["automountServiceAccountToken"] is False


def test_pod_template_change_rolls_only_the_scheduler() -> None:
    def annotations(resources: dict[str, Any]) -> Rendering:
        return render("KubernetesExecutor", kubernetesExecutor={"workerResources": resources})

    small = {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    large = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    first, second = annotations(small), annotations(large)
    # The self-check Job is renamed (re-run) on every change by design: tests/test_self_check.py.
    before = {(r.kind, r.object_name): r.inputs for r in first.kubernetes if r.name != SELF_CHECK}
    after = {(r.kind, r.object_name): r.inputs for r in second.kubernetes if r.name != SELF_CHECK}
    assert before.keys() == after.keys()
    changed = {name for (kind, name), inputs in after.items() if before[(kind, name)] != inputs}
    assert changed == {"airflow-pod-template", "airflow-scheduler"}


def test_multiple_executors_get_everything_both_need() -> None:
    rendering = render_stack("prod")
    scheduler = main_container(deployment_pod(rendering, "scheduler"))
    assert env_value(scheduler, "AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor,KubernetesExecutor"
    assert rendering.one("StatefulSet", "airflow-redis")
    assert rendering.one("Deployment", "airflow-worker")
    assert rendering.one("ConfigMap", "airflow-pod-template")
    _, subjects = role_grants(rendering)
    assert subjects == {"airflow-scheduler", "airflow-pod-cleanup"}


def test_kubernetes_pod_operator_switch_grants_workers_and_triggerer() -> None:
    rendering = render("CeleryExecutor,KubernetesExecutor", kubernetesPodOperator={"enabled": True})
    rules, subjects = role_grants(rendering)
    assert rules == POD_LAUNCH_RULES
    assert subjects == {
        "airflow-scheduler",
        "airflow-pod-cleanup",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-task-pod",
    }
    for component in ("worker", "triggerer", "scheduler"):
        assert deployment_pod(rendering, component)["automountServiceAccountToken"] is True
    assert deployment_pod(rendering, "dag-processor")["automountServiceAccountToken"] is False


# --- DAG delivery ----------------------------------------------------------------------------


def dag_access(pod: dict[str, Any]) -> tuple[Any, ...]:
    """How a pod gets its DAGs: DAGs folder, its mount, the volume, git-sync containers."""
    container = main_container(pod)
    folder = env_value(container, "AIRFLOW__CORE__DAGS_FOLDER")
    mounts = [m for m in container["volumeMounts"] if m["name"] == "dags"]
    volumes = [v for v in pod["volumes"] if v["name"] == "dags"]
    sidecars = [c for c in pod["containers"][1:] if c["name"] == "git-sync"]
    inits = [c for c in pod.get("initContainers", []) if c["name"] == "git-sync-init"]
    return folder, mounts, volumes, sidecars, inits


GIT_SYNC: dict[str, Any] = {
    "delivery": "git-sync",
    "gitSync": {"repo": "https://example.com/dags.git", "ref": "main", "subPath": "dags"},
}


@pytest.mark.parametrize(
    "dags",
    [
        {"delivery": "image"},
        GIT_SYNC,
        {"delivery": "volume", "volume": {"existingClaim": "team-dags"}},
        {"delivery": "volume", "volume": {"size": "5Gi", "accessMode": "ReadOnlyMany"}},
        {"delivery": "hostPath"},
    ],
    ids=["image", "git-sync", "volume-existing", "volume-new", "hostPath"],
)
def test_every_dag_reader_gets_dags_the_same_way(dags: dict[str, Any]) -> None:
    rendering = render("CeleryExecutor,KubernetesExecutor", dags=copy.deepcopy(dags))
    readers = [r for r in rendering.of_kind("Deployment") if r.object_name]
    accesses = {
        r.object_name: dag_access(r.inputs["spec"]["template"]["spec"])
        for r in readers
        if (r.object_name or "").removeprefix("airflow-") in DAG_READERS
    }
    assert set(accesses) == {f"airflow-{c}" for c in DAG_READERS}
    assert len({repr(a) for a in accesses.values()}) == 1, accesses
    folder, mounts, volumes, sidecars, inits = next(iter(accesses.values()))
    template = pod_template(rendering)["spec"]
    base_mounts = [m for m in template["containers"][0]["volumeMounts"] if m["name"] == "dags"]
    assert base_mounts == mounts
    assert [v for v in template["volumes"] if v["name"] == "dags"] == volumes
    api = dag_access(deployment_pod(rendering, "api-server"))
    assert api[1:] == ([], [], [], []), "the api-server does not read DAG files"
    if dags["delivery"] == "image":
        assert (folder, mounts, volumes, sidecars) == ("/opt/airflow/dags", [], [], [])
        return
    assert mounts == [{"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True}]
    if dags["delivery"] == "git-sync":
        assert folder == "/opt/airflow/dags/repo/dags"
        assert len(sidecars) == 1 and len(inits) == 1
        init_names = [c["name"] for c in template.get("initContainers", [])]
        assert "git-sync-init" in init_names and "wait-for-migrations" not in init_names
        assert len(template["containers"]) == 1, "a task pod must not keep a sidecar running"
        sync = sidecars[0]
        assert sync["image"].startswith("registry.k8s.io/git-sync/git-sync:v4")
        sync_env = {e["name"]: e.get("value") for e in sync["env"]}
        assert sync_env["GITSYNC_REPO"] == "https://example.com/dags.git"
        assert sync_env["GITSYNC_REF"] == "main"
        assert sync["securityContext"]["runAsUser"] == 65533
        assert sync["securityContext"]["runAsGroup"] == 0
        pod = deployment_pod(rendering, "dag-processor")
        assert pod["securityContext"]["fsGroup"] == 0
        assert pod["securityContext"]["runAsGroup"] == 0
        return
    claim = volumes[0]["persistentVolumeClaim"]
    assert claim["readOnly"] is True
    claims = {r.object_name: r.inputs["spec"] for r in rendering.of_kind("PersistentVolumeClaim")}
    if dags.get("volume", {}).get("existingClaim"):
        assert claim["claimName"] == "team-dags" and claims == {}
    else:
        assert claim["claimName"] == "airflow-dags"
        mode = dags.get("volume", {}).get("accessMode", "ReadOnlyMany")
        assert claims["airflow-dags"]["accessModes"] == [mode]


def test_git_sync_credentials_come_from_secrets() -> None:
    https = copy.deepcopy(GIT_SYNC)
    https["gitSync"]["httpsCredentialsSecret"] = "dags-token"
    pod = deployment_pod(render("LocalExecutor", dags=https), "scheduler")
    sync = pod["containers"][1]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in sync["env"] if "valueFrom" in e}
    assert refs == {
        "GITSYNC_USERNAME": {"name": "dags-token", "key": "username"},
        "GITSYNC_PASSWORD": {"name": "dags-token", "key": "password"},
    }
    ssh = copy.deepcopy(GIT_SYNC)
    ssh["gitSync"]["sshKeySecret"] = "deploy-key"
    pod = deployment_pod(render("LocalExecutor", dags=ssh), "scheduler")
    sync = pod["containers"][1]
    env = {e["name"]: e.get("value") for e in sync["env"]}
    (secret_volume,) = [v for v in pod["volumes"] if "secret" in v and v["name"] == "git-secret"]
    assert secret_volume["secret"]["secretName"] == "deploy-key"
    (mount,) = [m for m in sync["volumeMounts"] if m["name"] == "git-secret"]
    assert env["GITSYNC_SSH_KEY_FILE"] == f"{mount['mountPath']}/ssh"
    assert env["GITSYNC_SSH_KNOWN_HOSTS_FILE"] == f"{mount['mountPath']}/known_hosts"


def test_host_path_dags_keep_pods_restricted() -> None:
    rendering = render_stack("local")
    (volume,) = rendering.of_kind("PersistentVolume")
    spec = volume.inputs["spec"]
    assert spec["hostPath"]["path"] == "/dags"
    assert spec["claimRef"] == {"namespace": "airflow", "name": "airflow-dags"}
    for _, pod in rendering.pod_specs():
        assert not [v for v in pod.get("volumes", []) if "hostPath" in v]


def test_kind_config_maps_the_node_port_and_mounts_the_dags_folder() -> None:
    kind = yaml.safe_load((ROOT / "kind/kind-config.yaml").read_text())
    (node,) = kind["nodes"]
    local = cluster_config("local")
    node_port = local["apiServer"]["service"]["nodePort"]
    assert {"containerPort": node_port, "hostPort": node_port}.items() <= node["extraPortMappings"][
        0
    ].items()
    (mount,) = node["extraMounts"]
    assert mount["hostPath"].endswith("/dags")
    rendering = render_stack("local")
    (volume,) = rendering.of_kind("PersistentVolume")
    assert volume.inputs["spec"]["hostPath"]["path"] == mount["containerPath"]
    assert list((ROOT / "dags").glob("*.py")), "ship an example DAG for the local stack"


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_rbac_is_namespaced_and_has_no_wildcards(stack: str) -> None:
    cluster = cluster_config(stack)
    cluster["executors"] = "CeleryExecutor,KubernetesExecutor"
    if stack == "local":
        cluster["dags"] = {"delivery": "image"}
    cluster["kubernetesPodOperator"] = {"enabled": True}
    rendering = render_stack(stack, cluster=cluster)
    assert not rendering.of_kind("ClusterRole") and not rendering.of_kind("ClusterRoleBinding")
    roles = rendering.of_kind("Role")
    assert roles
    for role in roles:
        for rule in role.inputs["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), (role.object_name, rule)
    for binding in rendering.of_kind("RoleBinding"):
        assert binding.inputs["roleRef"]["kind"] == "Role"


def test_the_api_server_can_read_a_running_task_pods_log() -> None:
    """KubernetesExecutor.get_task_log: while a task pod runs, the api-server reads its log from
    the Kubernetes API (upstream #47200). It needs a token, `pods` get/list and `pods/log` get,
    and API egress; it must not be able to create or delete pods."""
    from tests.test_network_and_availability import KUBERNETES_API, allowed, pods, policies_of

    rendering = render("KubernetesExecutor", networkPolicies={"enabled": True})
    rules, subjects = role_grants(rendering, "airflow-pod-log-reader")
    assert subjects == {"airflow-api-server"}
    granted = {(resource, verb) for resource, verbs in rules for verb in verbs}
    assert {("pods", "get"), ("pods", "list"), ("pods/log", "get")} <= granted
    assert not {verb for resource, verb in granted if verb in {"create", "delete", "patch"}}
    assert deployment_pod(rendering, "api-server")["automountServiceAccountToken"] is True
    by = pods(rendering)
    assert allowed(policies_of(rendering), by["api-server"], KUBERNETES_API, 443)
    without = render("CeleryExecutor")
    assert deployment_pod(without, "api-server")["automountServiceAccountToken"] is False

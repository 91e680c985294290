"""Every rendered pod meets Pod Security "restricted", plus this project's stricter rules.

The restricted profile is implemented here from the Kubernetes Pod Security Standards
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, policy version
"latest" as of Kubernetes 1.30-1.37) instead of being taken from the component, so a regression
in the component's security contexts cannot also change what is checked. Stricter rules on top:
a read-only root filesystem everywhere, requests and limits for cpu and memory on every
container, Airflow containers as uid 50000 / gid 0 (the official image's contract), and every
path an Airflow container writes on a writable emptyDir.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest
import yaml

from tests.support.rendering import Rendering, cluster_config, render_stack

STACKS = ("local", "staging", "prod")

# --- the Pod Security Standards, "restricted" (which includes "baseline") ------------------

# Restricted: only these volume types.
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# Baseline: sysctls outside this safe set are forbidden.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *spec.get("initContainers", []),
        *spec.get("containers", []),
        *spec.get("ephemeralContainers", []),
    ]


def _context_problems(where: str, context: dict[str, Any]) -> list[str]:
    """Baseline rules that apply to both the pod's and a container's securityContext."""
    problems = []
    se_linux = context.get("seLinuxOptions") or {}
    if se_linux.get("type", "") not in SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type {se_linux['type']!r} is not allowed")
    for field in ("user", "role"):
        if se_linux.get(field):
            problems.append(f"{where}: seLinuxOptions.{field} must not be set")
    if (context.get("windowsOptions") or {}).get("hostProcess"):
        problems.append(f"{where}: windowsOptions.hostProcess is true")
    apparmor = context.get("appArmorProfile")
    if apparmor is not None and apparmor.get("type") not in APPARMOR_TYPES:
        problems.append(f"{where}: appArmorProfile {apparmor} is not allowed")
    if context.get("runAsUser") == 0:
        problems.append(f"{where}: runAsUser is 0")
    seccomp = context.get("seccompProfile")
    if seccomp is not None and seccomp.get("type") not in SECCOMP_TYPES:
        problems.append(f"{where}: seccompProfile {seccomp} is not RuntimeDefault/Localhost")
    if context.get("runAsNonRoot") is False:
        problems.append(f"{where}: runAsNonRoot is false")
    return problems


def restricted_violations(
    spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> list[str]:
    """Every way a pod spec breaks Pod Security "restricted"; empty when it complies."""
    problems: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"pod: {field} is true")
    pod_context = spec.get("securityContext") or {}
    problems += _context_problems("pod", pod_context)
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl.get('name')} is not in the safe set")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"volume {volume.get('name')}: type {sorted(kinds)} is not allowed")
    for key, value in (annotations or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            problems.append(f"pod: AppArmor annotation {key}={value}")

    pod_non_root = pod_context.get("runAsNonRoot")
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type")
    for container in all_containers(spec):
        where = f"container {container.get('name')}"
        context = container.get("securityContext") or {}
        problems += _context_problems(where, context)
        if context.get("privileged"):
            problems.append(f"{where}: privileged")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}: capabilities do not drop ALL")
        added = set(capabilities.get("add") or []) - ADDABLE_CAPABILITIES
        if added:
            problems.append(f"{where}: adds capabilities {sorted(added)}")
        # Container-level values override the pod's; either must make the result compliant.
        if context.get("runAsNonRoot", pod_non_root) is not True:
            problems.append(f"{where}: runAsNonRoot is not true (pod or container)")
        seccomp = (context.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in SECCOMP_TYPES:
            problems.append(f"{where}: no RuntimeDefault/Localhost seccompProfile")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount {context['procMount']}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
    return problems


# --- this project's stricter rules ---------------------------------------------------------

AIRFLOW_IMAGE = "apache/airflow"  # the official image; uid 50000, gid 0 (reference doc)
AIRFLOW_UID, AIRFLOW_GID = 50000, 0
# The official image's AIRFLOW_HOME; Airflow logs to $AIRFLOW_HOME/logs unless configured.
IMAGE_AIRFLOW_HOME = "/opt/airflow"


def is_airflow_image(image: str) -> bool:
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return repository in (AIRFLOW_IMAGE, f"docker.io/{AIRFLOW_IMAGE}")


def env_value(container: dict[str, Any], name: str) -> str | None:
    for item in container.get("env") or []:
        if item.get("name") == name:
            return item.get("value")
    return None


def written_paths(container: dict[str, Any]) -> list[str]:
    """Paths an Airflow process writes: its task/process logs and temporary files."""
    home = env_value(container, "AIRFLOW_HOME") or IMAGE_AIRFLOW_HOME
    logs = env_value(container, "AIRFLOW__LOGGING__BASE_LOG_FOLDER") or f"{home}/logs"
    return [logs, "/tmp"]


def mount_for(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mount that holds `path` (the deepest mount at or above it)."""
    best: dict[str, Any] | None = None
    for mount in container.get("volumeMounts") or []:
        root = mount["mountPath"].rstrip("/") or "/"
        if (path == root or path.startswith(root.rstrip("/") + "/")) and (
            best is None or len(root) > len(best["mountPath"].rstrip("/"))
        ):
            best = mount
    return best


def stricter_violations(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    pod_context = spec.get("securityContext") or {}
    volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
    for container in all_containers(spec):
        where = f"container {container.get('name')}"
        context = container.get("securityContext") or {}
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        resources = container.get("resources") or {}
        for side in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(side) or {}).get(resource):
                    problems.append(f"{where}: no {side}.{resource}")
        if not is_airflow_image(container.get("image", "")):
            continue
        uid = context.get("runAsUser", pod_context.get("runAsUser"))
        gid = context.get("runAsGroup", pod_context.get("runAsGroup"))
        if uid != AIRFLOW_UID or gid != AIRFLOW_GID:
            problems.append(f"{where}: Airflow runs as {uid}:{gid}, not 50000:0")
        if "command" in container:
            # Not an Airflow process (a `command` replaces the entrypoint), e.g. the init
            # container copying the SimpleAuth passwords file: it writes only its target mount.
            continue
        for path in written_paths(container):
            mount = mount_for(container, path)
            if mount is None:
                problems.append(f"{where}: {path} is on the read-only root filesystem")
                continue
            volume = volumes.get(mount["name"], {})
            # A shared logs claim (logging.volume) is the one writable non-emptyDir allowed.
            writable = "emptyDir" in volume or (
                mount["name"] == "logs" and "persistentVolumeClaim" in volume
            )
            if mount.get("readOnly") or not writable:
                problems.append(
                    f"{where}: {path} is mounted from {mount['name']} "
                    f"(readOnly={mount.get('readOnly', False)}), not a writable emptyDir"
                )
    return problems


# --- what is checked: every pod spec of every stack (and optional feature variants) --------


def configmap_pod_templates(rendering: Rendering) -> Iterator[tuple[str, dict[str, Any]]]:
    """Pod templates stored as YAML in ConfigMaps (the KubernetesExecutor's pod_template_file)."""
    for config_map in rendering.of_kind("ConfigMap"):
        for key, text in (config_map.inputs.get("data") or {}).items():
            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            if isinstance(document, dict) and document.get("kind") == "Pod":
                yield f"ConfigMap/{config_map.object_name}/{key}", document


def pods(rendering: Rendering) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(where, pod spec, pod annotations) for every pod the rendering can create."""
    found = []
    for resource, spec in rendering.pod_specs():
        template = (resource.inputs.get("spec") or {}).get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        found.append((f"{resource.kind}/{resource.object_name}", spec, annotations))
    for where, pod in configmap_pod_templates(rendering):
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        found.append((where, pod["spec"], annotations))
    return found


_RENDERINGS: dict[str, Rendering] = {}


def rendering_of(stack: str) -> Rendering:
    if stack not in _RENDERINGS:
        _RENDERINGS[stack] = render_stack(stack)
    return _RENDERINGS[stack]


def _with(stack: str, drop: tuple[str, ...] = (), **changes: Any) -> Callable[[], dict[str, Any]]:
    """The stack's cluster object with top-level keys replaced (and `drop`ped)."""

    def build() -> dict[str, Any]:
        cluster = cluster_config(stack)
        for key in drop:
            cluster.pop(key, None)
        cluster.update(copy.deepcopy(changes))
        return cluster

    return build


GIT_SYNC = {"delivery": "git-sync", "gitSync": {"repo": "https://github.com/o/dags.git"}}
# Feature variants beyond the three stacks, whose pods must meet the same rules.
VARIANTS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "local-git-sync": ("local", _with("local", dags=GIT_SYNC)),
    "local-host-path-dags": ("local", _with("local", dags={"delivery": "hostPath"})),
    "local-celery": (
        "local",
        _with("local", executors=["CeleryExecutor"], celery={"flower": {"enabled": True}}),
    ),
    "staging-dag-volume": ("staging", _with("staging", dags={"delivery": "volume"})),
    "staging-kubernetes-executor": (
        "staging",
        _with(
            "staging",
            drop=("celery",),
            executors=["LocalExecutor", "KubernetesExecutor"],
            kubernetesPodOperator={"enabled": True},
        ),
    ),
    "prod-celery-kubernetes-git-sync": (
        "prod",
        _with(
            "prod",
            executors=["CeleryExecutor", "KubernetesExecutor"],
            celery={"flower": {"enabled": True}},
            dags=GIT_SYNC,
        ),
    ),
    "staging-pull-secrets": (
        "staging",
        _with("staging", image={"pullSecrets": ["regcred"], "pullPolicy": "Always"}),
    ),
}


def variant_rendering(name: str) -> Rendering:
    if name not in _RENDERINGS:
        stack, build = VARIANTS[name]
        try:
            _RENDERINGS[name] = render_stack(stack, cluster=build())
        except pulumi.RunError as error:
            pytest.fail(f"variant {name} is refused (update it with the stacks): {error}")
    return _RENDERINGS[name]


def assert_pods_comply(rendering: Rendering) -> int:
    found = pods(rendering)
    problems = [
        f"{where}: {problem}"
        for where, spec, annotations in found
        for problem in [*restricted_violations(spec, annotations), *stricter_violations(spec)]
    ]
    assert not problems, "\n".join(problems)
    return len(found)


@pytest.mark.parametrize("stack", STACKS)
def test_every_pod_of_the_stack_is_restricted_and_hardened(stack: str) -> None:
    rendering = rendering_of(stack)
    kinds = {resource.kind for resource, _ in rendering.pod_specs()}
    # The checker must have something to check: the workloads and the migration Job.
    assert {"Deployment", "Job"} <= kinds
    assert assert_pods_comply(rendering) >= 5


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_pod_of_a_feature_variant_is_restricted_and_hardened(variant: str) -> None:
    assert assert_pods_comply(variant_rendering(variant)) >= 5


@pytest.mark.parametrize("stack", STACKS)
def test_airflow_containers_are_found_and_checked(stack: str) -> None:
    """The uid/gid and writable-path rules really ran: Airflow containers exist in every pod."""
    airflow = [
        container
        for _, spec, _ in pods(rendering_of(stack))
        for container in all_containers(spec)
        if is_airflow_image(container["image"]) and "command" not in container
    ]
    assert len(airflow) >= 5
    for container in airflow:
        assert env_value(container, "AIRFLOW__LOGGING__BASE_LOG_FOLDER"), container["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_namespace_enforces_restricted(stack: str) -> None:
    namespaces = rendering_of(stack).of_kind("Namespace")
    assert len(namespaces) == 1
    labels = namespaces[0].inputs["metadata"].get("labels") or {}
    assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


def _bound_service_accounts(rendering: Rendering) -> set[str]:
    return {
        subject["name"]
        for binding in [*rendering.of_kind("RoleBinding"), *rendering.of_kind("ClusterRoleBinding")]
        for subject in binding.inputs.get("subjects") or []
        if subject.get("kind") == "ServiceAccount"
    }


def _mounts_token(spec: dict[str, Any]) -> bool:
    if spec.get("automountServiceAccountToken") is not False:
        return True  # Kubernetes' default
    return any(
        "serviceAccountToken" in source
        for volume in spec.get("volumes") or []
        for source in (volume.get("projected") or {}).get("sources") or []
    )


@pytest.mark.parametrize("name", [*STACKS, *sorted(VARIANTS)])
def test_api_tokens_only_in_pods_with_api_rights(name: str) -> None:
    """A pod gets a ServiceAccount token exactly when a RoleBinding gives its account rights."""
    rendering = rendering_of(name) if name in STACKS else variant_rendering(name)
    bound = _bound_service_accounts(rendering)
    problems = []
    for where, spec, _ in pods(rendering):
        account = spec.get("serviceAccountName", "default")
        if _mounts_token(spec) and account not in bound:
            problems.append(f"{where}: mounts a token, but {account} has no RoleBinding")
        # The self-check borrows a task runner's account for its cloud identity (IRSA trust
        # policies name the account) and never calls the Kubernetes API: no token, by design.
        borrowed = "-self-check-" in where
        if account in bound and not _mounts_token(spec) and not borrowed:
            problems.append(f"{where}: {account} is bound to a Role but gets no token")
    assert not problems, "\n".join(problems)


def test_kubernetes_executor_pod_template_is_checked_when_rendered() -> None:
    """A task pod template in a ConfigMap is found, so it cannot escape the rules above."""
    rendering = variant_rendering("staging-kubernetes-executor")
    templates = list(configmap_pod_templates(rendering))
    assert templates, "KubernetesExecutor is enabled but no pod template ConfigMap was found"
    for where, pod in templates:
        names = [container["name"] for container in pod["spec"]["containers"]]
        assert "base" in names, f"{where}: the executor needs a container named base"


# --- the checker itself rejects what it should ---------------------------------------------


def _compliant_pod() -> dict[str, Any]:
    # An Airflow pod with an init container: the stricter rules are about Airflow's uid and dirs.
    spec = next(
        spec
        for _, spec, _ in pods(rendering_of("local"))
        if spec.get("initContainers") and spec["securityContext"].get("runAsUser") == 50000
    )
    assert not restricted_violations(spec) and not stricter_violations(spec)
    return copy.deepcopy(spec)


def _container_context(spec: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = spec["containers"][0].setdefault("securityContext", {})
    return context


def _init_context(spec: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = spec["initContainers"][0].setdefault("securityContext", {})
    return context


BREAKAGES: dict[str, Callable[[dict[str, Any]], object]] = {
    "hostNetwork": lambda s: s.update(hostNetwork=True),
    "hostPID": lambda s: s.update(hostPID=True),
    "hostIPC": lambda s: s.update(hostIPC=True),
    "hostPath volume": lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    "gitRepo volume": lambda s: s["volumes"].append({"name": "g", "gitRepo": {"repository": "x"}}),
    "privileged": lambda s: _container_context(s).update(privileged=True),
    "privilege escalation unset": lambda s: _container_context(s).pop("allowPrivilegeEscalation"),
    "init container escalates": lambda s: _init_context(s).update(allowPrivilegeEscalation=True),
    "capabilities not dropped": lambda s: _container_context(s).pop("capabilities"),
    "adds NET_ADMIN": lambda s: _container_context(s).update(
        capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "NET_ADMIN"]}
    ),
    "runAsNonRoot nowhere": lambda s: (
        s["securityContext"].pop("runAsNonRoot"),
        _container_context(s).pop("runAsNonRoot", None),
        _init_context(s).pop("runAsNonRoot", None),
    ),
    "container overrides runAsNonRoot": lambda s: _container_context(s).update(runAsNonRoot=False),
    "runs as root": lambda s: _container_context(s).update(runAsUser=0),
    "seccomp nowhere": lambda s: (
        s["securityContext"].pop("seccompProfile"),
        _container_context(s).pop("seccompProfile", None),
        _init_context(s).pop("seccompProfile", None),
    ),
    "seccomp unconfined": lambda s: _container_context(s).update(
        seccompProfile={"type": "Unconfined"}
    ),
    "unsafe sysctl": lambda s: s["securityContext"].update(
        sysctls=[{"name": "kernel.msgmax", "value": "1"}]
    ),
    "hostPort": lambda s: (
        s["containers"][0].setdefault("ports", []).append({"containerPort": 80, "hostPort": 80})
    ),
    "unmasked proc": lambda s: _container_context(s).update(procMount="Unmasked"),
    "SELinux user": lambda s: s["securityContext"].update(seLinuxOptions={"user": "root"}),
}


def _logs_mount(spec: dict[str, Any]) -> dict[str, Any]:
    container = spec["containers"][0]
    logs = env_value(container, "AIRFLOW__LOGGING__BASE_LOG_FOLDER")
    mount: dict[str, Any] = next(m for m in container["volumeMounts"] if m["mountPath"] == logs)
    return mount


def _put_logs_on_a_secret(spec: dict[str, Any]) -> None:
    name = _logs_mount(spec)["name"]
    volume = next(v for v in spec["volumes"] if v["name"] == name)
    volume.clear()
    volume.update(name=name, secret={"secretName": "logs"})


STRICTER_BREAKAGES: dict[str, Callable[[dict[str, Any]], object]] = {
    "writable root filesystem": lambda s: _init_context(s).update(readOnlyRootFilesystem=False),
    "no memory limit": lambda s: s["containers"][0]["resources"]["limits"].pop("memory"),
    "no cpu request": lambda s: s["initContainers"][0]["resources"]["requests"].pop("cpu"),
    "airflow as another uid": lambda s: _container_context(s).update(runAsUser=1000),
    "airflow with gid 50000": lambda s: s["securityContext"].update(runAsGroup=50000),
    "no /tmp mount": lambda s: s["containers"][0].update(
        volumeMounts=[m for m in s["containers"][0]["volumeMounts"] if m["mountPath"] != "/tmp"]
    ),
    "logs mounted read-only": lambda s: _logs_mount(s).update(readOnly=True),
    "logs on a secret volume": lambda s: _put_logs_on_a_secret(s),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_restricted_checker_rejects_a_violating_pod(breakage: str) -> None:
    spec = _compliant_pod()
    BREAKAGES[breakage](spec)
    assert restricted_violations(spec), f"{breakage} was not detected"


@pytest.mark.parametrize("breakage", sorted(STRICTER_BREAKAGES))
def test_stricter_checker_rejects_a_violating_pod(breakage: str) -> None:
    spec = _compliant_pod()
    STRICTER_BREAKAGES[breakage](spec)
    assert stricter_violations(spec), f"{breakage} was not detected"


def test_apparmor_unconfined_annotation_is_rejected() -> None:
    spec = _compliant_pod()
    name = spec["containers"][0]["name"]
    assert restricted_violations(spec, {f"{APPARMOR_ANNOTATION}{name}": "unconfined"})
    assert not restricted_violations(spec, {f"{APPARMOR_ANNOTATION}{name}": "runtime/default"})

"""What a team set for a component's pods: Airflow options and env (Airflow containers), and
where the pods run (every pod). A process block overrides the top level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_kubernetes.core.v1 import EnvVarArgsDict

from .config.airflow_options import SecretOptionValue, as_text, env_name, merged
from .config.extensions import ExtraContainer
from .kube import (
    container_security_context,
    literal,
    plain_env,
    resource_requirements,
    secret_env,
)
from .needs import API_SERVER, SCHEDULER, TRIGGERER
from .resolve import Process, ResolvedConfig


def team_process(config: ResolvedConfig, component: str) -> Process | None:
    """The process block a component's settings come from (None: the top level only)."""
    processes: dict[str, Process | None] = {
        API_SERVER: config.api_server,
        SCHEDULER: config.scheduler,
        TRIGGERER: config.triggerer,
    }
    for bundle in config.dags.bundles:
        processes[bundle.component] = bundle.processor
    for pool in config.celery.pools if config.celery is not None else ():
        processes[pool.component] = pool
    return processes.get(component)


def team_env(config: ResolvedConfig, component: str) -> list[EnvVarArgsDict]:
    """`airflowConfig` as AIRFLOW__SECTION__OPTION (secret values by secretKeyRef), then
    `extraEnv`; process values replace top-level ones of the same option or name."""
    process = team_process(config, component)
    options = merged(config.pods.airflow_config, process.airflow_config if process else {})
    env: list[EnvVarArgsDict] = []
    for (section, option), value in sorted(options.items()):
        name = env_name(section, option)
        if isinstance(value, SecretOptionValue):
            env.append(secret_env(name, value.secret))
        else:
            env.append(plain_env(name, as_text(value)))
    extra = {item.name: item for item in config.pods.extra_env}
    extra.update({item.name: item for item in (process.extra_env if process else [])})
    for item in extra.values():
        if item.secret is not None:
            env.append(secret_env(item.name, item.secret))
        else:
            env.append(plain_env(item.name, item.value or ""))
    return env


# The pod labels that tell one process's pods from every other's (its selector labels).
SELECTOR_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
)


def team_env_from(config: ResolvedConfig, component: str) -> list[dict[str, Any]]:
    """`extraEnvFrom`: the top level's, then the process block's."""
    process = team_process(config, component)
    sources = [*config.pods.extra_env_from, *(process.extra_env_from if process else [])]
    rendered = []
    for source in sources:
        item: dict[str, Any] = (
            {"secret_ref": {"name": source.secret}}
            if source.secret is not None
            else {"config_map_ref": {"name": source.config_map}}
        )
        if source.prefix:
            item["prefix"] = source.prefix
        rendered.append(item)
    return rendered


def pod_placement(
    config: ResolvedConfig, component: str | None, pod_labels: Mapping[str, str]
) -> dict[str, Any]:
    """nodeSelector, tolerations, priorityClassName and affinity for a pod spec; `pod_labels`
    are the pod's own, which a pod (anti-)affinity term without a selector means."""
    process = team_process(config, component) if component else None
    top = config.pods

    def pick(name: str) -> Any:
        own = getattr(process, name) if process is not None else None
        return own if own is not None else getattr(top, name)

    placement: dict[str, Any] = {}
    if (selector := pick("node_selector")) is not None:
        placement["node_selector"] = dict(selector)
    if (tolerations := pick("tolerations")) is not None:
        placement["tolerations"] = [
            {
                key: value
                for key, value in {
                    "key": t.key,
                    "operator": t.operator,
                    "value": t.value,
                    "effect": t.effect,
                    "toleration_seconds": t.toleration_seconds,
                }.items()
                if value is not None
            }
            for t in tolerations
        ]
    if (priority := pick("priority_class_name")) is not None:
        placement["priority_class_name"] = priority
    affinity: dict[str, Any] = {}
    if (nodes := pick("node_affinity")) is not None:
        affinity["node_affinity"] = _node_affinity(nodes)
    own = {key: pod_labels[key] for key in SELECTOR_LABELS if key in pod_labels}
    for name in ("pod_affinity", "pod_anti_affinity"):
        if (terms := pick(name)) is not None:
            affinity[name] = _pod_affinity(terms, own)
    if affinity:
        placement["affinity"] = affinity
    return placement


def _pod_term(term: Any, own: dict[str, str]) -> dict[str, Any]:
    selector = term.label_selector
    rendered: dict[str, Any] = {
        "topology_key": term.topology_key,
        "label_selector": {"match_labels": dict(own)}
        if selector is None
        else {
            **({"match_labels": dict(selector.match_labels)} if selector.match_labels else {}),
            **(
                {
                    "match_expressions": [
                        {
                            "key": e.key,
                            "operator": e.operator,
                            **({"values": list(e.values)} if e.values else {}),
                        }
                        for e in selector.match_expressions
                    ]
                }
                if selector.match_expressions
                else {}
            ),
        },
    }
    if term.namespaces:
        rendered["namespaces"] = list(term.namespaces)
    return rendered


def _pod_affinity(affinity: Any, own: dict[str, str]) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if affinity.required:
        rendered["required_during_scheduling_ignored_during_execution"] = [
            _pod_term(term, own) for term in affinity.required
        ]
    if affinity.preferred:
        rendered["preferred_during_scheduling_ignored_during_execution"] = [
            {"weight": p.weight, "pod_affinity_term": _pod_term(p.pod_affinity_term, own)}
            for p in affinity.preferred
        ]
    return rendered


def _term(term: Any) -> dict[str, Any]:
    return {
        "match_expressions": [
            {"key": e.key, "operator": e.operator, **({"values": e.values} if e.values else {})}
            for e in term.match_expressions
        ]
    }


def _node_affinity(affinity: Any) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if affinity.required:
        rendered["required_during_scheduling_ignored_during_execution"] = {
            "node_selector_terms": [_term(term) for term in affinity.required]
        }
    if affinity.preferred:
        rendered["preferred_during_scheduling_ignored_during_execution"] = [
            {"weight": p.weight, "preference": _term(p.preference)} for p in affinity.preferred
        ]
    return rendered


def team_spread(
    config: ResolvedConfig, component: str, selector_labels: dict[str, str]
) -> list[Any]:
    """The team's topology spread for a long-running process, selecting its own pods."""
    process = team_process(config, component)
    own = process.topology_spread if process is not None else None
    chosen = own if own is not None else config.pods.topology_spread
    return [
        {
            "max_skew": c.max_skew,
            "topology_key": c.topology_key,
            "when_unsatisfiable": c.when_unsatisfiable,
            "label_selector": {"match_labels": dict(selector_labels)},
        }
        for c in chosen or []
    ]


def pod_metadata(config: ResolvedConfig, component: str | None = None) -> dict[str, Any]:
    """The team's pod labels and annotations: the top level, then the process block's."""
    process = team_process(config, component) if component else None
    metadata: dict[str, Any] = {}
    for name in ("labels", "annotations"):
        merged_values = {
            **(getattr(config.pods, f"pod_{name}") or {}),
            **((getattr(process, f"pod_{name}") if process is not None else None) or {}),
        }
        if merged_values:
            metadata[name] = merged_values
    return metadata


def placed(spec: Any, config: ResolvedConfig, component: str | None = None) -> Any:
    """A workload spec (StatefulSet/Deployment/Job, or a CronJob's job template) with the team's
    placement on its pod spec and its labels and annotations on the pod (ours win)."""
    template = (
        spec["job_template"]["spec"]["template"] if "job_template" in spec else spec["template"]
    )
    own_labels = (template.get("metadata") or {}).get("labels") or {}
    placement = pod_placement(config, component, own_labels)
    metadata = pod_metadata(config, component)
    if not placement and not metadata:
        return spec
    if "job_template" in spec:
        job = spec["job_template"]
        template = _with(job["spec"]["template"], placement, metadata)
        return {**spec, "job_template": {**job, "spec": {**job["spec"], "template": template}}}
    return {**spec, "template": _with(spec["template"], placement, metadata)}


def _with(template: Any, placement: dict[str, Any], metadata: dict[str, Any]) -> Any:
    own = template.get("metadata") or {}
    merged_metadata = {**own}
    for name, values in metadata.items():
        merged_metadata[name] = {**values, **(own.get(name) or {})}
    return {**template, "metadata": merged_metadata, "spec": {**template["spec"], **placement}}


def team_volumes(config: ResolvedConfig, component: str) -> list[dict[str, Any]]:
    """`extraVolumes` for a component's pods: the top level's, then its process block's."""
    process = team_process(config, component)
    volumes = [*config.pods.extra_volumes, *(process.extra_volumes if process else [])]
    rendered = []
    for volume in volumes:
        spec: dict[str, Any] = {"name": volume.name}
        if volume.secret is not None:
            spec["secret"] = {"secret_name": volume.secret.secret_name, "default_mode": 0o440}
        elif volume.config_map is not None:
            spec["config_map"] = {"name": volume.config_map.name}
        elif volume.empty_dir is not None:
            spec["empty_dir"] = {"size_limit": volume.empty_dir.size_limit}
        elif volume.persistent_volume_claim is not None:
            claim = volume.persistent_volume_claim
            spec["persistent_volume_claim"] = {
                "claim_name": claim.claim_name,
                "read_only": claim.read_only,
            }
        rendered.append(spec)
    return rendered


def team_mounts(config: ResolvedConfig, component: str) -> list[dict[str, Any]]:
    """`extraVolumeMounts` for a component's Airflow containers."""
    process = team_process(config, component)
    mounts = [*config.pods.extra_volume_mounts, *(process.extra_volume_mounts if process else [])]
    rendered = []
    for mount in mounts:
        spec: dict[str, Any] = {
            "name": mount.name,
            "mount_path": mount.mount_path,
            "read_only": mount.read_only,
        }
        if mount.sub_path:
            spec["sub_path"] = mount.sub_path
        rendered.append(spec)
    return rendered


def _container(spec: ExtraContainer) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "resources": resource_requirements(spec.resources),
        "security_context": container_security_context(),
    }
    if spec.command is not None:
        container["command"] = [literal(part) for part in spec.command]
    if spec.args is not None:
        container["args"] = [literal(part) for part in spec.args]
    if spec.env:
        container["env"] = [
            secret_env(item.name, item.secret)
            if item.secret is not None
            else plain_env(item.name, item.value or "")
            for item in spec.env
        ]
    if spec.volume_mounts:
        container["volume_mounts"] = [
            {
                "name": mount.name,
                "mount_path": mount.mount_path,
                "read_only": mount.read_only,
                **({"sub_path": mount.sub_path} if mount.sub_path else {}),
            }
            for mount in spec.volume_mounts
        ]
    if spec.ports:
        container["ports"] = [
            {
                "container_port": port.container_port,
                "protocol": port.protocol,
                **({"name": port.name} if port.name else {}),
            }
            for port in spec.ports
        ]
    return container


def team_containers(
    config: ResolvedConfig, component: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(init containers, sidecars) a process block adds to its pods."""
    process = team_process(config, component)
    if process is None:
        return [], []
    return (
        [_container(spec) for spec in process.extra_init_containers],
        [_container(spec) for spec in process.extra_containers],
    )

"""What the kubelet does to a rendered container before it runs, as pure functions.

- `expand`: Kubernetes `$(VAR)` expansion, a line-by-line port of the kubelet's
  `third_party/forked/golang/expansion` (`$$` escapes, unknown references stay verbatim).
- `resolve_env`: env + envFrom with `secretKeyRef` / `configMapKeyRef` / `fieldRef`, in the
  kubelet's order (envFrom first, then env in order, each `value` expanded against the
  variables declared before it and the service-link variables, then the remaining service vars).
- `expand_command`: command and args expanded against the final environment.
- `service_link_env`: the `<SVC>_SERVICE_HOST`/`<SVC>_PORT...` variables of `enableServiceLinks`.
- `materialize_volume`: the files of a Secret/ConfigMap/projected volume honoring `items`,
  `defaultMode` and `optional`.

Nothing here knows about Airflow; the manifests come from the rendering, never from a copy.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class KubeletError(RuntimeError):
    """What would be a CreateContainerConfigError (or similar) on a real node."""


# ---------------------------------------------------------------------------------------------
# $(VAR) expansion


def _try_read_variable_name(text: str) -> tuple[str, bool, int]:
    first = text[0]
    if first == "$":
        # Escaped operator: `$$` -> `$`.
        return "$", False, 1
    if first == "(":
        for index in range(1, len(text)):
            if text[index] == ")":
                return text[1:index], True, index + 1
        # Incomplete reference: returned as is.
        return "$(", False, 1
    # An operator that does not begin an expression.
    return "$" + first, False, 1


def mapping_for(*contexts: Mapping[str, str]) -> Callable[[str], str]:
    def mapping(name: str) -> str:
        for context in contexts:
            if name in context:
                return context[name]
        return f"$({name})"

    return mapping


def expand(value: str, mapping: Callable[[str], str]) -> str:
    """Kubernetes' `expansion.Expand`."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(value):
        if value[cursor] == "$" and cursor + 1 < len(value):
            out.append(value[checkpoint:cursor])
            read, is_var, advance = _try_read_variable_name(value[cursor + 1 :])
            out.append(mapping(read) if is_var else read)
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + value[checkpoint:]


# ---------------------------------------------------------------------------------------------
# Objects the kubelet reads: Secrets and ConfigMaps


def as_int(value: Any) -> int:
    """Mocked inputs turn integers into floats (5432.0): bring them back."""
    if isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    return int(value)


@dataclass
class ObjectStore:
    """Secrets and ConfigMaps by namespace and name: key -> bytes."""

    secrets: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)

    @staticmethod
    def from_manifests(manifests: Sequence[Mapping[str, Any]]) -> ObjectStore:
        store = ObjectStore()
        for manifest in manifests:
            kind = manifest.get("kind")
            if kind not in ("Secret", "ConfigMap"):
                continue
            meta = manifest.get("metadata") or {}
            data: dict[str, bytes] = {}
            if kind == "Secret":
                for key, value in (manifest.get("data") or {}).items():
                    data[key] = base64.b64decode(value)
                for key, value in (manifest.get("stringData") or {}).items():
                    data[key] = str(value).encode()
                store.add_secret(meta.get("namespace") or "default", meta["name"], data)
            else:
                for key, value in (manifest.get("data") or {}).items():
                    data[key] = str(value).encode()
                for key, value in (manifest.get("binaryData") or {}).items():
                    data[key] = base64.b64decode(value)
                store.config_maps[(meta.get("namespace") or "default", meta["name"])] = data
        return store

    def add_secret(self, namespace: str, name: str, data: Mapping[str, bytes | str]) -> None:
        if (namespace, name) in self.secrets:
            raise KubeletError(f"Secret {namespace}/{name} defined twice")
        self.secrets[(namespace, name)] = {
            key: value.encode() if isinstance(value, str) else value for key, value in data.items()
        }

    def _lookup(
        self, kind: str, namespace: str, name: str, key: str | None, optional: bool
    ) -> dict[str, bytes] | bytes | None:
        table = self.secrets if kind == "Secret" else self.config_maps
        obj = table.get((namespace, name))
        if obj is None:
            if optional:
                return None
            raise KubeletError(f"{kind} {namespace}/{name} not found (referenced, not optional)")
        if key is None:
            return obj
        if key not in obj:
            if optional:
                return None
            raise KubeletError(f"couldn't find key {key} in {kind} {namespace}/{name}")
        return obj[key]

    def secret_value(
        self, namespace: str, name: str, key: str, optional: bool = False
    ) -> bytes | None:
        value = self._lookup("Secret", namespace, name, key, optional)
        assert value is None or isinstance(value, bytes)
        return value

    def config_map_value(
        self, namespace: str, name: str, key: str, optional: bool = False
    ) -> bytes | None:
        value = self._lookup("ConfigMap", namespace, name, key, optional)
        assert value is None or isinstance(value, bytes)
        return value

    def secret(self, namespace: str, name: str, optional: bool = False) -> dict[str, bytes] | None:
        value = self._lookup("Secret", namespace, name, None, optional)
        assert value is None or isinstance(value, dict)
        return value

    def config_map(
        self, namespace: str, name: str, optional: bool = False
    ) -> dict[str, bytes] | None:
        value = self._lookup("ConfigMap", namespace, name, None, optional)
        assert value is None or isinstance(value, dict)
        return value


# ---------------------------------------------------------------------------------------------
# Pod identity, as the downward API sees it


@dataclass(frozen=True)
class PodInfo:
    name: str
    namespace: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    service_account: str
    ip: str = "127.0.0.1"
    node_name: str = "e2e-node"
    uid: str = "00000000-0000-0000-0000-000000000000"

    def field(self, path: str) -> str:
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node_name,
            "spec.serviceAccountName": self.service_account,
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": self.ip,
            "status.hostIPs": self.ip,
        }
        if path in simple:
            return simple[path]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if match:
            source = self.labels if match.group(1) == "labels" else self.annotations
            return source.get(match.group(2), "")
        raise KubeletError(f"unsupported fieldRef {path!r}")


def _decode(value: bytes) -> str:
    return value.decode("utf-8")


def resolve_env(
    container: Mapping[str, Any],
    store: ObjectStore,
    pod: PodInfo,
    service_env: Mapping[str, str],
) -> dict[str, str]:
    """The container's final environment, as kubelet's makeEnvironmentVariables builds it."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if "configMapRef" in source:
            ref = source["configMapRef"]
            values = store.config_map(pod.namespace, ref["name"], bool(ref.get("optional")))
        elif "secretRef" in source:
            ref = source["secretRef"]
            values = store.secret(pod.namespace, ref["name"], bool(ref.get("optional")))
        else:
            raise KubeletError(f"unsupported envFrom source {source!r}")
        for key, content in (values or {}).items():
            env[prefix + key] = _decode(content)

    mapping = mapping_for(env, service_env)
    for var in container.get("env") or []:
        name = var["name"]
        value: str = var.get("value") or ""
        if value != "":
            value = expand(value, mapping)
        elif var.get("valueFrom"):
            source = var["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                raw = store.secret_value(
                    pod.namespace, ref["name"], ref["key"], bool(ref.get("optional"))
                )
                if raw is None:
                    continue  # optional and missing: the variable is not set
                value = _decode(raw)
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                raw = store.config_map_value(
                    pod.namespace, ref["name"], ref["key"], bool(ref.get("optional"))
                )
                if raw is None:
                    continue
                value = _decode(raw)
            elif "fieldRef" in source:
                value = pod.field(source["fieldRef"]["fieldPath"])
            else:
                raise KubeletError(f"unsupported valueFrom for {name}: {source!r}")
        env[name] = value
    for key, linked in service_env.items():
        env.setdefault(key, linked)
    return env


def expand_command(
    container: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """`ExpandContainerCommandAndArgs`: command and args expanded against the final env."""
    mapping = mapping_for(env)
    command = [expand(str(part), mapping) for part in container.get("command") or []]
    args = [expand(str(part), mapping) for part in container.get("args") or []]
    return command, args


# ---------------------------------------------------------------------------------------------
# Service links (enableServiceLinks, default true)


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_link_env(
    services: Sequence[Mapping[str, Any]],
    namespace: str,
    address: Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[str, int]],
) -> dict[str, str]:
    """The variables `envvars.FromServices` makes for every Service of the pod's namespace that has
    a cluster IP. `address(service, port)` says where that Service port is reachable locally."""
    env: dict[str, str] = {}
    for service in services:
        meta = service.get("metadata") or {}
        spec = service.get("spec") or {}
        if (meta.get("namespace") or "default") != namespace:
            continue
        if spec.get("clusterIP") in ("None",) or spec.get("type") == "ExternalName":
            continue  # headless Services and ExternalNames get no variables
        ports = spec.get("ports") or []
        if not ports:
            continue
        prefix = _env_name(meta["name"])
        first_host, first_port = address(service, ports[0])
        env[f"{prefix}_SERVICE_HOST"] = first_host
        env[f"{prefix}_SERVICE_PORT"] = str(first_port)
        for port in ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(
                    address(service, port)[1]
                )
        for index, port in enumerate(ports):
            protocol = (port.get("protocol") or "TCP").lower()
            host, number = address(service, port)
            url = f"{protocol}://{host}:{number}"
            if index == 0:
                env[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{as_int(port['port'])}_{protocol.upper()}"
            env[port_prefix] = url
            env[f"{port_prefix}_PROTO"] = protocol
            env[f"{port_prefix}_PORT"] = str(number)
            env[f"{port_prefix}_ADDR"] = host
    return env


# ---------------------------------------------------------------------------------------------
# Volumes


def _write_file(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode)


def _project_keys(
    kind: str,
    values: Mapping[str, bytes] | None,
    items: Sequence[Mapping[str, Any]] | None,
    default_mode: int,
    optional: bool,
    name: str,
) -> list[tuple[str, bytes, int]]:
    if values is None:
        return []
    if not items:
        return [(key, value, default_mode) for key, value in values.items()]
    files = []
    for item in items:
        key = item["key"]
        if key not in values:
            if optional:
                continue
            raise KubeletError(f"{kind} {name}: volume item key {key!r} not found")
        mode = as_int(item["mode"]) if item.get("mode") is not None else default_mode
        files.append((item["path"], values[key], mode))
    return files


def materialize_volume(
    volume: Mapping[str, Any], store: ObjectStore, namespace: str, directory: Path
) -> str:
    """Create the volume's directory and contents; returns its kind (`emptyDir`, `secret`, ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        os.chmod(directory, 0o777)  # what the kubelet creates
        return "emptyDir"
    files: list[tuple[str, bytes, int]] = []
    if "secret" in volume:
        source = volume["secret"]
        optional = bool(source.get("optional"))
        mode = as_int(source.get("defaultMode", 0o644))
        values = store.secret(namespace, source["secretName"], optional)
        files = _project_keys(
            "Secret", values, source.get("items"), mode, optional, source["secretName"]
        )
        kind = "secret"
    elif "configMap" in volume:
        source = volume["configMap"]
        optional = bool(source.get("optional"))
        mode = as_int(source.get("defaultMode", 0o644))
        values = store.config_map(namespace, source["name"], optional)
        files = _project_keys(
            "ConfigMap", values, source.get("items"), mode, optional, source["name"]
        )
        kind = "configMap"
    elif "projected" in volume:
        projected = volume["projected"]
        mode = as_int(projected.get("defaultMode", 0o644))
        for source in projected.get("sources") or []:
            if "secret" in source:
                ref = source["secret"]
                optional = bool(ref.get("optional"))
                values = store.secret(namespace, ref["name"], optional)
                files += _project_keys(
                    "Secret", values, ref.get("items"), mode, optional, ref["name"]
                )
            elif "configMap" in source:
                ref = source["configMap"]
                optional = bool(ref.get("optional"))
                values = store.config_map(namespace, ref["name"], optional)
                files += _project_keys(
                    "ConfigMap", values, ref.get("items"), mode, optional, ref["name"]
                )
            else:
                raise KubeletError(f"unsupported projected source {source!r}")
        kind = "projected"
    else:
        raise KubeletError(f"volume {volume.get('name')}: unsupported type {sorted(volume)}")
    for relative, content, file_mode in files:
        if relative.startswith("/") or ".." in Path(relative).parts:
            raise KubeletError(f"volume {volume.get('name')}: invalid item path {relative!r}")
        _write_file(directory / relative, content, file_mode)
    # Secret, ConfigMap and projected volumes are always mounted read-only.
    for root, dirs, _ in os.walk(directory):
        for name in dirs:
            os.chmod(Path(root) / name, 0o555)
    os.chmod(directory, 0o555)
    return kind

"""Cluster networking on one machine: Service DNS names and ports -> 127.0.0.1:<host port>.

A Service port is followed exactly as kube-proxy/DNS would: selector -> the workload whose pod
template labels match -> `targetPort` (number or container port name) -> the host port where the
harness runs (or plays) that container. References the rendering cannot resolve are errors, not
guesses: a URL to a Service or port that does not exist fails here before any process starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .kubelet import as_int

CLUSTER_DOMAIN = "cluster.local"
LOOPBACK = "127.0.0.1"
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
CLUSTER_HOST = re.compile(
    rf"(?<![\w.-])(?P<host>{_LABEL}\.{_LABEL}\.svc(?:\.{re.escape(CLUSTER_DOMAIN)})?)"
    rf"(?::(?P<port>\d+))?(?![\w-])"
)


class NetworkError(RuntimeError):
    pass


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    namespace: str
    labels: Mapping[str, str]
    pod_spec: Mapping[str, Any]


@dataclass
class Network:
    namespace: str
    services: list[Mapping[str, Any]]
    workloads: list[Workload]
    # (workload name, containerPort) -> host port, for every container the harness runs.
    container_ports: dict[tuple[str, int], int] = field(default_factory=dict)
    # workload name -> host port, for workloads a test service plays (Postgres -> test server).
    played: dict[str, int] = field(default_factory=dict)
    # (host, port) -> host port, for names outside the cluster (an external database).
    external: dict[tuple[str, int], int] = field(default_factory=dict)
    ingresses: list[Mapping[str, Any]] = field(default_factory=list)
    # -- resolution ----------------------------------------------------------------------------

    def service(self, name: str, namespace: str) -> Mapping[str, Any] | None:
        for service in self.services:
            meta = service.get("metadata") or {}
            if meta.get("name") == name and (meta.get("namespace") or "default") == namespace:
                return service
        return None

    def backends(self, service: Mapping[str, Any]) -> list[Workload]:
        selector = (service.get("spec") or {}).get("selector") or {}
        namespace = (service.get("metadata") or {}).get("namespace") or "default"
        if not selector:
            return []
        return [
            w
            for w in self.workloads
            if w.namespace == namespace and all(w.labels.get(k) == v for k, v in selector.items())
        ]

    def target_host_port(self, service: Mapping[str, Any], port: Mapping[str, Any]) -> int:
        """The loopback port behind one Service port (through targetPort)."""
        name = (service.get("metadata") or {}).get("name")
        backends = self.backends(service)
        if not backends:
            raise NetworkError(f"Service {name}: selector matches no rendered workload")
        target = port.get("targetPort", port.get("port"))
        found: set[int] = set()
        for workload in backends:
            if workload.name in self.played:
                found.add(self.played[workload.name])
                continue
            for container in workload.pod_spec.get("containers") or []:
                for declared in container.get("ports") or []:
                    number = as_int(declared["containerPort"])
                    matches = (
                        declared.get("name") == target
                        if isinstance(target, str) and not target.isdigit()
                        else number == as_int(target)
                    )
                    if matches:
                        key = (workload.name, number)
                        if key not in self.container_ports:
                            raise NetworkError(
                                f"Service {name} port {port.get('port')} -> {workload.kind} "
                                f"{workload.name}:{number}, which the harness does not run"
                            )
                        found.add(self.container_ports[key])
        if not found:
            raise NetworkError(
                f"Service {name} port {port.get('port')}: targetPort {target!r} matches no "
                f"container port of {[w.name for w in backends]}"
            )
        if len(found) > 1:
            raise NetworkError(f"Service {name}: several backends {sorted(found)}")
        return found.pop()

    def resolve(self, host: str, port: int | None) -> tuple[str, int | None]:
        """`host[:port]` as a pod sees it -> loopback address and port (port None = keep it)."""
        if port is not None and (host, port) in self.external:
            return LOOPBACK, self.external[(host, port)]
        parts = host.split(".")
        if len(parts) >= 3 and parts[2] == "svc":
            service = self.service(parts[0], parts[1])
            if service is None:
                raise NetworkError(f"{host}: no rendered Service {parts[1]}/{parts[0]}")
            ports = (service.get("spec") or {}).get("ports") or []
            if port is None:
                # A bare host (port given elsewhere): sound only if every port keeps its number.
                for declared in ports:
                    if self.target_host_port(service, declared) != as_int(declared["port"]):
                        raise NetworkError(
                            f"{host} without a port, but its port {declared['port']} is served on "
                            f"another local port: the harness cannot map it"
                        )
                return LOOPBACK, None
            for declared in ports:
                if as_int(declared["port"]) == port:
                    return LOOPBACK, self.target_host_port(service, declared)
            raise NetworkError(f"{host}:{port}: Service {parts[0]} has no port {port}")
        raise NetworkError(f"{host}: not a cluster Service name and not a known external host")

    # -- rewriting values ---------------------------------------------------------------------

    def translate(self, value: str) -> str:
        """Rewrite every cluster Service reference (and known external host) in a value."""

        def replace(match: re.Match[str]) -> str:
            host = match.group("host")
            port = int(match.group("port")) if match.group("port") else None
            new_host, new_port = self.resolve(host, port)
            return new_host if new_port is None else f"{new_host}:{new_port}"

        value = CLUSTER_HOST.sub(replace, value)
        for (host, port), local in self.external.items():
            pattern = re.compile(rf"(?<![\w.-]){re.escape(host)}:{port}(?![\d])")
            value = pattern.sub(f"{LOOPBACK}:{local}", value)
        return value

    def external_url_endpoint(self, url: str) -> tuple[int, str | None]:
        """The loopback port behind a URL users open (NodePort on localhost, or an Ingress host).

        Returns (port, Host header to send)."""
        match = re.match(
            r"^(?P<scheme>https?)://(?P<host>[^/:]+)(?::(?P<port>\d+))?(?P<path>/.*)?$", url
        )
        if not match:
            raise NetworkError(f"unparsable URL {url!r}")
        host = match.group("host")
        port = int(match.group("port")) if match.group("port") else None
        if host in ("localhost", "127.0.0.1") and port is not None:
            for service in self.services:
                spec = service.get("spec") or {}
                if spec.get("type") not in ("NodePort", "LoadBalancer"):
                    continue
                for declared in spec.get("ports") or []:
                    if (
                        declared.get("nodePort") is not None
                        and as_int(declared["nodePort"]) == port
                    ):
                        return self.target_host_port(service, declared), None
            raise NetworkError(f"{url}: no rendered NodePort {port}")
        url_path = match.group("path") or "/"
        candidates: list[tuple[int, Mapping[str, Any], Mapping[str, Any]]] = []
        for ingress in self.ingresses:
            for rule in (ingress.get("spec") or {}).get("rules") or []:
                if rule.get("host") != host:
                    continue
                for path in (rule.get("http") or {}).get("paths") or []:
                    prefix = (path.get("path") or "/").rstrip("/")
                    if url_path == prefix or url_path.startswith(prefix + "/") or not prefix:
                        candidates.append((len(prefix), ingress, path))
        if candidates:
            # Prefix paths: the longest match wins, as in every Ingress controller.
            _, ingress, path = max(candidates, key=lambda c: c[0])
            backend = path["backend"]["service"]
            namespace = (ingress.get("metadata") or {}).get("namespace") or "default"
            found = self.service(backend["name"], namespace)
            if found is None:
                raise NetworkError(f"Ingress backend Service {backend['name']} not rendered")
            wanted = backend.get("port") or {}
            for declared in (found.get("spec") or {}).get("ports") or []:
                if ("name" in wanted and declared.get("name") == wanted["name"]) or (
                    "number" in wanted and as_int(declared["port"]) == as_int(wanted["number"])
                ):
                    return self.target_host_port(found, declared), host
            raise NetworkError(f"Ingress backend port {wanted} not on Service {backend['name']}")
        raise NetworkError(f"{url}: no NodePort or Ingress rule serves it")

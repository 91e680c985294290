"""How the api-server is reached: its Service (ClusterIP/NodePort/LoadBalancer) and the Ingress."""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import ServicePortArgsDict, ServiceSpecArgsDict
from pulumi_kubernetes.networking.v1 import HTTPIngressPathArgsDict, IngressSpecArgsDict

from .config import IngressConfig, ServiceConfig
from .naming import API_SERVER_PORT, FLOWER_PORT, Naming
from .resolve import Celery

API_SERVER = "api-server"


def api_server_service_spec(naming: Naming, service: ServiceConfig) -> ServiceSpecArgsDict:
    port: ServicePortArgsDict = {"name": "api", "port": API_SERVER_PORT, "target_port": "api"}
    if service.node_port is not None:
        port["node_port"] = service.node_port
    return {"type": service.type, "selector": naming.labels(API_SERVER), "ports": [port]}


def flower_service_spec(naming: Naming) -> ServiceSpecArgsDict:
    return {
        "type": "ClusterIP",
        "selector": naming.labels("flower"),
        "ports": [{"name": "flower", "port": FLOWER_PORT, "target_port": "flower"}],
    }


def _path(path: str, service: str, port: str) -> HTTPIngressPathArgsDict:
    return {
        "path": path,
        "path_type": "Prefix",
        "backend": {"service": {"name": service, "port": {"name": port}}},
    }


def ingress_spec(
    naming: Naming, ingress: IngressConfig, celery: Celery | None = None
) -> IngressSpecArgsDict:
    assert ingress.host is not None
    paths = [_path(ingress.path, naming.object(API_SERVER), "api")]
    if celery is not None and celery.flower.enabled and celery.flower.ingress_path:
        # More specific first, for controllers that match in order.
        paths.insert(0, _path(celery.flower.ingress_path, naming.object("flower"), "flower"))
    spec: IngressSpecArgsDict = {"rules": [{"host": ingress.host, "http": {"paths": paths}}]}
    if ingress.class_name:
        spec["ingress_class_name"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secret_name": ingress.tls_secret_name}]
    return spec

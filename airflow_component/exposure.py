"""How the api-server is reached: its Service (ClusterIP/NodePort/LoadBalancer) and the Ingress."""

from __future__ import annotations

from pulumi_kubernetes.core.v1 import ServicePortArgsDict, ServiceSpecArgsDict
from pulumi_kubernetes.networking.v1 import IngressSpecArgsDict

from .config import IngressConfig, ServiceConfig
from .naming import API_SERVER_PORT, Naming

API_SERVER = "api-server"


def api_server_service_spec(naming: Naming, service: ServiceConfig) -> ServiceSpecArgsDict:
    port: ServicePortArgsDict = {"name": "api", "port": API_SERVER_PORT, "target_port": "api"}
    if service.node_port is not None:
        port["node_port"] = service.node_port
    return {"type": service.type, "selector": naming.labels(API_SERVER), "ports": [port]}


def ingress_spec(naming: Naming, ingress: IngressConfig) -> IngressSpecArgsDict:
    assert ingress.host is not None
    spec: IngressSpecArgsDict = {
        "rules": [
            {
                "host": ingress.host,
                "http": {
                    "paths": [
                        {
                            "path": ingress.path,
                            "path_type": "Prefix",
                            "backend": {
                                "service": {
                                    "name": naming.object(API_SERVER),
                                    "port": {"name": "api"},
                                }
                            },
                        }
                    ]
                },
            }
        ]
    }
    if ingress.class_name:
        spec["ingress_class_name"] = ingress.class_name
    if ingress.tls_secret_name:
        spec["tls"] = [{"hosts": [ingress.host], "secret_name": ingress.tls_secret_name}]
    return spec

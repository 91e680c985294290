"""Network exposure and policies: Ingress, NetworkPolicies, availability."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from .types import (
    Cidr,
    DnsLabel,
    DnsSubdomain,
    Hostname,
    StrictModel,
)


class PortSpec(StrictModel):
    """A destination port of an extra egress rule."""

    port: int = Field(ge=1, le=65535, description="Port number.")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(default="TCP", description="Protocol.")


class EgressRule(StrictModel):
    """Extra egress for Airflow pods (e.g. a data warehouse, an object store endpoint)."""

    cidrs: list[Cidr] = Field(min_length=1, description="Destination CIDRs.")
    ports: list[PortSpec] = Field(min_length=1, description="Destination ports.")


class NetworkPoliciesConfig(StrictModel):
    """NetworkPolicies: default deny, then only the traffic Airflow needs."""

    enabled: bool | None = Field(
        default=None, description="Create NetworkPolicies; default true outside local."
    )
    ingress_controller_namespace: DnsLabel = Field(
        default="ingress-nginx",
        description="Namespace of the ingress controller allowed to reach the api-server.",
    )
    kubernetes_api_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="Where the Kubernetes API is, for pods that launch pods (ports 443/6443).",
    )
    dag_source_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description="Where git-sync may connect (443 for https:// repos, 22 for SSH).",
    )
    log_storage_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["0.0.0.0/0"],
        min_length=1,
        description=(
            "Where remote task logs live (S3/GCS endpoints, and STS for IRSA): every process "
            "that writes or reads task logs may reach them on 443. Narrow to your VPC endpoint "
            "or the provider's published ranges."
        ),
    )
    dns_cidrs: list[Cidr] = Field(
        default_factory=lambda: ["169.254.20.10/32", "169.254.169.254/32"],
        description=(
            "DNS servers that are not kube-dns pods (port 53): NodeLocal DNSCache "
            "(169.254.20.10) and GKE Cloud DNS / the metadata server (169.254.169.254)."
        ),
    )
    keda_namespace: DnsLabel = Field(
        default="keda",
        description="Namespace of the KEDA operator (it queries the metadata DB to scale workers).",
    )
    extra_egress: list[EgressRule] = Field(
        default_factory=list, description="Extra egress for Airflow pods."
    )


class AvailabilityConfig(StrictModel):
    """Disruption budgets and spreading for processes with more than one replica."""

    pod_disruption_budgets: bool = Field(
        default=True, description="PodDisruptionBudgets (maxUnavailable 1) when replicas > 1."
    )
    spread_across_nodes: bool = Field(
        default=True, description="Topology spread across nodes when replicas > 1."
    )


class IngressConfig(StrictModel):
    """A networking.k8s.io/v1 Ingress in front of the api-server."""

    enabled: bool = Field(default=False, description="Create the Ingress.")
    class_name: DnsSubdomain | None = Field(default=None, description="ingressClassName.")
    host: Hostname | None = Field(default=None, description="Public host name.")
    path: Annotated[str, StringConstraints(pattern=r"^/[^\s]*$")] = Field(
        default="/", description="Path prefix served by the api-server."
    )
    tls_secret_name: DnsSubdomain | None = Field(
        default=None, description="Existing TLS Secret for `host` (enables HTTPS)."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations for the ingress controller."
    )

    @model_validator(mode="after")
    def _tls_needs_host(self) -> IngressConfig:
        if self.tls_secret_name and not self.host:
            raise ValueError("tlsSecretName is set but host is empty: TLS needs a host")
        if self.enabled and not self.host:
            raise ValueError("an enabled ingress needs a host")
        return self

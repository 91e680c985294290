"""One part per long-running Airflow process, holding all of its objects: the Deployment, its
disruption budget, and what exposes or scales it (api-server Service, Ingress and HPA; the
workers' KEDA objects; Flower's Service). Plus the KubernetesExecutor's pod template."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .. import autoscaling, exposure
from ..availability import disruption_budget_spec
from ..kube import checksum
from ..needs import API_SERVER, FLOWER, WORKER
from ..placement import placed
from ..pod_template import TEMPLATE_COMPONENT, TEMPLATE_FILE, pod_template_yaml
from ..processes import Process, deployment_spec
from ..resolve import CeleryWorkers
from .base import Context, Part

KEDA_API = "keda.sh/v1alpha1"


class KubernetesExecutor(Part):
    """The task-pod template ConfigMap the scheduler reads at start."""

    template_checksum: str

    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("KubernetesExecutor", "kubernetes-executor", context, opts)
        template = pod_template_yaml(context.runtime)
        k8s.core.v1.ConfigMap(
            self.name(TEMPLATE_COMPONENT),
            metadata=self.metadata(TEMPLATE_COMPONENT),
            data={TEMPLATE_FILE: template},
            opts=self.opts(),
        )
        self.template_checksum = checksum(template)
        self.finish()


class AirflowProcess(Part):
    def __init__(self, context: Context, process: Process, opts: pulumi.ResourceOptions) -> None:
        component = process.component
        super().__init__("AirflowProcess", component, context, opts)
        config, naming = self.config, self.naming
        pools = {pool.component: pool for pool in (config.celery.pools if config.celery else ())}
        k8s.apps.v1.Deployment(
            self.name(component),
            metadata=self.metadata(component),
            spec=placed(
                deployment_spec(context.runtime, process),
                self.config,
                process.needs.component,
            ),
            opts=self.opts(),
        )
        if process.needs.has_budget and config.availability.pod_disruption_budgets:
            k8s.policy.v1.PodDisruptionBudget(
                self.name(component),
                metadata=self.metadata(component),
                spec=disruption_budget_spec(naming, component),
                opts=self.opts(),
            )
        if component == API_SERVER:
            self._api_server()
        elif (pool := pools.get(component)) is not None:
            self._worker_autoscaling(pool)
        elif component == FLOWER:
            k8s.core.v1.Service(
                self.name(FLOWER),
                metadata=self.metadata(FLOWER),
                spec=exposure.flower_service_spec(naming),
                opts=self.opts(),
            )
        self.finish()

    def _api_server(self) -> None:
        config, naming = self.config, self.naming
        k8s.core.v1.Service(
            self.name(API_SERVER),
            metadata=self.metadata(API_SERVER),
            spec=exposure.api_server_service_spec(naming, config.api_server.service),
            opts=self.opts(),
        )
        if config.ingress.enabled:
            k8s.networking.v1.Ingress(
                self.name(API_SERVER),
                metadata=self.metadata(API_SERVER, annotations=config.ingress.annotations),
                spec=exposure.ingress_spec(naming, config.ingress, config.celery),
                opts=self.opts(),
            )
        if config.autoscaling.api_server.enabled:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                self.name(API_SERVER),
                metadata=self.metadata(API_SERVER),
                spec=autoscaling.api_server_hpa_spec(config, naming),
                opts=self.opts(),
            )

    def _worker_autoscaling(self, pool: CeleryWorkers) -> None:
        """The pool's ScaledObject; the default pool's part also holds the scaler's
        TriggerAuthentication, which every pool's ScaledObject names (KEDA retries a ScaledObject
        whose authentication does not exist yet)."""
        config, naming = self.config, self.naming
        secrets = self.context.runtime.secrets
        first: list[pulumi.Resource] = []
        if pool.component == WORKER and config.celery is not None and config.celery.autoscaled:
            first.append(
                k8s.apiextensions.CustomResource(
                    self.name("keda-postgres"),
                    api_version=KEDA_API,
                    kind="TriggerAuthentication",
                    metadata=self.metadata("keda-postgres"),
                    spec=autoscaling.keda_trigger_authentication_spec(naming, secrets),
                    opts=self.opts(),
                )
            )
        if not pool.autoscaling.enabled:
            return
        k8s.apiextensions.CustomResource(
            self.name(pool.component),
            api_version=KEDA_API,
            kind="ScaledObject",
            metadata=self.metadata(pool.component),
            spec=autoscaling.worker_scaled_object_spec(config, naming, secrets, pool),
            opts=self.opts(depends_on=first),
        )

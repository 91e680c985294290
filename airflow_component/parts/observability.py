"""Metrics: the statsd-exporter that turns Airflow's statsd into Prometheus metrics."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .. import metrics
from ..kube import checksum
from ..placement import placed
from .base import Context, Part


class Metrics(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Metrics", "metrics", context, opts)
        config, naming = self.config, self.naming
        component = metrics.COMPONENT
        mappings = k8s.core.v1.ConfigMap(
            self.name(component),
            metadata=self.metadata(component),
            data={metrics.MAPPING_FILE: metrics.MAPPINGS},
            opts=self.opts(),
        )
        k8s.apps.v1.Deployment(
            self.name(component),
            metadata=self.metadata(component),
            spec=placed(
                metrics.exporter_deployment_spec(
                    config.metrics, naming, checksum(metrics.MAPPINGS)
                ),
                config,
            ),
            opts=self.opts(depends_on=[mappings]),
        )
        k8s.core.v1.Service(
            self.name(component),
            metadata=self.metadata(component, annotations=metrics.scrape_annotations()),
            spec=metrics.exporter_service_spec(naming),
            opts=self.opts(),
        )
        if config.metrics.service_monitor:
            k8s.apiextensions.CustomResource(
                self.name(component),
                api_version="monitoring.coreos.com/v1",
                kind="ServiceMonitor",
                metadata=self.metadata(component),
                spec=metrics.service_monitor_spec(naming),
                opts=self.opts(),
            )
        self.finish()

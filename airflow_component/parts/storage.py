"""Storage: what Airflow pods mount besides Secrets: the DAG volume (and its hostPath
PersistentVolume locally), the shared logs claim and the airflow.cfg ConfigMap."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..airflow_env import AIRFLOW_CFG, AIRFLOW_CFG_COMPONENT
from ..dags import dags_claim_spec, host_path_volume_name, host_path_volume_spec
from ..kube import claim_spec
from .base import Context, Part

# With WaitForFirstConsumer a claim binds only once a pod uses it: do not await it.
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}


class Storage(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Storage", "storage", context, opts)
        config, naming = self.config, self.naming
        k8s.core.v1.ConfigMap(
            self.name(AIRFLOW_CFG_COMPONENT),
            metadata=self.metadata(AIRFLOW_CFG_COMPONENT),
            data={"airflow.cfg": AIRFLOW_CFG},
            opts=self.opts(),
        )
        volume: list[pulumi.Resource] = []
        volume_spec = host_path_volume_spec(config.dags, naming)
        if volume_spec is not None:
            volume.append(
                k8s.core.v1.PersistentVolume(
                    self.name("dags-host-path"),
                    metadata={
                        "name": host_path_volume_name(naming),
                        "labels": naming.metadata_labels("dags"),
                    },
                    spec=volume_spec,
                    opts=self.opts(),
                )
            )
        dags_claim = dags_claim_spec(config.dags, naming)
        if dags_claim is not None:
            k8s.core.v1.PersistentVolumeClaim(
                self.name("dags"),
                metadata=self.metadata("dags", annotations=SKIP_AWAIT),
                spec=dags_claim,
                opts=self.opts(depends_on=volume),
            )
        logs = config.logging.volume
        if logs is not None:
            k8s.core.v1.PersistentVolumeClaim(
                self.name("logs"),
                metadata=self.metadata("logs", annotations=SKIP_AWAIT),
                spec=claim_spec("ReadWriteMany", logs.size, logs.storage_class_name),
                opts=self.opts(),
            )
        self.finish()

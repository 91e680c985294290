"""Operations: scheduled housekeeping (db clean, finished task pods), the pools Job and the
Fernet re-encryption Job. All run Airflow commands against the migrated schema."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..declarative import POOLS_FILE, pools_job_name, pools_json
from ..fernet import ROTATE_COMPONENT, rotation_checksum
from ..jobs import db_clean_spec, pod_cleanup_spec, pools_job_spec, rotate_fernet_job_spec
from ..needs import DB_CLEAN, POD_CLEANUP, POOLS
from ..placement import placed
from .base import Context, Part


class Operations(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Operations", "operations", context, opts)
        runtime, config, naming = context.runtime, self.config, self.naming
        for component, cron_spec in (
            (DB_CLEAN, db_clean_spec(runtime)),
            (POD_CLEANUP, pod_cleanup_spec(runtime)),
        ):
            if cron_spec is not None:
                k8s.batch.v1.CronJob(
                    self.name(component),
                    metadata=self.metadata(component),
                    spec=placed(cron_spec, self.config),
                    opts=self.opts(),
                )
        if config.pools:
            pools_map = k8s.core.v1.ConfigMap(
                self.name(POOLS),
                metadata=self.metadata(POOLS),
                data={POOLS_FILE: pools_json(config.pools)},
                opts=self.opts(),
            )
            # Named by a checksum of the pools: Pulumi re-runs it exactly when they change.
            k8s.batch.v1.Job(
                self.name(POOLS),
                metadata=self.metadata(POOLS, job=True, name=pools_job_name(naming, config.pools)),
                spec=placed(pools_job_spec(runtime), self.config),
                opts=self.opts(depends_on=[pools_map]),
            )
        if config.fernet.previous_keys:
            checksum = rotation_checksum(config.fernet, runtime.secrets.fernet_key)
            k8s.batch.v1.Job(
                self.name(ROTATE_COMPONENT),
                metadata=self.metadata(
                    ROTATE_COMPONENT,
                    job=True,
                    name=naming.object(f"{ROTATE_COMPONENT}-{checksum}"),
                ),
                spec=placed(rotate_fernet_job_spec(runtime), self.config),
                opts=self.opts(),
            )
        self.finish()

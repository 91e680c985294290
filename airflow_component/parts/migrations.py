"""Migrations: the schema migration Job, then (FAB) the admin-user Job. Every Airflow workload
depends on this part, so none starts or rolls before the schema matches its image."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..jobs import admin_user_job_spec, migration_job_spec
from ..needs import CREATE_ADMIN, MIGRATE
from ..placement import placed
from .base import Context, Part


class Migrations(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Migrations", "migrations", context, opts)
        runtime = context.runtime
        self.migrate = k8s.batch.v1.Job(
            self.name(MIGRATE),
            metadata=self.metadata(MIGRATE, job=True),
            spec=placed(migration_job_spec(runtime), self.config),
            opts=self.opts(),
        )
        if self.config.auth.manager == "fab" and self.config.auth.create_admin:
            k8s.batch.v1.Job(
                self.name(CREATE_ADMIN),
                metadata=self.metadata(CREATE_ADMIN, job=True),
                spec=placed(admin_user_job_spec(runtime), self.config),
                opts=self.opts(depends_on=[self.migrate]),
            )
        self.finish()

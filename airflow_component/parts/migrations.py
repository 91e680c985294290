"""Migrations: (with upgrade.allowDowngrade, the downgrade Job,) the schema migration Job, then
(FAB) the admin-user Job. Every Airflow workload depends on this part, so none starts or rolls
before the schema matches its image."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..jobs import admin_user_job_spec, downgrade_job_spec, migration_job_spec
from ..needs import CREATE_ADMIN, DOWNGRADE, MIGRATE
from ..placement import placed
from .base import Context, Part


class Migrations(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Migrations", "migrations", context, opts)
        runtime = context.runtime
        before_migration: list[pulumi.Resource] = []
        if self.config.downgrade_from is not None:
            # After the snapshot (this part depends on the database's), before the migration
            # Job, which then finds the schema its image knows.
            before_migration.append(
                k8s.batch.v1.Job(
                    self.name(DOWNGRADE),
                    metadata=self.metadata(DOWNGRADE, job=True),
                    spec=placed(downgrade_job_spec(runtime), self.config),
                    opts=self.opts(),
                )
            )
        self.migrate = k8s.batch.v1.Job(
            self.name(MIGRATE),
            metadata=self.metadata(MIGRATE, job=True),
            spec=placed(migration_job_spec(runtime), self.config),
            opts=self.opts(depends_on=before_migration),
        )
        if self.config.auth.manager == "fab" and self.config.auth.create_admin:
            k8s.batch.v1.Job(
                self.name(CREATE_ADMIN),
                metadata=self.metadata(CREATE_ADMIN, job=True),
                spec=placed(admin_user_job_spec(runtime), self.config),
                opts=self.opts(depends_on=[self.migrate]),
            )
        self.finish()

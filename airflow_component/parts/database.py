"""The metadata database (in-cluster Postgres, PgBouncer in front of it, backups) and the Celery
broker (Redis)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import StatefulSetSpecArgsDict

from .. import backups, broker, database, pgbouncer
from ..datastore import (
    CLAIM_SIZE_PATH,
    DATA_VOLUME,
    DataStore,
    claim_growth_spec,
    data_claim_name,
)
from ..kube import claim_spec, keyed_checksum
from ..placement import placed
from ..secrets import secret_manifest
from .base import Context, Part
from .secrets import Secrets
from .storage import SKIP_AWAIT


def stateful_store(
    part: Part, store: DataStore, spec: StatefulSetSpecArgsDict, *, protect: bool, setting: str
) -> k8s.apps.v1.StatefulSet:
    """A data store's StatefulSet and, with a claim, the patch that grows the live claim to the
    configured size (the claim template itself is never changed: see CLAIM_SIZE_PATH)."""
    claimed = not store.ephemeral
    if claimed:
        part.record_data_object("StatefulSet", store.component, spec, setting, protect)
    server = k8s.apps.v1.StatefulSet(
        part.name(store.component),
        metadata=part.metadata(store.component),
        spec=spec,
        opts=part.opts(protect=protect, ignore_changes=[CLAIM_SIZE_PATH] if claimed else []),
    )
    if claimed:
        naming = part.naming
        k8s.core.v1.PersistentVolumeClaimPatch(
            part.name(f"{store.component}-{DATA_VOLUME}"),
            metadata={
                "name": data_claim_name(naming, store),
                "namespace": naming.namespace,
                # The controller that created the claim owns its request: take it over.
                "annotations": {"pulumi.com/patchForce": "true"},
            },
            spec=claim_growth_spec(store),
            # After the StatefulSet is ready, so the claim exists; removing the patch (the store
            # gone or made ephemeral) leaves the claim as it is.
            opts=part.opts(depends_on=[server], retain_on_delete=True),
        )
    return server


class Database(Part):
    """In-cluster Postgres with PgBouncer and backups; nothing for an external database."""

    def __init__(self, context: Context, secrets: Secrets, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Database", "database", context, opts)
        config, naming = self.config, self.naming
        if config.database.mode == "in-cluster":
            postgres = config.database.in_cluster
            k8s.core.v1.Service(
                self.name(database.COMPONENT),
                metadata=self.metadata(database.COMPONENT),
                spec=database.postgres_service_spec(naming, postgres),
                opts=self.opts(),
            )
            server = stateful_store(
                self,
                database.postgres_store(postgres),
                placed(
                    database.postgres_statefulset_spec(
                        naming,
                        postgres,
                        context.runtime.secrets,
                        # Generated passwords only: a Secret of your own is not read here.
                        {
                            name: value
                            for name, value in secrets.rolled_by.items()
                            if name == "checksum/metadata-db"
                        },
                    ),
                    self.config,
                ),
                protect=postgres.protect,
                setting="database.inCluster",
            )
            if config.pgbouncer.enabled:
                assert secrets.postgres_password is not None
                self._pgbouncer(secrets.postgres_password, secrets.checksum_key, server)
            if config.backups.enabled:
                self._backups(postgres.protect, server)
        self.finish()

    def _pgbouncer(
        self,
        password: pulumi.Output[str],
        checksum_key: pulumi.Output[str],
        server: pulumi.Resource,
    ) -> None:
        config, naming = self.config, self.naming
        ini = pgbouncer.pgbouncer_ini(config, naming)
        user = config.database.in_cluster.user
        users = password.apply(lambda value: pgbouncer.userlist(user, value))
        secret = k8s.core.v1.Secret(
            self.name(pgbouncer.COMPONENT),
            opts=self.opts(),
            **secret_manifest(
                naming,
                naming.object(pgbouncer.COMPONENT),
                pgbouncer.COMPONENT,
                {"pgbouncer.ini": ini, "userlist.txt": users},
            ),
        )
        k8s.core.v1.Service(
            self.name(pgbouncer.COMPONENT),
            metadata=self.metadata(pgbouncer.COMPONENT),
            spec=pgbouncer.service_spec(naming),
            opts=self.opts(),
        )
        # The userlist holds the password: the annotation is an HMAC, not a plain hash.
        checksum = pulumi.Output.all(checksum_key, users).apply(
            lambda pair: keyed_checksum(pair[0], ini + pair[1])
        )
        k8s.apps.v1.Deployment(
            self.name(pgbouncer.COMPONENT),
            metadata=self.metadata(pgbouncer.COMPONENT),
            spec=placed(pgbouncer.deployment_spec(config, naming, checksum), config),
            # After Postgres has restarted with a rotated password, which PgBouncer then uses.
            opts=self.opts(depends_on=[secret, server]),
        )

    def _backups(self, protect: bool, server: pulumi.Resource) -> None:
        config, naming = self.config, self.naming
        spec = claim_spec("ReadWriteOnce", config.backups.size, config.backups.storage_class_name)
        self.record_data_object("PersistentVolumeClaim", "backups", spec, "backups", protect)
        claim = k8s.core.v1.PersistentVolumeClaim(
            self.name("backups"),
            metadata=self.metadata("backups", annotations=SKIP_AWAIT),
            spec=spec,
            opts=self.opts(protect=protect),
        )
        k8s.batch.v1.CronJob(
            self.name(backups.COMPONENT),
            metadata=self.metadata(backups.COMPONENT),
            spec=placed(
                backups.backup_cron_job_spec(config, naming, self.context.runtime.secrets),
                config,
            ),
            opts=self.opts(depends_on=[claim]),
        )
        if config.upgrade_snapshot:
            # Named after the image: a new image is a new Job, which Pulumi runs and awaits
            # before the migration Job (the Migrations part depends on this one); a failed
            # dump fails `pulumi up` before the schema is touched.
            name = backups.snapshot_job_name(config, naming)
            k8s.batch.v1.Job(
                self.name(backups.SNAPSHOT_COMPONENT),
                metadata=self.metadata(backups.SNAPSHOT_COMPONENT, job=True, name=name),
                spec=placed(
                    backups.snapshot_job_spec(config, naming, self.context.runtime.secrets),
                    config,
                ),
                opts=self.opts(depends_on=[claim, server]),
            )


class Broker(Part):
    """Redis for the CeleryExecutor."""

    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("Broker", "broker", context, opts)
        celery = self.config.celery
        if celery is not None:
            k8s.core.v1.Service(
                self.name(broker.COMPONENT),
                metadata=self.metadata(broker.COMPONENT),
                spec=broker.redis_service_spec(self.naming, celery.redis),
                opts=self.opts(),
            )
            stateful_store(
                self,
                broker.redis_store(celery.redis),
                placed(broker.redis_statefulset_spec(self.naming, celery.redis), self.config),
                protect=False,
                setting="celery.redis",
            )
        self.finish()

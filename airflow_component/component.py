"""`AirflowCluster`: the thin wiring layer that turns built manifests into Pulumi resources.

Data flow: config → namespace → secrets → database → shared Airflow env → migrations →
workloads → exposure. Everything here is `parent=self`; the manifests come from pure functions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from . import (
    autoscaling,
    availability,
    backups,
    broker,
    dags,
    database,
    declarative,
    exposure,
    fernet,
    housekeeping,
    metrics,
    migrations,
    network_policies,
    pgbouncer,
    pod_template,
    rbac,
    workloads,
)
from .airflow_env import AIRFLOW_CFG, AirflowRuntime
from .config import (
    CONFIG_NAMESPACE,
    DNS1123_LABEL,
    AirflowConfig,
    LoggingConfig,
    ProcessConfig,
)
from .namespace import namespace_manifest
from .naming import Naming
from .secrets import (
    API_SECRET_KEY,
    BROKER_URL,
    CONNECTION,
    FERNET_KEY,
    FLOWER_BASIC_AUTH,
    GENERATED,
    JWT_SECRET,
    KEDA_CONNECTION,
    PASSWORD,
    POSTGRES_PASSWORD_SPECIALS,
    RESULT_BACKEND,
    SIMPLE_AUTH_PASSWORDS_FILE,
    admin_secret_name,
    airflow_keys_secret_name,
    celery_secret_name,
    fernet_key_from_seed,
    metadata_connection_url,
    metadata_secret_name,
    postgres_secret_name,
    redis_secret_name,
    redis_url,
    secret_manifest,
    secret_refs,
    simple_auth_passwords_file,
)

TYPE_TOKEN = "airflow-k8s:index:AirflowCluster"
# Leaves room for the longest suffix ("-dag-processor", "-metadata-db") within 63 characters.
MAX_RELEASE_NAME = 40


def validate_release_name(name: str, source: str = "AirflowCluster name") -> None:
    """Object names derive from this name, so it must be a short DNS-1123 label."""
    if not re.match(DNS1123_LABEL, name) or len(name) > MAX_RELEASE_NAME:
        raise pulumi.RunError(
            f"{source}: {name!r} must be a DNS-1123 label (lower-case letters, digits, "
            f"'-') of at most {MAX_RELEASE_NAME} characters"
        )


class AirflowCluster(pulumi.ComponentResource):
    """A complete Airflow 3 deployment on Kubernetes, built from one validated `AirflowConfig`."""

    namespace: pulumi.Output[str]
    url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: AirflowConfig,
        external_database_password: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        secret_values: Mapping[str, pulumi.Input[str]] | None = None,
    ) -> None:
        """`secret_values`: values of the `fromConfig` keys of connections and variables."""
        validate_release_name(name)
        _check_external_password(config, external_database_password)
        secret_values = dict(secret_values or {})
        missing = sorted(declarative.config_keys(config) - secret_values.keys())
        if missing:
            raise pulumi.RunError(
                f"{CONFIG_NAMESPACE}:{missing[0]}: connections/variables read this secret stack "
                f"config key, but it is not set (pulumi config set --secret {missing[0]} ...)"
            )
        super().__init__(TYPE_TOKEN, name, None, opts)
        self._name = name
        self._config = config
        naming = Naming.for_cluster(name, config)
        refs = secret_refs(config, naming)
        runtime = AirflowRuntime(config=config, naming=naming, secrets=refs)
        # Pods read these once at start: a changed value must roll them.
        rolled_by: dict[str, pulumi.Input[str]] = {}
        if external_database_password is not None:
            rolled_by["checksum/metadata-db"] = pulumi.Output.from_input(
                external_database_password
            ).apply(lambda value: pod_template.checksum(f"{name}:{value}"))
        declared = declarative.declared_secret_data(config, dict(secret_values))
        if declared:
            rolled_by["checksum/declared"] = pulumi.Output.all(
                *[pulumi.Output.from_input(v) for v in declared.values()]  # type: ignore[arg-type]
            ).apply(lambda values: pod_template.checksum(f"{name}:{sorted(declared)}:{values}"))
        if rolled_by:
            runtime = dataclasses.replace(runtime, pod_annotations=tuple(rolled_by.items()))

        namespace_ready = self._namespace(naming)
        child = pulumi.ResourceOptions(parent=self, depends_on=namespace_ready)

        accounts = [
            k8s.core.v1.ServiceAccount(
                f"{name}-{component}",
                opts=child,
                **rbac.service_account_manifest(naming, component, config),
            )
            for component in rbac.service_account_components(config)
        ]
        admin_password = self._secrets(naming, child, external_database_password)
        database_ready = self._database(naming, refs, child)
        self._broker(naming, child)
        dags_ready = self._dag_storage(naming, child)
        launch_rights = self._pod_launch_rbac(naming, child)
        pod_template_checksum = self._pod_template(runtime, child)

        airflow_cfg = k8s.core.v1.ConfigMap(
            f"{name}-airflow-cfg",
            metadata=self._metadata(naming, "airflow-cfg"),
            data={"airflow.cfg": AIRFLOW_CFG},
            opts=child,
        )
        before_migrations = [*accounts, *self._secret_resources, *database_ready, airflow_cfg]
        migrate = k8s.batch.v1.Job(
            f"{name}-{migrations.MIGRATE_COMPONENT}",
            metadata=self._metadata(naming, migrations.MIGRATE_COMPONENT, job=True),
            spec=migrations.migration_job_spec(runtime),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=before_migrations)
            ),
        )
        after_migrations = pulumi.ResourceOptions.merge(
            child,
            pulumi.ResourceOptions(
                depends_on=[*before_migrations, *dags_ready, *launch_rights, migrate]
            ),
        )
        if config.auth.manager == "fab":
            k8s.batch.v1.Job(
                f"{name}-{migrations.ADMIN_USER_COMPONENT}",
                metadata=self._metadata(naming, migrations.ADMIN_USER_COMPONENT, job=True),
                spec=migrations.admin_user_job_spec(runtime),
                opts=after_migrations,
            )

        processes: list[tuple[workloads.Process, ProcessConfig]] = [
            (workloads.api_server_process(runtime), config.api_server),
            (workloads.scheduler_process(runtime, pod_template_checksum), config.scheduler),
            (workloads.dag_processor_process(runtime), config.dag_processor),
            (workloads.triggerer_process(runtime), config.triggerer),
        ]
        if config.celery is not None:
            processes.append((workloads.celery_worker_process(runtime), config.celery.workers))
            if config.celery.flower.enabled:
                flower = ProcessConfig(replicas=1, resources=config.celery.flower.resources)
                processes.append((workloads.flower_process(runtime), flower))
                k8s.core.v1.Service(
                    f"{name}-flower",
                    metadata=self._metadata(naming, "flower"),
                    spec=exposure.flower_service_spec(naming),
                    opts=child,
                )
        for process, settings in processes:
            k8s.apps.v1.Deployment(
                f"{name}-{process.component}",
                metadata=self._metadata(naming, process.component),
                spec=workloads.deployment_spec(runtime, process, settings),
                opts=after_migrations,
            )

        k8s.core.v1.Service(
            f"{name}-{exposure.API_SERVER}",
            metadata=self._metadata(naming, exposure.API_SERVER),
            spec=exposure.api_server_service_spec(naming, config.api_server.service),
            opts=child,
        )
        if config.ingress.enabled:
            k8s.networking.v1.Ingress(
                f"{name}-{exposure.API_SERVER}",
                metadata={
                    **self._metadata(naming, exposure.API_SERVER),
                    "annotations": dict(config.ingress.annotations),
                },
                spec=exposure.ingress_spec(naming, config.ingress, config.celery),
                opts=child,
            )

        self._operations(runtime, child, after_migrations, declared)
        if config.kubernetes_executor is not None and config.logging == LoggingConfig():
            pulumi.log.warn(
                "KubernetesExecutor without logging.remote or logging.volume: task logs vanish "
                "with each task pod",
                resource=self,
            )
        for component in availability.budgeted_components(config):
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-{component}",
                metadata=self._metadata(naming, component),
                spec=availability.disruption_budget_spec(naming, component),
                opts=child,
            )
        if config.network_policies.enabled:
            for policy, spec in network_policies.network_policy_specs(config, naming).items():
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{policy}",
                    metadata=self._metadata(naming, policy),
                    spec=spec,
                    opts=child,
                )

        self.namespace = pulumi.Output.from_input(naming.namespace)
        self.url = pulumi.Output.from_input(runtime.base_url)
        self.admin_username = pulumi.Output.from_input(config.auth.admin_username)
        self.admin_password = pulumi.Output.secret(admin_password)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "url": self.url,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
            }
        )

    def _operations(
        self,
        runtime: AirflowRuntime,
        child: pulumi.ResourceOptions,
        after_migrations: pulumi.ResourceOptions,
        declared: Mapping[str, object],
    ) -> None:
        """Production features: metrics, housekeeping, pools, Fernet rotation, PgBouncer,
        autoscaling, backups, logs volume, declared connections/variables."""
        config, naming, name = self._config, runtime.naming, self._name
        if declared:
            self._store(
                naming,
                declarative.declared_secret_name(naming),
                "declared",
                declared,  # type: ignore[arg-type]
                child,
            )
        if config.metrics.enabled:
            k8s.core.v1.ConfigMap(
                f"{name}-{metrics.COMPONENT}",
                metadata=self._metadata(naming, metrics.COMPONENT),
                data={metrics.MAPPING_FILE: metrics.MAPPINGS},
                opts=child,
            )
            k8s.apps.v1.Deployment(
                f"{name}-{metrics.COMPONENT}",
                metadata=self._metadata(naming, metrics.COMPONENT),
                spec=metrics.exporter_deployment_spec(
                    config, naming, pod_template.checksum(metrics.MAPPINGS)
                ),
                opts=child,
            )
            k8s.core.v1.Service(
                f"{name}-{metrics.COMPONENT}",
                metadata={
                    **self._metadata(naming, metrics.COMPONENT),
                    "annotations": metrics.scrape_annotations(),
                },
                spec=metrics.exporter_service_spec(naming),
                opts=child,
            )
            if config.metrics.service_monitor:
                k8s.apiextensions.CustomResource(
                    f"{name}-{metrics.COMPONENT}",
                    api_version="monitoring.coreos.com/v1",
                    kind="ServiceMonitor",
                    metadata=self._metadata(naming, metrics.COMPONENT),
                    spec=metrics.service_monitor_spec(naming),
                    opts=child,
                )
        for component, cron_spec in (
            (housekeeping.DB_CLEAN, housekeeping.db_clean_spec(runtime)),
            (housekeeping.POD_CLEANUP, housekeeping.pod_cleanup_spec(runtime)),
        ):
            if cron_spec is None:
                continue
            k8s.batch.v1.CronJob(
                f"{name}-{component}",
                metadata=self._metadata(naming, component),
                spec=cron_spec,
                opts=after_migrations,
            )
        if config.pools:
            pools_map = k8s.core.v1.ConfigMap(
                f"{name}-{declarative.POOLS_COMPONENT}",
                metadata=self._metadata(naming, declarative.POOLS_COMPONENT),
                data={declarative.POOLS_FILE: declarative.pools_json(config)},
                opts=child,
            )
            k8s.batch.v1.Job(
                f"{name}-{declarative.POOLS_COMPONENT}",
                metadata={
                    **self._metadata(naming, declarative.POOLS_COMPONENT, job=True),
                    "name": declarative.pools_job_name(naming, config),
                },
                spec=declarative.pools_job_spec(runtime),
                opts=pulumi.ResourceOptions.merge(
                    after_migrations, pulumi.ResourceOptions(depends_on=[pools_map])
                ),
            )
        if config.fernet.previous_keys:
            checksum = fernet.rotation_checksum(config, runtime.secrets.fernet_key)
            k8s.batch.v1.Job(
                f"{name}-{fernet.ROTATE_COMPONENT}",
                metadata={
                    **self._metadata(naming, fernet.ROTATE_COMPONENT, job=True),
                    "name": naming.object(f"{fernet.ROTATE_COMPONENT}-{checksum}"),
                },
                spec=fernet.rotate_job_spec(runtime),
                opts=after_migrations,
            )
        if config.autoscaling.api_server.enabled:
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-api-server",
                metadata=self._metadata(naming, "api-server"),
                spec=autoscaling.api_server_hpa_spec(config, naming),
                opts=child,
            )
        if config.autoscaling.celery_workers.enabled:
            k8s.apiextensions.CustomResource(
                f"{name}-keda-postgres",
                api_version="keda.sh/v1alpha1",
                kind="TriggerAuthentication",
                metadata=self._metadata(naming, "keda-postgres"),
                spec=autoscaling.keda_trigger_authentication_spec(metadata_secret_name(naming)),
                opts=child,
            )
            k8s.apiextensions.CustomResource(
                f"{name}-worker",
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=self._metadata(naming, "worker"),
                spec=autoscaling.worker_scaled_object_spec(config, naming),
                opts=after_migrations,
            )
        if config.logging.volume is not None:
            volume = config.logging.volume
            self._claim(
                naming, "logs", "ReadWriteMany", volume.size, volume.storage_class_name, child
            )
        if config.backups.enabled:
            protect = bool(config.database.in_cluster.protect)
            self._claim(
                naming,
                "backups",
                "ReadWriteOnce",
                config.backups.size,
                config.backups.storage_class_name,
                pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
                ),
            )
            k8s.batch.v1.CronJob(
                f"{name}-{backups.COMPONENT}",
                metadata=self._metadata(naming, backups.COMPONENT),
                spec=backups.backup_cron_job_spec(config, naming, runtime.secrets),
                opts=child,
            )

    def _claim(
        self,
        naming: Naming,
        component: str,
        access_mode: str,
        size: str,
        storage_class: str | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        spec: dict[str, object] = {
            "access_modes": [access_mode],
            "resources": {"requests": {"storage": size}},
        }
        if storage_class:
            spec["storage_class_name"] = storage_class
        k8s.core.v1.PersistentVolumeClaim(
            f"{self._name}-{component}",
            metadata={
                **self._metadata(naming, component),
                # With WaitForFirstConsumer a claim binds only once a pod uses it.
                "annotations": {"pulumi.com/skipAwait": "true"},
            },
            spec=spec,
            opts=opts,
        )

    def _pgbouncer(
        self, naming: Naming, opts: pulumi.ResourceOptions, password: pulumi.Output[str]
    ) -> list[pulumi.Resource]:
        config = self._config
        ini = pgbouncer.pgbouncer_ini(config, naming)
        user = config.database.in_cluster.user
        users = password.apply(lambda value: pgbouncer.userlist(user, value))
        secret = k8s.core.v1.Secret(
            f"{self._name}-{pgbouncer.COMPONENT}",
            opts=opts,
            **secret_manifest(
                naming,
                naming.object(pgbouncer.COMPONENT),
                pgbouncer.COMPONENT,
                {"pgbouncer.ini": ini, "userlist.txt": users},
            ),
        )
        service = k8s.core.v1.Service(
            f"{self._name}-{pgbouncer.COMPONENT}",
            metadata=self._metadata(naming, pgbouncer.COMPONENT),
            spec=pgbouncer.service_spec(naming),
            opts=opts,
        )
        checksum = users.apply(lambda text: pod_template.checksum(ini + text))
        deployment = k8s.apps.v1.Deployment(
            f"{self._name}-{pgbouncer.COMPONENT}",
            metadata=self._metadata(naming, pgbouncer.COMPONENT),
            spec=pgbouncer.deployment_spec(config, naming, checksum),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[secret])),
        )
        return [service, deployment]

    def _metadata(self, naming: Naming, component: str, job: bool = False) -> dict[str, object]:
        metadata: dict[str, object] = {
            "name": naming.object(component),
            "namespace": naming.namespace,
            "labels": naming.metadata_labels(component),
        }
        if job:
            # A failed Job is replaced (re-run) on the next `pulumi up` instead of sticking.
            metadata["annotations"] = {"pulumi.com/replaceUnready": "true"}
        return metadata

    def _namespace(self, naming: Naming) -> list[pulumi.Resource]:
        if not self._config.namespace.create:
            return []
        return [
            k8s.core.v1.Namespace(
                f"{self._name}-namespace",
                opts=pulumi.ResourceOptions(parent=self),
                **namespace_manifest(naming.namespace, self._config.namespace),
            )
        ]

    def _password(
        self, key: str, protect: bool = False, keepers: dict[str, str] | None = None
    ) -> pulumi.Output[str]:
        spec = GENERATED[key]
        password = random.RandomPassword(
            f"{self._name}-{key}",
            length=spec.length,
            special=spec.special,
            override_special=POSTGRES_PASSWORD_SPECIALS if spec.special else None,
            keepers=keepers,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        result: pulumi.Output[str] = password.result
        return result

    def _secrets(
        self,
        naming: Naming,
        opts: pulumi.ResourceOptions,
        external_database_password: pulumi.Input[str] | None,
    ) -> pulumi.Input[str]:
        """Generate what is not supplied, store it in Secrets; returns the admin password."""
        config = self._config
        existing = config.existing_secrets
        self._secret_resources: list[pulumi.Resource] = []
        self._postgres_password: pulumi.Output[str] | None = None

        keys: dict[str, pulumi.Input[str]] = {}
        if existing.fernet_key is None:
            generation = config.fernet.generation
            # No keepers at generation 1: adding them later would replace (regenerate) the key.
            keepers = {"generation": str(generation)} if generation > 1 else None
            keys[FERNET_KEY] = self._password("fernet-seed", keepers=keepers).apply(
                fernet_key_from_seed
            )
        if existing.jwt_secret is None:
            keys[JWT_SECRET] = self._password(JWT_SECRET)
        if existing.api_secret_key is None:
            keys[API_SECRET_KEY] = self._password(API_SECRET_KEY)
        self._store(naming, airflow_keys_secret_name(naming), "keys", keys, opts)

        admin_password: pulumi.Input[str] = "<from existing Secret>"
        if existing.admin_password is None:
            admin_password = self._password("admin-password")
            admin_data: dict[str, pulumi.Input[str]] = {PASSWORD: admin_password}
            if config.auth.manager == "simple":
                admin_data[SIMPLE_AUTH_PASSWORDS_FILE] = pulumi.Output.from_input(
                    admin_password
                ).apply(lambda pw: simple_auth_passwords_file(config.auth.admin_username, pw))
            self._store(naming, admin_secret_name(naming), "admin", admin_data, opts)

        database_password: pulumi.Input[str] | None = None
        if config.database.mode == "in-cluster":
            if existing.postgres_password is None:
                # Postgres keeps the password in its data volume: losing the generated value
                # while the volume survives locks Airflow out, so both share Postgres' guard.
                protect = bool(config.database.in_cluster.protect)
                database_password = self._password("postgres-password", protect=protect)
                self._postgres_password = database_password
                self._store(
                    naming,
                    postgres_secret_name(naming),
                    "postgres",
                    {PASSWORD: database_password},
                    pulumi.ResourceOptions.merge(
                        opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
                    ),
                )
        else:
            database_password = external_database_password
        if database_password is not None:
            url = metadata_connection_url(config, naming, database_password)
            metadata: dict[str, pulumi.Input[str]] = {CONNECTION: url}
            if config.celery is not None:
                metadata[RESULT_BACKEND] = url.apply(lambda value: f"db+{value}")
            if config.autoscaling.celery_workers.enabled:
                # KEDA's postgresql scaler takes a libpq URL, not SQLAlchemy's.
                metadata[KEDA_CONNECTION] = url.apply(
                    lambda value: value.replace("postgresql+psycopg2://", "postgresql://", 1)
                )
            self._store(naming, metadata_secret_name(naming), "metadata-db", metadata, opts)
        if config.celery is not None:
            redis_password = self._password("redis-password")
            self._store(
                naming, redis_secret_name(naming), "redis", {PASSWORD: redis_password}, opts
            )
            flower_password = self._password("flower-password")
            self._store(
                naming,
                celery_secret_name(naming),
                "celery",
                {
                    BROKER_URL: redis_password.apply(lambda pw: redis_url(pw, naming)),
                    FLOWER_BASIC_AUTH: flower_password.apply(lambda pw: f"admin:{pw}"),
                },
                opts,
            )
        return admin_password

    def _store(
        self,
        naming: Naming,
        secret_name: str,
        component: str,
        data: dict[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        if not data:
            return
        self._secret_resources.append(
            k8s.core.v1.Secret(
                f"{self._name}-{component}",
                opts=opts,
                **secret_manifest(naming, secret_name, component, data),
            )
        )

    def _broker(self, naming: Naming, opts: pulumi.ResourceOptions) -> None:
        redis = self._config.celery.redis if self._config.celery else None
        if redis is None:
            return
        k8s.core.v1.Service(
            f"{self._name}-{broker.COMPONENT}",
            metadata=self._metadata(naming, broker.COMPONENT),
            spec=broker.redis_service_spec(naming, redis),
            opts=opts,
        )
        k8s.apps.v1.StatefulSet(
            f"{self._name}-{broker.COMPONENT}",
            metadata=self._metadata(naming, broker.COMPONENT),
            spec=broker.redis_statefulset_spec(naming, redis),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=self._secret_resources)
            ),
        )

    def _dag_storage(self, naming: Naming, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        config = self._config
        created: list[pulumi.Resource] = []
        volume_spec = dags.host_path_volume_spec(config, naming)
        if volume_spec is not None:
            created.append(
                k8s.core.v1.PersistentVolume(
                    f"{self._name}-dags-host-path",
                    metadata={
                        "name": dags.host_path_volume_name(naming),
                        "labels": naming.metadata_labels("dags"),
                    },
                    spec=volume_spec,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        claim_spec = dags.dags_claim_spec(config, naming)
        if claim_spec is not None:
            created.append(
                k8s.core.v1.PersistentVolumeClaim(
                    f"{self._name}-dags",
                    metadata={
                        **self._metadata(naming, "dags"),
                        # With WaitForFirstConsumer a claim binds only once a pod uses it.
                        "annotations": {"pulumi.com/skipAwait": "true"},
                    },
                    spec=claim_spec,
                    opts=pulumi.ResourceOptions.merge(
                        opts, pulumi.ResourceOptions(depends_on=created)
                    ),
                )
            )
        return created

    def _pod_launch_rbac(
        self, naming: Naming, opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        subjects = rbac.pod_launcher_subjects(naming, self._config)
        if not subjects:
            return []
        role = k8s.rbac.v1.Role(
            f"{self._name}-{rbac.POD_LAUNCHER}",
            metadata=self._metadata(naming, rbac.POD_LAUNCHER),
            rules=rbac.pod_launcher_role_rules(),
            opts=opts,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{self._name}-{rbac.POD_LAUNCHER}",
            metadata=self._metadata(naming, rbac.POD_LAUNCHER),
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": naming.object(rbac.POD_LAUNCHER),
            },
            subjects=subjects,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])),
        )
        return [role, binding]

    def _pod_template(self, runtime: AirflowRuntime, opts: pulumi.ResourceOptions) -> str:
        """The KubernetesExecutor pod template ConfigMap; returns its checksum."""
        if self._config.kubernetes_executor is None:
            return ""
        template = pod_template.pod_template_yaml(runtime)
        k8s.core.v1.ConfigMap(
            f"{self._name}-pod-template",
            metadata=self._metadata(runtime.naming, "pod-template"),
            data={pod_template.TEMPLATE_FILE: template},
            opts=opts,
        )
        return pod_template.checksum(template)

    def _database(
        self, naming: Naming, refs: object, opts: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        config = self._config
        if config.database.mode != "in-cluster":
            return []
        postgres = config.database.in_cluster
        protect = bool(postgres.protect)
        guarded = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
        )
        service = k8s.core.v1.Service(
            f"{self._name}-{database.COMPONENT}",
            metadata=self._metadata(naming, database.COMPONENT),
            spec=database.postgres_service_spec(naming, postgres),
            opts=opts,
        )
        statefulset = k8s.apps.v1.StatefulSet(
            f"{self._name}-{database.COMPONENT}",
            metadata=self._metadata(naming, database.COMPONENT),
            spec=database.postgres_statefulset_spec(naming, postgres, refs),  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions.merge(
                guarded, pulumi.ResourceOptions(depends_on=self._secret_resources)
            ),
        )
        ready: list[pulumi.Resource] = [service, statefulset]
        if config.pgbouncer.enabled:
            assert self._postgres_password is not None
            ready += self._pgbouncer(naming, opts, self._postgres_password)
        return ready


def _check_external_password(config: AirflowConfig, password: pulumi.Input[str] | None) -> None:
    external = config.database.external
    if config.database.mode != "external" or external is None:
        return
    if external.password_secret is None and password is None:
        raise pulumi.RunError(
            "airflow-k8s:cluster.database.external.passwordSecret: the external database needs a "
            "password: set `passwordSecret` or the secret stack config `externalDatabasePassword`"
        )
    if external.password_secret is not None and password is not None:
        raise pulumi.RunError(
            "airflow-k8s:cluster.database.external.passwordSecret: both `passwordSecret` and "
            "`externalDatabasePassword` are set; keep one"
        )

"""Secrets: every generated value (RandomPassword, stable in Pulumi state) and the Secrets that
hold them, plus the declared connections/variables Secret."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..declarative import declared_secret_data, declared_secret_name
from ..kube import keyed_checksum
from ..secrets import (
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
    simple_auth_passwords_file,
)
from .base import Context, Part

# Keys pods hash secret values with for their restart annotations (never a plain hash).
CHECKSUM_KEY = "checksum-key"


class Secrets(Part):
    """Generates what is not supplied and stores it; exposes the values other parts derive from."""

    admin_password: pulumi.Output[str]
    postgres_password: pulumi.Output[str] | None
    # Annotations for long-running Airflow pods: keyed checksums of values read once at start.
    rolled_by: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        context: Context,
        external_database_password: pulumi.Input[str] | None,
        secret_values: Mapping[str, pulumi.Input[str]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("Secrets", "secrets", context, opts)
        config, naming = self.config, self.naming
        existing = config.existing_secrets
        self.postgres_password = None

        keys: dict[str, pulumi.Input[str]] = {}
        generation = config.fernet.generation
        generated_key = existing.fernet_key is None
        # No keepers at generation 1: adding them later would replace (regenerate) the key.
        keepers = {"generation": str(generation)} if generation > 1 else None
        # The key every Connection and Variable is encrypted with. Protected with the data, so
        # that the engine refuses to delete or regenerate it (a renamed component, a removed
        # program), except while a rotation lists the old key (the new generation replaces
        # it) or while it is not in use. Declared even then: switching to a key of your own
        # and back never regenerates it.
        seed = self._password(
            "fernet-seed",
            keepers=keepers,
            protect=(
                config.database.in_cluster.protect
                and generated_key
                and not config.fernet.previous_keys
            ),
        )
        if generated_key:
            keys[FERNET_KEY] = seed.apply(fernet_key_from_seed)
        if existing.jwt_secret is None:
            keys[JWT_SECRET] = self._password(JWT_SECRET)
        if existing.api_secret_key is None:
            keys[API_SECRET_KEY] = self._password(API_SECRET_KEY)
        self._store(airflow_keys_secret_name(naming), "keys", keys)

        admin_password: pulumi.Output[str] = pulumi.Output.from_input("<from existing Secret>")
        if existing.admin_password is None:
            admin_password = self._password("admin-password")
            admin_data: dict[str, pulumi.Input[str]] = {PASSWORD: admin_password}
            if config.auth.manager == "simple":
                username = config.auth.admin_username
                admin_data[SIMPLE_AUTH_PASSWORDS_FILE] = admin_password.apply(
                    lambda pw: simple_auth_passwords_file(username, pw)
                )
            self._store(admin_secret_name(naming), "admin", admin_data)
        self.admin_password = admin_password

        database_password: pulumi.Input[str] | None = None
        if config.database.mode == "in-cluster":
            if existing.postgres_password is None:
                # Not protected, unlike Postgres: its `sync-password` init container sets the
                # role's password from this Secret on every start, so a new value is never a
                # lockout, and a rotation (new keepers) replaces this resource, which the
                # engine refuses for a protected one.
                password_generation = config.database.in_cluster.password_generation
                # As for the Fernet key: no keepers at generation 1, so that adding them later
                # does not regenerate the password of every database deployed before.
                database_password = self._password(
                    "postgres-password",
                    keepers=(
                        {"generation": str(password_generation)}
                        if password_generation > 1
                        else None
                    ),
                )
                self.postgres_password = database_password
                self._store(postgres_secret_name(naming), "postgres", {PASSWORD: database_password})
        else:
            database_password = external_database_password
        if database_password is not None:
            url = metadata_connection_url(config, naming, database_password)
            metadata: dict[str, pulumi.Input[str]] = {CONNECTION: url}
            if config.celery is not None:
                metadata[RESULT_BACKEND] = url.apply(lambda value: f"db+{value}")
            if config.celery is not None and config.celery.autoscaled:
                # KEDA's postgresql scaler takes a libpq URL, not SQLAlchemy's.
                metadata[KEDA_CONNECTION] = url.apply(
                    lambda value: value.replace("postgresql+psycopg2://", "postgresql://", 1)
                )
            self._store(metadata_secret_name(naming), "metadata-db", metadata)
        if config.celery is not None:
            redis_password = self._password("redis-password")
            self._store(redis_secret_name(naming), "redis", {PASSWORD: redis_password})
            flower_password = self._password("flower-password")
            self._store(
                celery_secret_name(naming),
                "celery",
                {
                    BROKER_URL: redis_password.apply(lambda pw: redis_url(pw, naming)),
                    FLOWER_BASIC_AUTH: flower_password.apply(lambda pw: f"admin:{pw}"),
                },
            )
        declared = declared_secret_data(config.connections, config.variables, secret_values)
        if declared:
            self._store(declared_secret_name(naming), "declared", declared)

        # Pods read these once at start: a changed value must roll them.
        key = self._password(CHECKSUM_KEY)
        release = context.release
        self.rolled_by = {}
        # The database password is read once at start (env, PgBouncer's file): a rotated one
        # must roll every pod that connects, or they keep the password Postgres no longer takes.
        rolled_password = (
            external_database_password
            if external_database_password is not None
            else self.postgres_password
        )
        if rolled_password is not None:
            self.rolled_by["checksum/metadata-db"] = pulumi.Output.all(key, rolled_password).apply(
                lambda pair: keyed_checksum(pair[0], f"{release}:{pair[1]}")
            )
        if declared:
            names = sorted(declared)
            self.rolled_by["checksum/declared"] = pulumi.Output.all(
                key, *[declared[name] for name in names]
            ).apply(lambda values: keyed_checksum(values[0], f"{names}:{values[1:]}"))
        self.checksum_key = key
        self.finish(admin_password=pulumi.Output.secret(admin_password))

    def _password(
        self, key: str, keepers: dict[str, str] | None = None, protect: bool = False
    ) -> pulumi.Output[str]:
        spec = GENERATED[key]
        password = random.RandomPassword(
            self.name(key),
            length=spec.length,
            special=spec.special,
            override_special=POSTGRES_PASSWORD_SPECIALS if spec.special else None,
            keepers=keepers,
            # A generated value lives only in the state: nothing to keep in the cluster.
            opts=self.opts(protect=protect, retain_on_delete=False),
        )
        result: pulumi.Output[str] = password.result
        return result

    def _store(
        self,
        secret_name: str,
        component: str,
        data: Mapping[str, pulumi.Input[str]],
    ) -> None:
        if not data:
            return
        k8s.core.v1.Secret(
            self.name(component),
            opts=self.opts(),
            **secret_manifest(self.naming, secret_name, component, data),
        )

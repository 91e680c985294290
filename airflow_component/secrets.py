"""Generated secrets: what is generated, where it is stored, and how containers reference it.

Values come from pulumi-random `RandomPassword` (a secret in state, stable until its keepers
change). `RandomBytes`/`RandomId` are never used: their resource ID is the value in plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import quote, urlencode

import pulumi
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from .config import SecretKeyRef
from .naming import PGBOUNCER_PORT, POSTGRES_PORT, REDIS_PORT, Naming
from .resolve import ResolvedConfig


@dataclass(frozen=True)
class GeneratedSecretSpec:
    """One generated value: its length and alphabet (what `RandomPassword` is asked for)."""

    length: int
    special: bool


GENERATED = {
    # Hashed into a Fernet key, so only its entropy matters: 64 alphanumerics > 256 bits.
    "fernet-seed": GeneratedSecretSpec(length=64, special=False),
    # HS512 warns under 64 bytes.
    "jwt-secret": GeneratedSecretSpec(length=96, special=False),
    "api-secret-key": GeneratedSecretSpec(length=64, special=False),
    # Specials included on purpose: the connection string must URL-encode them.
    "postgres-password": GeneratedSecretSpec(length=32, special=True),
    "admin-password": GeneratedSecretSpec(length=24, special=False),
    "redis-password": GeneratedSecretSpec(length=32, special=False),
    "flower-password": GeneratedSecretSpec(length=24, special=False),
    # Keys the HMAC of secret values in pod annotations (restart on change, no plain hash).
    "checksum-key": GeneratedSecretSpec(length=32, special=False),
}
# Characters that are safe in a shell-free env var but exercise URL encoding (@ : / %).
POSTGRES_PASSWORD_SPECIALS = "-_.~!@:/%+"

FERNET_KEY = "fernet-key"
JWT_SECRET = "jwt-secret"
API_SECRET_KEY = "api-secret-key"
PASSWORD = "password"
CONNECTION = "connection"
RESULT_BACKEND = "celery-result-backend"
KEDA_CONNECTION = "keda-connection"
BROKER_URL = "broker-url"
FLOWER_BASIC_AUTH = "flower-basic-auth"
SIMPLE_AUTH_PASSWORDS_FILE = "simple-auth-manager-passwords.json"


def fernet_key_from_seed(seed: str) -> str:
    """A valid Fernet key (url-safe base64 of 32 bytes) derived deterministically from a seed."""
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def postgres_url(
    user: str, password: str, host: str, port: int, database: str, query: dict[str, str]
) -> str:
    """SQLAlchemy URL for psycopg2; every part encoded, so no value can add a part of its own
    (a database name `x?sslmode=disable` stays a database name)."""
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    url = f"postgresql+psycopg2://{credentials}@{host}:{port}/{quote(database, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


# The URL around the password, for a `_CMD` that composes it in the container.
URL_HEAD_ENV = "AIRFLOW_METADATA_DB_URL_HEAD"
URL_TAIL_ENV = "AIRFLOW_METADATA_DB_URL_TAIL"


def postgres_url_parts(config: ResolvedConfig, naming: Naming) -> tuple[str, str]:
    """The metadata URL before and after the (URL-encoded) password."""
    placeholder = "PASSWORD-PLACEHOLDER"
    head, tail = metadata_connection_url_for(config, naming, placeholder).split(placeholder)
    return head, tail


def postgres_url_command(password_env: str, scheme_prefix: str = "") -> str:
    """A `_CMD` printing the metadata URL. Fixed code: the URL's parts come from env
    (URL_HEAD_ENV, URL_TAIL_ENV, the password), never pasted into the program."""
    return (
        'python -c "import os, urllib.parse; e = os.environ; print('
        f"'{scheme_prefix}' + e['{URL_HEAD_ENV}'] + urllib.parse.quote(e['{password_env}'], "
        f"safe='') + e['{URL_TAIL_ENV}'])\""
    )


def simple_auth_passwords_file(username: str, password: str) -> str:
    return json.dumps({username: password})


@dataclass(frozen=True)
class SecretRefs:
    """Where every secret value lives, as (Secret name, key) pairs the containers reference."""

    fernet_key: SecretKeyRef
    jwt_secret: SecretKeyRef
    api_secret_key: SecretKeyRef
    admin_password: SecretKeyRef
    postgres_password: SecretKeyRef | None
    # Either a full SQLAlchemy URL in a Secret, or a password the container combines at runtime.
    metadata_connection: SecretKeyRef | None
    metadata_password: SecretKeyRef | None
    celery_broker_url: SecretKeyRef | None = None
    celery_result_backend: SecretKeyRef | None = None
    flower_basic_auth: SecretKeyRef | None = None

    @property
    def simple_auth_passwords(self) -> SecretKeyRef:
        return SecretKeyRef(name=self.admin_password.name, key=SIMPLE_AUTH_PASSWORDS_FILE)


# Every Secret this component renders is `<release>-<one of these>` (a test holds the renderings
# to it): a Secret the user names must not be one of them, or `pulumi up` would fight over it.
OWNED_SECRETS = ("keys", "admin", "postgres", "metadata-db", "redis", "celery", "declared")


def owned_secret_names(naming: Naming) -> frozenset[str]:
    return frozenset(naming.object(suffix) for suffix in OWNED_SECRETS)


def airflow_keys_secret_name(naming: Naming) -> str:
    return naming.object("keys")


def admin_secret_name(naming: Naming) -> str:
    return naming.object("admin")


def postgres_secret_name(naming: Naming) -> str:
    return naming.object("postgres")


def metadata_secret_name(naming: Naming) -> str:
    return naming.object("metadata-db")


def redis_secret_name(naming: Naming) -> str:
    return naming.object("redis")


def celery_secret_name(naming: Naming) -> str:
    return naming.object("celery")


def redis_url(password: str, naming: Naming) -> str:
    return f"redis://:{quote(password, safe='')}@{naming.service_host('redis')}:{REDIS_PORT}/0"


def secret_refs(config: ResolvedConfig, naming: Naming) -> SecretRefs:
    """Resolve each secret to the generated Secret or the user's existing one."""
    existing = config.existing_secrets
    keys = airflow_keys_secret_name(naming)
    in_cluster = config.database.mode == "in-cluster"
    postgres_password = (
        existing.postgres_password or SecretKeyRef(name=postgres_secret_name(naming), key=PASSWORD)
        if in_cluster
        else None
    )
    generated_connection = SecretKeyRef(name=metadata_secret_name(naming), key=CONNECTION)
    if in_cluster:
        runtime_password = existing.postgres_password
    else:
        assert config.database.external is not None
        runtime_password = config.database.external.password_secret
    celery = config.celery is not None
    celery_secret = celery_secret_name(naming)
    return SecretRefs(
        celery_broker_url=SecretKeyRef(name=celery_secret, key=BROKER_URL) if celery else None,
        celery_result_backend=(
            SecretKeyRef(name=metadata_secret_name(naming), key=RESULT_BACKEND)
            if celery and not runtime_password
            else None
        ),
        flower_basic_auth=SecretKeyRef(name=celery_secret, key=FLOWER_BASIC_AUTH)
        if celery
        else None,
        fernet_key=existing.fernet_key or SecretKeyRef(name=keys, key=FERNET_KEY),
        jwt_secret=existing.jwt_secret or SecretKeyRef(name=keys, key=JWT_SECRET),
        api_secret_key=existing.api_secret_key or SecretKeyRef(name=keys, key=API_SECRET_KEY),
        admin_password=existing.admin_password
        or SecretKeyRef(name=admin_secret_name(naming), key=PASSWORD),
        postgres_password=postgres_password,
        metadata_connection=None if runtime_password else generated_connection,
        metadata_password=runtime_password,
    )


class SecretArgs(TypedDict):
    metadata: ObjectMetaArgsDict
    type: str
    string_data: Mapping[str, pulumi.Input[str]]


def secret_manifest(
    naming: Naming, name: str, component: str, data: Mapping[str, pulumi.Input[str]]
) -> SecretArgs:
    """An Opaque Secret; values go in `stringData` and are marked secret in Pulumi state."""
    return {
        "metadata": {
            "name": name,
            "namespace": naming.namespace,
            "labels": naming.metadata_labels(component),
        },
        "type": "Opaque",
        "string_data": {key: pulumi.Output.secret(value) for key, value in data.items()},
    }


def metadata_connection_url(
    config: ResolvedConfig, naming: Naming, password: pulumi.Input[str]
) -> pulumi.Output[str]:
    """The SQLAlchemy URL of the metadata database, as a Pulumi secret."""
    return pulumi.Output.secret(
        pulumi.Output.from_input(password).apply(
            lambda value: metadata_connection_url_for(config, naming, value)
        )
    )


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where the metadata DB is reached from Airflow pods; nothing here is secret."""

    user: str
    host: str
    port: int
    database: str
    sslmode: str | None


def metadata_endpoint(config: ResolvedConfig, naming: Naming) -> DatabaseEndpoint:
    database = config.database
    if database.mode == "in-cluster":
        postgres = database.in_cluster
        # Through PgBouncer when it is on: Airflow never holds server connections itself.
        through_pgbouncer = config.pgbouncer.enabled
        host = naming.service_host("pgbouncer" if through_pgbouncer else "postgres")
        port = PGBOUNCER_PORT if through_pgbouncer else POSTGRES_PORT
        return DatabaseEndpoint(postgres.user, host, port, postgres.database, None)
    assert database.external is not None
    external = database.external
    return DatabaseEndpoint(
        external.user, external.host, external.port, external.database, external.sslmode
    )


def metadata_connection_url_for(config: ResolvedConfig, naming: Naming, password: str) -> str:
    endpoint = metadata_endpoint(config, naming)
    query = {"sslmode": endpoint.sslmode} if endpoint.sslmode else {}
    return postgres_url(
        endpoint.user, password, endpoint.host, endpoint.port, endpoint.database, query
    )

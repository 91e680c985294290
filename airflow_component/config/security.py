"""Who can log in and where secrets come from: auth, existing Secrets, Fernet rotation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
    model_validator,
)

from .types import (
    DnsSubdomain,
    NonEmpty,
    SecretKeyRef,
    StrictModel,
)


class ConfigMapKeyRef(StrictModel):
    """A key in an existing ConfigMap in the deployment's namespace."""

    name: DnsSubdomain = Field(description="Name of the existing ConfigMap.")
    key: Annotated[str, StringConstraints(pattern=r"^[-._a-zA-Z0-9]+$")] = Field(
        description="Key inside the ConfigMap's data."
    )


class WebserverConfigSource(StrictModel):
    """Where `webserver_config.py` comes from: exactly one of a Secret or a ConfigMap key."""

    secret: SecretKeyRef | None = Field(default=None, description="Secret key (OAuth secrets).")
    config_map: ConfigMapKeyRef | None = Field(default=None, description="ConfigMap key.")

    @model_validator(mode="after")
    def _one_source(self) -> WebserverConfigSource:
        if (self.secret is None) == (self.config_map is None):
            raise ValueError("give exactly one of `secret` or `configMap`")
        return self


class AuthConfig(StrictModel):
    """Who can log in: Airflow's auth manager and the first admin user."""

    manager: Literal["simple", "fab"] = Field(
        default="simple",
        description="`simple` (SimpleAuthManager, for development) or `fab` (production).",
    )
    admin_username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")] = Field(
        default="admin", description="Admin user name."
    )
    admin_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")] = Field(
        default="admin@example.com", description="Admin e-mail (FAB)."
    )
    admin_first_name: NonEmpty = Field(default="Airflow", description="Admin first name (FAB).")
    admin_last_name: NonEmpty = Field(default="Admin", description="Admin last name (FAB).")
    webserver_config: WebserverConfigSource | None = Field(
        default=None,
        description=(
            "FAB's `webserver_config.py` (OAuth, LDAP, roles) from an existing Secret or "
            "ConfigMap key, mounted read-only where FAB reads it (api-server, admin Job)."
        ),
    )
    create_admin: bool = Field(
        default=True,
        description=(
            "FAB: create the first admin user with the generated password. Turn off when users "
            "come from SSO; the self-check then skips its login check."
        ),
    )

    @model_validator(mode="after")
    def _fab_only(self) -> AuthConfig:
        if self.manager != "fab" and self.webserver_config is not None:
            raise ValueError("webserverConfig is FAB's: set manager: fab")
        if self.manager != "fab" and not self.create_admin:
            raise ValueError("createAdmin: false needs manager: fab (SimpleAuthManager's users)")
        return self


class ExistingSecrets(StrictModel):
    """Take a secret from an existing Kubernetes Secret instead of generating it."""

    fernet_key: SecretKeyRef | None = Field(default=None, description="Fernet key.")
    jwt_secret: SecretKeyRef | None = Field(default=None, description="JWT signing secret.")
    api_secret_key: SecretKeyRef | None = Field(default=None, description="[api] secret_key.")
    admin_password: SecretKeyRef | None = Field(default=None, description="Admin password.")
    postgres_password: SecretKeyRef | None = Field(
        default=None, description="In-cluster Postgres password."
    )


class FernetConfig(StrictModel):
    """Fernet key rotation (see the README's procedure)."""

    generation: int = Field(
        default=1, ge=1, description="Bump to generate a new key (the old one must be listed)."
    )
    previous_keys: list[SecretKeyRef] = Field(
        default_factory=list,
        description="Old keys still accepted for decryption; a Job re-encrypts with the new one.",
    )
    rotated_generation: int | None = Field(
        default=None,
        ge=1,
        description=(
            "The generation whose re-encryption Job succeeded: set it to `generation` when you "
            "remove `previousKeys` (step 3 of the rotation). Without it, a generation above 1 "
            "with no previous keys is refused: the key that encrypted your data would be lost."
        ),
    )

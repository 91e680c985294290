"""Who can log in and where secrets come from: auth, existing Secrets, Fernet rotation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    StringConstraints,
)

from .types import (
    NonEmpty,
    SecretKeyRef,
    StrictModel,
)


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

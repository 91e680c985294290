"""The deployment guard: what the last deployment recorded, checked against this one at preview.

A Pulumi program sees only its config, never what was deployed before, so a change that is
valid on its own can still be one the deployed state cannot take. Three such changes lose data:
- an `image.tag` older than the deployed Airflow: the database's schema is the newer one's
  (README: Downgrades);
- a change that replaces or deletes a protected object (the Postgres StatefulSet, the backups
  claim): a new namespace, StorageClass, or backups turned off;
- a new Fernet key (a generation bump confirmed at once, or another key's Secret) with no
  previous key listed: every encrypted Connection and Variable becomes unreadable.
The engine refuses the second itself, but only with "marked for protection" and only for the
resource it reaches; the first it would carry out, and the migration Job fails halfway.

So one resource records, on every deployment, the Airflow version and what would replace each
protected object (its kind, name, namespace and the fields Kubernetes cannot change in place).
Its provider is a Pulumi dynamic provider whose `check` receives the recorded inputs (`olds`)
and this program's (`news`) at preview and at `pulumi up`, before anything is changed: every
other resource depends on it. A refusal comes back as a check failure that names the setting
and the procedure, not as a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from .config import AirflowConfig
from .config.root import airflow_version_of, version_text

AIRFLOW_VERSION = "airflowVersion"
DOWNGRADE_FROM = "downgradeFrom"
DATA_OBJECTS = "dataObjects"
FERNET_KEY = "fernetKey"
FERNET_PREVIOUS_KEYS = "fernetPreviousKeys"

# Spec fields the API server refuses to change in place: the provider replaces the object.
IMMUTABLE_SPEC_FIELDS: Mapping[str, tuple[str, ...]] = {
    "StatefulSet": ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy"),
    "PersistentVolumeClaim": (
        "accessModes",
        "storageClassName",
        "volumeMode",
        "volumeName",
        "selector",
        "dataSource",
    ),
}

PROCEDURE = (
    "its data cannot stay in place through this change. To make it anyway (README: Changes "
    "that replace the database): take a backup, set `database.inCluster.protect: false` and "
    "`pulumi up` on its own (nothing else changes), then make this change, restore, and set "
    "`protect` back"
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _plain(value: Any) -> Any:
    """A builder's spec (snake_case `...ArgsDict`) as the API's camelCase JSON."""
    if isinstance(value, Mapping):
        return {_camel(str(key)): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _without_storage_request(claim_spec: Any) -> Any:
    """A claim spec without its storage request: a bigger claim is grown, not replaced."""
    spec = dict(claim_spec)
    requests = dict(spec.get("resources", {}).get("requests", {}))
    requests.pop("storage", None)
    resources = {**spec.get("resources", {}), "requests": requests}
    spec["resources"] = resources
    return spec


def replacement_identity(kind: str, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What, changed, replaces the object: its namespace and its immutable spec fields (claim
    sizes apart, see `datastore.CLAIM_SIZE_PATH`)."""
    plain = _plain(spec)
    identity: dict[str, Any] = {"namespace": namespace}
    for field in IMMUTABLE_SPEC_FIELDS[kind]:
        value = plain.get(field)
        if field == "volumeClaimTemplates" and value is not None:
            value = [
                {**template, "spec": _without_storage_request(template.get("spec", {}))}
                for template in value
            ]
        identity[field] = value
    if kind == "PersistentVolumeClaim":
        identity["resources"] = _without_storage_request(plain).get("resources")
    return identity


def _version(text: Any) -> tuple[int, int, int] | None:
    return airflow_version_of(text) if isinstance(text, str) else None


def fernet_key_source(config: AirflowConfig) -> dict[str, Any]:
    """Which key encrypts: generated (its generation) or a Secret of the team's."""
    own = config.existing_secrets.fernet_key
    if own is None:
        return {"source": "generated", "generation": config.fernet.generation}
    return {"source": "secret", "name": own.name, "key": own.key}


def _describe_key(key: Mapping[str, Any]) -> str:
    if key.get("source") == "generated":
        return f"generated, generation {key.get('generation')}"
    return f"Secret {key.get('name')}/{key.get('key')}"


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def guard_failures(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(input, reason) for each recorded fact this deployment would break."""
    failures: list[tuple[str, str]] = []
    deployed, target = olds.get(AIRFLOW_VERSION), news.get(AIRFLOW_VERSION)
    deployed_version, target_version = _version(deployed), _version(target)
    if deployed_version and target_version and target_version < deployed_version:
        downgrade_from = news.get(DOWNGRADE_FROM)
        if downgrade_from is None:
            failures.append(
                (
                    AIRFLOW_VERSION,
                    f"image.tag: Airflow {target} is older than the deployed {deployed}, whose "
                    f"schema the database holds. To go back: set upgrade.allowDowngrade: true "
                    f"and upgrade.downgradeFrom: {deployed!r} (README: Downgrades); otherwise "
                    f"set image.tag back to {deployed!r}",
                )
            )
        elif _version(downgrade_from) != deployed_version:
            failures.append(
                (
                    DOWNGRADE_FROM,
                    f"upgrade.downgradeFrom: {downgrade_from!r}, but the deployed Airflow is "
                    f"{deployed!r}: the downgrade runs the deployed image's migrations; set "
                    f"upgrade.downgradeFrom: {deployed!r}",
                )
            )
    deployed_key, new_key = olds.get(FERNET_KEY), news.get(FERNET_KEY)
    if deployed_key and new_key and new_key != deployed_key and not news.get(FERNET_PREVIOUS_KEYS):
        failures.append(
            (
                FERNET_KEY,
                f"fernet: the Fernet key changes ({_describe_key(deployed_key)} -> "
                f"{_describe_key(new_key)}) and no previous key is listed: every encrypted "
                "Connection and Variable would become unreadable. Copy the key in use into a "
                "Secret and list it in fernet.previousKeys (README: Fernet key rotation)",
            )
        )
    # The engine's own rules, with the setting and the procedure named: deleting an object
    # that is protected now is refused; replacing one is refused while the program still
    # protects it (the check is on the new `protect`, pulumi/pulumi#8873).
    recorded: Mapping[str, Any] = olds.get(DATA_OBJECTS) or {}
    current: Mapping[str, Any] = news.get(DATA_OBJECTS) or {}
    for key in sorted(recorded):
        old, new = recorded[key], current.get(key)
        if not old.get("protected"):
            continue
        if new is None:
            failures.append(
                (
                    DATA_OBJECTS,
                    f"{old['setting']}: this change deletes the protected {key}: {PROCEDURE}",
                )
            )
        elif new.get("protected") and new["identity"] != old["identity"]:
            fields = ", ".join(_changed_fields(old["identity"], new["identity"]))
            failures.append(
                (
                    DATA_OBJECTS,
                    f"{new['setting']}: this change replaces the protected {key} (Kubernetes "
                    f"cannot change its {fields} in place): {PROCEDURE}",
                )
            )
    return failures


class DeploymentGuard(ResourceProvider):
    """Checks this deployment against the last one's record; stores the new record. Pickled by
    reference (`airflow_component.guard.DeploymentGuard`): the provider process imports it from
    the same environment as the program."""

    # Nothing secret is captured: the serialized provider can stay readable in the state.
    serialize_as_secret_always = False

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(
            news, [CheckFailure(field, reason) for field, reason in guard_failures(olds, news)]
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="deployment-guard", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The record is updated in place, never replaced; a new serialized provider is stored
        # too, so that a later delete or refresh loads the provider the program has now.
        watched = (
            AIRFLOW_VERSION,
            DOWNGRADE_FROM,
            DATA_OBJECTS,
            FERNET_KEY,
            FERNET_PREVIOUS_KEYS,
            "__provider",
        )
        changed = any(olds.get(key) != news.get(key) for key in watched)
        return DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=news)


class DeploymentRecord(Resource, module="airflow-k8s", name="DeploymentGuard"):
    """The record of this deployment that the next one is checked against."""

    def __init__(
        self,
        name: str,
        config: AirflowConfig,
        data_objects: pulumi.Input[Mapping[str, Any]],
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__(
            DeploymentGuard(),
            name,
            {
                AIRFLOW_VERSION: version_text(config.image.tag),
                DOWNGRADE_FROM: config.upgrade.downgrade_from,
                FERNET_KEY: fernet_key_source(config),
                FERNET_PREVIOUS_KEYS: len(config.fernet.previous_keys),
                DATA_OBJECTS: data_objects,
            },
            opts,
        )

"""`AirflowCluster(name, args, opts=None)`: a complete Airflow 3 deployment as one component.

Data flow: config → resolve() → namespace → secrets → identity, storage, database, broker →
migrations → one part per process → operations, metrics → network policies. Each part is a
child component; dependencies are stated between whole parts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel

from . import parts
from .airflow_env import AirflowRuntime
from .config import (
    CONFIG_KEY,
    CONFIG_NAMESPACE,
    SYSTEM_NAMESPACES,
    AirflowConfig,
    SecretKeyRef,
    parse_config,
)
from .declarative import config_keys
from .guard import DeploymentRecord
from .namespace import namespace_manifest
from .naming import Naming
from .processes import airflow_processes
from .resolve import ResolvedConfig, resolve
from .secrets import airflow_keys_secret_name, owned_secret_names, secret_refs

TYPE_TOKEN = "airflow-k8s:index:AirflowCluster"
# Leaves room for the longest suffix ("-dag-processor", "-metadata-db") within 63 characters.
MAX_RELEASE_NAME = 40
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"


def validate_release_name(name: str, source: str = "AirflowCluster name") -> None:
    """Object names derive from this name, Service names among them, which Kubernetes requires
    to be DNS-1035 labels: lower-case letters, digits and '-', starting with a letter."""
    if not re.fullmatch(DNS1035_LABEL, name) or len(name) > MAX_RELEASE_NAME:
        raise pulumi.RunError(
            f"{source}: {name!r} must start with a lower-case letter and hold only lower-case "
            f"letters, digits and '-' (a DNS-1035 label: Service names derive from it), at "
            f"most {MAX_RELEASE_NAME} characters"
        )


@dataclass(frozen=True)
class AirflowClusterArgs:
    """Everything an `AirflowCluster` is built from: the config and the secret inputs."""

    config: AirflowConfig = field(default_factory=AirflowConfig)
    # The external database's password, when `database.external.passwordSecret` is not used.
    external_database_password: pulumi.Input[str] | None = None
    # Values of the `fromConfig` keys of connections and variables.
    secret_values: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    @staticmethod
    def from_stack_config(stack_config: pulumi.Config) -> AirflowClusterArgs:
        """The args a stack file describes (`airflow-k8s:cluster` and its secret keys)."""
        config = parse_config(stack_config.get_object(CONFIG_KEY))
        values: dict[str, pulumi.Input[str]] = {}
        for key in sorted(config_keys(config.connections, config.variables)):
            value = stack_config.get_secret(key)
            if value is not None:
                values[key] = value
        return AirflowClusterArgs(
            config=config,
            external_database_password=stack_config.get_secret("externalDatabasePassword"),
            secret_values=values,
        )


def release_name_from_stack_config(stack_config: pulumi.Config) -> str:
    name = stack_config.get("releaseName") or "airflow"
    validate_release_name(name, source=f"{CONFIG_NAMESPACE}:releaseName")
    return name


def render_provider(stack_config: pulumi.Config) -> k8s.Provider | None:
    """GitOps render mode: a provider that writes plain manifests instead of applying them.

    Secrets land in those files in plaintext: keep the directory out of git or encrypt it.
    """
    directory = stack_config.get("renderYamlToDirectory")
    if directory is None:
        return None
    if not re.fullmatch(r"[\w./-]+", directory) or directory.startswith("/"):
        raise pulumi.RunError(
            f"{CONFIG_NAMESPACE}:renderYamlToDirectory: {directory!r} must be a relative "
            "path (letters, digits, . _ / -)"
        )
    return k8s.Provider("render-yaml", render_yaml_to_directory=directory)


class AirflowCluster(pulumi.ComponentResource):
    """A complete Airflow 3 deployment on Kubernetes, built from one validated `AirflowConfig`."""

    namespace: pulumi.Output[str]
    url: pulumi.Output[str]
    admin_username: pulumi.Output[str]
    admin_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AirflowClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        validate_release_name(name)
        config = args.config
        _check_external_password(config, args.external_database_password)
        missing = sorted(
            config_keys(config.connections, config.variables) - args.secret_values.keys()
        )
        if missing:
            raise pulumi.RunError(
                f"{CONFIG_NAMESPACE}:{missing[0]}: connections/variables read this secret stack "
                f"config key, but it is not set (pulumi config set --secret {missing[0]} ...)"
            )
        naming = Naming(release=name, namespace=config.namespace.name or name)
        _check_namespace_and_keys(config, naming)
        _check_user_secrets(config, naming)
        resolved = resolve(config)
        _check_derived_names(resolved, naming)
        super().__init__(TYPE_TOKEN, name, None, opts)
        runtime = AirflowRuntime(
            config=resolved, naming=naming, secrets=secret_refs(resolved, naming)
        )
        context = parts.Context(release=name, runtime=runtime)

        # First, and everything waits for it: a change the deployed state cannot take is
        # refused before any object is touched. What it guards is known once the parts exist.
        data_objects: asyncio.Future[dict[str, Any]] = asyncio.get_event_loop().create_future()
        guard = DeploymentRecord(
            f"{name}-deployment-guard",
            config,
            data_objects=pulumi.Output.from_input(data_objects),
            opts=pulumi.ResourceOptions(parent=self),
        )
        ready: list[pulumi.Resource] = [guard]
        if config.namespace.create:
            ready.append(
                k8s.core.v1.Namespace(
                    f"{name}-namespace",
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[guard]),
                    **namespace_manifest(naming.namespace, config.namespace),
                )
            )

        def after(*parts_first: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=[*ready, *parts_first])

        secrets = parts.Secrets(
            context, args.external_database_password, args.secret_values, after()
        )
        # Long-running Airflow pods roll when a value they read once at start changes.
        runtime = dataclasses.replace(runtime, pod_annotations=tuple(secrets.rolled_by.items()))
        context = dataclasses.replace(context, runtime=runtime)

        identity = parts.Identity(context, after())
        storage = parts.Storage(context, after())
        backing: list[pulumi.Resource] = []
        if resolved.database.mode == "in-cluster":
            backing.append(parts.Database(context, secrets, after(secrets, storage)))
        if resolved.celery is not None:
            backing.append(parts.Broker(context, after(secrets)))
        shared: list[pulumi.Resource] = [secrets, identity, storage]
        template_checksum = ""
        if resolved.kubernetes_executor is not None:
            executor = parts.KubernetesExecutor(context, after())
            shared.append(executor)
            template_checksum = executor.template_checksum
        migrations = parts.Migrations(context, after(*shared, *backing))
        processes = [
            parts.AirflowProcess(context, process, after(*shared, *backing, migrations))
            for process in airflow_processes(runtime, template_checksum)
        ]
        parts.Operations(context, after(*shared, *backing, migrations))
        metrics = [parts.Metrics(context, after())] if resolved.metrics.enabled else []
        policies = (
            [parts.NetworkPolicies(context, after())] if resolved.network_policies.enabled else []
        )
        if resolved.self_check.enabled:
            # Last: it checks the deployment as it runs, behind its NetworkPolicies.
            everything = [*shared, *backing, migrations, *processes, *metrics, *policies]
            parts.SelfCheck(context, after(*everything))
        logs_kept = config.logging.remote is not None or config.logging.volume is not None
        if resolved.kubernetes_executor is not None and not logs_kept:
            pulumi.log.warn(
                "KubernetesExecutor without logging.remote or logging.volume: task logs vanish "
                "with each task pod",
                resource=self,
            )

        data_objects.set_result(dict(context.data_objects))

        self.namespace = pulumi.Output.from_input(naming.namespace)
        self.url = pulumi.Output.from_input(runtime.base_url)
        self.admin_username = pulumi.Output.from_input(config.auth.admin_username)
        self.admin_password = pulumi.Output.secret(secrets.admin_password)
        self.register_outputs(
            {
                "namespace": self.namespace,
                "url": self.url,
                "adminUsername": self.admin_username,
                "adminPassword": self.admin_password,
            }
        )


def _check_namespace_and_keys(config: AirflowConfig, naming: Naming) -> None:
    if naming.namespace in SYSTEM_NAMESPACES:
        raise pulumi.RunError(
            f"{CONFIG_NAMESPACE}:{CONFIG_KEY}.namespace.name: unset, so it would be the release "
            f"name {naming.namespace!r}, a Kubernetes system namespace; set namespace.name"
        )
    generated = airflow_keys_secret_name(naming)
    for index, previous in enumerate(config.fernet.previous_keys):
        if config.existing_secrets.fernet_key is None and previous.name == generated:
            raise pulumi.RunError(
                f"{CONFIG_NAMESPACE}:{CONFIG_KEY}.fernet.previousKeys[{index}]: {generated!r} "
                "holds the generated key, which the rotation replaces: copy the old key into a "
                "Secret of its own first (README: Fernet key rotation)"
            )


# The longest suffix a component's objects get after its own name (NetworkPolicies).
LONGEST_COMPONENT_SUFFIX = "-ingress"
MAX_OBJECT_NAME = 63


def _check_derived_names(config: ResolvedConfig, naming: Naming) -> None:
    """Worker pool and bundle names reach object names (`<release>-worker-<pool>-ingress`,
    `<release>-dag-processor-<bundle>-egress`): the release name's limit leaves room for the
    fixed components, these must fit in what is left."""
    named: list[tuple[str, str, str]] = [
        (pool.component, pool.key, "worker-")
        for pool in (config.celery.pools if config.celery is not None else ())
    ]
    if config.dags.explicit_bundles:
        named += [(b.component, b.key, "dag-processor-") for b in config.dags.bundles]
    for component, key, prefix in named:
        longest = naming.object(component + LONGEST_COMPONENT_SUFFIX)
        if len(longest) > MAX_OBJECT_NAME:
            room = MAX_OBJECT_NAME - len(longest) + len(component.removeprefix(prefix))
            fix = f"use at most {room} characters" if room > 0 else "shorten the release name"
            raise pulumi.RunError(
                f"{CONFIG_NAMESPACE}:{CONFIG_KEY}.{key}.name: object names derived from it "
                f"(e.g. {longest!r}) exceed {MAX_OBJECT_NAME} characters with the release name "
                f"{naming.release!r}; {fix}"
            )


def _secret_refs(value: Any, path: str) -> Iterator[tuple[str, SecretKeyRef]]:
    """Every existing-Secret reference in the config, with its key path (camelCase)."""
    if isinstance(value, SecretKeyRef):
        yield path, value
    elif isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from _secret_refs(getattr(value, name), f"{path}.{field.alias or name}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _secret_refs(item, f"{path}[{index}]")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secret_refs(item, f"{path}.{key}")


def _check_user_secrets(config: AirflowConfig, naming: Naming) -> None:
    owned = owned_secret_names(naming)
    for path, ref in _secret_refs(config, f"{CONFIG_NAMESPACE}:{CONFIG_KEY}"):
        if ref.name in owned:
            raise pulumi.RunError(
                f"{path}.name: {ref.name!r} is a Secret this component creates and manages; "
                "keep your own values in a Secret of another name"
            )
    # Every key of one of ours in every Airflow container would undo the secret scope.
    for prefix, block in config.pod_blocks():
        for index, source in enumerate(block.extra_env_from):
            if source.secret in owned:
                raise pulumi.RunError(
                    f"{CONFIG_NAMESPACE}:{CONFIG_KEY}.{prefix}extraEnvFrom[{index}].secret: "
                    f"{source.secret!r} is a Secret this component creates: every key of it "
                    "would reach containers that must not hold them"
                )


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

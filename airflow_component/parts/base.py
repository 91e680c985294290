"""What every part shares: the deployment's context and how a part names and parents children."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from ..airflow_env import AirflowRuntime
from ..guard import replacement_identity
from ..kube import object_metadata
from ..naming import Naming
from ..resolve import ResolvedConfig

PART_TYPE_PREFIX = "airflow-k8s:parts"


@dataclass(frozen=True)
class Context:
    """The normalised inputs every part builds from."""

    release: str
    runtime: AirflowRuntime
    # The objects that hold data and can be protected, filled in as the parts create them, for
    # the deployment guard (guard.py): "<kind> <name>" -> {setting, protected, identity}.
    data_objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def config(self) -> ResolvedConfig:
        return self.runtime.config

    @property
    def naming(self) -> Naming:
        return self.runtime.naming


class Part(pulumi.ComponentResource):
    """A child component: `<release>-<slug>` of type `airflow-k8s:parts:<kind>`."""

    def __init__(
        self, kind: str, slug: str, context: Context, opts: pulumi.ResourceOptions | None
    ) -> None:
        super().__init__(f"{PART_TYPE_PREFIX}:{kind}", f"{context.release}-{slug}", None, opts)
        self.context = context
        # Pulumi does not pass a component's dependencies on to its children: every child
        # states them, so nothing inside a part starts before the parts it depends on.
        depends_on = opts.depends_on if opts is not None else None
        self._part_dependencies: list[pulumi.Resource] = []
        if isinstance(depends_on, pulumi.Resource):
            self._part_dependencies = [depends_on]
        elif isinstance(depends_on, Sequence):
            self._part_dependencies = [d for d in depends_on if isinstance(d, pulumi.Resource)]

    @property
    def config(self) -> ResolvedConfig:
        return self.context.config

    @property
    def naming(self) -> Naming:
        return self.context.naming

    def name(self, component: str) -> str:
        """The Pulumi resource name of a child (Kubernetes names come from `Naming`)."""
        return f"{self.context.release}-{component}"

    def opts(
        self,
        depends_on: Sequence[pulumi.Resource] = (),
        protect: bool = False,
        *,
        retain_on_delete: bool | None = None,
        ignore_changes: Sequence[str] = (),
    ) -> pulumi.ResourceOptions:
        """A protected resource is also kept on delete, unless `retain_on_delete` says."""
        return pulumi.ResourceOptions(
            parent=self,
            depends_on=[*self._part_dependencies, *depends_on],
            protect=protect,
            retain_on_delete=protect if retain_on_delete is None else retain_on_delete,
            ignore_changes=list(ignore_changes) or None,
        )

    def record_data_object(
        self, kind: str, component: str, spec: Mapping[str, Any], setting: str, protect: bool
    ) -> None:
        """An object that holds data: whether it is protected and what would replace it, for
        the deployment guard to compare with the next deployment's (`setting`: the config
        block that makes it)."""
        self.context.data_objects[f"{kind} {self.naming.object(component)}"] = {
            "setting": setting,
            "protected": protect,
            "identity": replacement_identity(kind, self.naming.namespace, spec),
        }

    def metadata(
        self,
        component: str,
        *,
        job: bool = False,
        name: str | None = None,
        annotations: Mapping[str, Any] | None = None,
    ) -> ObjectMetaArgsDict:
        merged = dict(annotations or {})
        if job:
            # A failed Job is replaced (re-run) on the next `pulumi up` instead of sticking.
            merged["pulumi.com/replaceUnready"] = "true"
        return object_metadata(
            name or self.naming.object(component),
            self.naming.namespace,
            self.naming.metadata_labels(component),
            merged,
        )

    def finish(self, **outputs: Any) -> None:
        self.register_outputs(outputs)

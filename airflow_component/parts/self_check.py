"""SelfCheck: the in-cluster check Job, after every workload and NetworkPolicy is in place."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from ..needs import SELF_CHECK
from ..placement import placed
from ..self_check import PROGRAM_FILE, program_source, self_check_job_name, self_check_job_spec
from .base import Context, Part


class SelfCheck(Part):
    def __init__(self, context: Context, opts: pulumi.ResourceOptions) -> None:
        super().__init__("SelfCheck", "self-check", context, opts)
        program = k8s.core.v1.ConfigMap(
            self.name(f"{SELF_CHECK}-program"),
            metadata=self.metadata(SELF_CHECK),
            data={PROGRAM_FILE: program_source()},
            opts=self.opts(),
        )
        k8s.batch.v1.Job(
            self.name(SELF_CHECK),
            metadata=self.metadata(SELF_CHECK, job=True, name=self_check_job_name(context.runtime)),
            spec=placed(self_check_job_spec(context.runtime), self.config),
            opts=self.opts(depends_on=[program]),
        )
        self.finish()

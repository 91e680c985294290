"""The last-resort overlay: a Pulumi transformation that patches one child resource.

When no config key covers a need, a program that uses the component can patch what it renders.
Pulumi's current API is `transforms` (run by the engine, so Pulumi's mocks do not run them); its
older `transformations` run in the program and are what this test exercises with the same
patch function shape. The README shows both.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi

from airflow_component import AirflowCluster, AirflowClusterArgs, AirflowConfig
from tests.support.rendering import CapturingMocks, run_under_mocks


def annotate_api_service(args: pulumi.ResourceTransformationArgs) -> Any:
    """Add one annotation to the api-server Service, and to nothing else."""
    if args.type_ != "kubernetes:core/v1:Service" or args.name != "airflow-api-server":
        return None
    props = dict(cast(dict[str, Any], args.props))
    metadata = dict(props.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), "team/owner": "data"}
    props["metadata"] = metadata
    return pulumi.ResourceTransformationResult(props=props, opts=args.opts)


def test_a_transformation_patches_exactly_the_child_it_targets() -> None:
    plain = run_under_mocks(
        lambda: AirflowCluster("airflow", AirflowClusterArgs(config=AirflowConfig()))
    )
    patched = run_under_mocks(
        lambda: AirflowCluster(
            "airflow",
            AirflowClusterArgs(config=AirflowConfig()),
            pulumi.ResourceOptions(transformations=[annotate_api_service]),
        ),
        mocks=CapturingMocks(),
    )
    before = {(r.typ, r.name): r.inputs for r in plain.resources}
    after = {(r.typ, r.name): r.inputs for r in patched.resources}
    changed = {key for key in after if before.get(key) != after[key]}
    assert changed == {("kubernetes:core/v1:Service", "airflow-api-server")}
    service = after[("kubernetes:core/v1:Service", "airflow-api-server")]
    assert service["metadata"]["annotations"]["team/owner"] == "data"

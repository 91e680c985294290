"""The Pulumi program: one AirflowCluster from the stack's `airflow-k8s:cluster` object."""

import pulumi

from airflow_component import (
    CONFIG_NAMESPACE,
    AirflowCluster,
    AirflowClusterArgs,
    release_name_from_stack_config,
    render_provider,
)

stack_config = pulumi.Config(CONFIG_NAMESPACE)
# Validated before anything is registered: a bad key fails here with its full path.
args = AirflowClusterArgs.from_stack_config(stack_config)
release_name = release_name_from_stack_config(stack_config)
renderer = render_provider(stack_config)

cluster = AirflowCluster(
    release_name,
    args,
    opts=pulumi.ResourceOptions(providers=[renderer]) if renderer else None,
)

pulumi.export("namespace", cluster.namespace)
pulumi.export("url", cluster.url)
pulumi.export("adminUsername", cluster.admin_username)
pulumi.export("adminPassword", cluster.admin_password)

"""The Pulumi program: one AirflowCluster from the stack's `airflow-k8s:cluster` object."""

import re

import pulumi
import pulumi_kubernetes as k8s

from airflow_component import AirflowCluster, declarative, parse_config
from airflow_component.component import validate_release_name
from airflow_component.config import CONFIG_KEY, CONFIG_NAMESPACE

stack_config = pulumi.Config(CONFIG_NAMESPACE)
# Validated before anything is registered: a bad key fails here with its full path.
cluster_config = parse_config(stack_config.get_object(CONFIG_KEY))
release_name = stack_config.get("releaseName") or "airflow"
validate_release_name(release_name, source=f"{CONFIG_NAMESPACE}:releaseName")

# GitOps render mode: write plain manifests for Argo CD / Flux instead of applying them.
# Secrets land in those files in plaintext: keep the directory out of git or encrypt it.
render_directory = stack_config.get("renderYamlToDirectory")
options = None
if render_directory is not None:
    if not re.fullmatch(r"[\w./-]+", render_directory) or render_directory.startswith("/"):
        raise pulumi.RunError(
            f"{CONFIG_NAMESPACE}:renderYamlToDirectory: {render_directory!r} must be a relative "
            "path (letters, digits, . _ / -)"
        )
    renderer = k8s.Provider("render-yaml", render_yaml_to_directory=render_directory)
    options = pulumi.ResourceOptions(providers=[renderer])

cluster = AirflowCluster(
    release_name,
    config=cluster_config,
    external_database_password=stack_config.get_secret("externalDatabasePassword"),
    # Connections/variables with `fromConfig: key` read secret stack config `airflow-k8s:key`.
    secret_values={
        key: value
        for key in declarative.config_keys(cluster_config)
        if (value := stack_config.get_secret(key)) is not None
    },
    opts=options,
)

pulumi.export("namespace", cluster.namespace)
pulumi.export("url", cluster.url)
pulumi.export("adminUsername", cluster.admin_username)
pulumi.export("adminPassword", cluster.admin_password)

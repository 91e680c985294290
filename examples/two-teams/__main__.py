"""Two teams, two namespaces, one explicit Kubernetes provider."""

import pulumi
import pulumi_kubernetes as k8s

from airflow_component import AirflowCluster, AirflowClusterArgs, AirflowConfig

config = pulumi.Config()
provider = k8s.Provider("cluster", context=config.get("kubeContext") or "kind-airflow")

teams = {
    "analytics": {"executors": "LocalExecutor"},
    "ml": {"executors": "KubernetesExecutor"},
}
for team, settings in teams.items():
    cluster = AirflowCluster(
        team,
        AirflowClusterArgs(
            config=AirflowConfig.model_validate(
                {"environment": "local", "namespace": {"name": f"airflow-{team}"}, **settings}
            )
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    pulumi.export(f"{team}Url", cluster.url)
    pulumi.export(f"{team}Namespace", cluster.namespace)

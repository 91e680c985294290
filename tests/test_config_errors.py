"""Bad stack config is refused with a RunError naming the key path, before any resource exists."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from tests.support.rendering import CapturingMocks, cluster_config, render_program, stack_config

PREFIX = "airflow-k8s:cluster"


def _set(tree: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    tree = copy.deepcopy(tree)
    node = tree
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return tree


LOCAL = cluster_config("local")
PROD = cluster_config("prod")

# (description, stack config object, expected key path in the message, expected phrase)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "shared logs claim without a ReadWriteMany class",
        _set(LOCAL, "logging", {"volume": {"size": "10Gi"}}),
        "logging.volume.storageClassName",
        "Field required",
    ),
    (
        "empty Kubernetes API ranges (an empty `to` allows every address)",
        _set(LOCAL, "networkPolicies", {"kubernetesApiCidrs": []}),
        "networkPolicies.kubernetesApiCidrs",
        "at least 1 item",
    ),
    (
        "zero scheduler replicas",
        _set(LOCAL, "scheduler.replicas", 0),
        "scheduler.replicas",
        "greater than or equal to 1",
    ),
    (
        "negative api replicas",
        _set(LOCAL, "apiServer.replicas", -2),
        "apiServer.replicas",
        "greater than or equal to 1",
    ),
    (
        "replicas wrong type",
        _set(LOCAL, "triggerer.replicas", "many"),
        "triggerer.replicas",
        "valid integer",
    ),
    (
        "unknown top-level key",
        _set(LOCAL, "schedular", {"replicas": 2}),
        "schedular",
        "Extra inputs are not permitted",
    ),
    (
        "unknown nested key",
        _set(LOCAL, "apiServer.service.port", 80),
        "apiServer.service.port",
        "Extra inputs",
    ),
    (
        "unknown key in database",
        _set(LOCAL, "database.inCluster.storage.iops", 3000),
        "database.inCluster.storage.iops",
        "Extra inputs",
    ),
    (
        "namespace not DNS-1123",
        _set(LOCAL, "namespace.name", "Airflow_Prod"),
        "namespace.name",
        "is not a DNS-1123 label",
    ),
    ("namespace too long", _set(LOCAL, "namespace.name", "a" * 64), "namespace.name", "at most 63"),
    (
        "invalid quantity",
        _set(LOCAL, "database.inCluster.storage.size", "10 gigs"),
        "database.inCluster.storage.size",
        "'10 gigs' is not a Kubernetes quantity",
    ),
    (
        "invalid cpu",
        _set(LOCAL, "scheduler.resources", {"requests": {"cpu": "lots"}, "limits": {}}),
        "scheduler.resources.requests.cpu",
        "is not a Kubernetes quantity",
    ),
    ("empty image tag", _set(LOCAL, "image.tag", ""), "image.tag", "should match pattern"),
    (
        "bad pull policy",
        _set(LOCAL, "image.pullPolicy", "Sometimes"),
        "image.pullPolicy",
        "Input should be",
    ),
    (
        "unknown executor",
        _set(LOCAL, "executors", "SequentialExecutor"),
        "executors[0]",
        "Input should be",
    ),
    (
        "duplicate executors",
        _set(LOCAL, "executors", "LocalExecutor,LocalExecutor"),
        "executors",
        "duplicate executor",
    ),
    (
        "unknown auth manager",
        _set(LOCAL, "auth.manager", "ldap"),
        "auth.manager",
        "Input should be",
    ),
    (
        "ingress TLS without host",
        _set(LOCAL, "ingress", {"enabled": True, "tlsSecretName": "tls"}),
        "ingress",
        "TLS needs a host",
    ),
    (
        "enabled ingress without host",
        _set(LOCAL, "ingress", {"enabled": True}),
        "ingress",
        "needs a host",
    ),
    (
        "node port out of range",
        _set(LOCAL, "apiServer.service.nodePort", 8080),
        "apiServer.service.nodePort",
        "greater than or equal to 30000",
    ),
    (
        "node port on ClusterIP",
        _set(LOCAL, "apiServer.service", {"type": "ClusterIP", "nodePort": 30080}),
        "apiServer.service",
        "nodePort is set but type is ClusterIP",
    ),
    (
        "external DB without settings",
        _set(LOCAL, "database", {"mode": "external"}),
        "database",
        "`external` (host, ...) is missing",
    ),
    (
        "external DB without host",
        _set(PROD, "database.external.host", None),
        "database.external.host",
        "valid string",
    ),
    (
        "external DB bad port",
        _set(PROD, "database.external.port", 70000),
        "database.external.port",
        "less than or equal to 65535",
    ),
    (
        "external DB bad sslmode",
        _set(PROD, "database.external.sslmode", "on"),
        "database.external.sslmode",
        "Input should be",
    ),
    (
        "ephemeral storage in prod-like env",
        _set(
            _set(_set(LOCAL, "environment", "staging"), "dags", {}),
            "database.inCluster.storage.ephemeral",
            True,
        ),
        "",
        "ephemeral is only allowed in the local environment",
    ),
    ("unknown environment", _set(LOCAL, "environment", "qa"), "environment", "Input should be"),
    (
        "existing admin secret with simple auth",
        _set(LOCAL, "existingSecrets.adminPassword", {"name": "admin", "key": "pw"}),
        "",
        "needs auth.manager fab",
    ),
    (
        "secret ref without key",
        _set(LOCAL, "existingSecrets.fernetKey", {"name": "keys"}),
        "existingSecrets.fernetKey.key",
        "Field required",
    ),
    (
        "bad label key",
        _set(LOCAL, "namespace.labels", {"bad key!": "x"}),
        "namespace.labels",
        "should match pattern",
    ),
    ("cluster not an object", ["LocalExecutor"], "", "expected an object"),  # type: ignore[list-item]
    (
        "bad base URL",
        _set(LOCAL, "baseUrl", "airflow.example.com"),
        "baseUrl",
        "should match pattern",
    ),
]

CELERY_LOCAL = _set(LOCAL, "executors", "CeleryExecutor")
GIT = {"delivery": "git-sync", "gitSync": {"repo": "https://x/y.git"}}
# Executor- and DAG-delivery contradictions.
INVALID += [
    (
        "hostPath DAGs outside local",
        _set(LOCAL, "environment", "prod"),
        "",
        "hostPath is only allowed in the local environment",
    ),
    (
        "celery settings without CeleryExecutor",
        _set(LOCAL, "celery", {"workers": {"replicas": 2}}),
        "",
        "`celery` is set but CeleryExecutor is not in `executors`",
    ),
    (
        "kubernetes executor settings without it",
        _set(LOCAL, "kubernetesExecutor", {}),
        "",
        "`kubernetesExecutor` is set but KubernetesExecutor",
    ),
    (
        "git-sync without repo",
        _set(LOCAL, "dags", {"delivery": "git-sync", "gitSync": {"ref": "main"}}),
        "dags.gitSync.repo",
        "Field required",
    ),
    (
        "git-sync delivery without settings",
        _set(LOCAL, "dags", {"delivery": "git-sync"}),
        "dags",
        "`gitSync` (with `repo`) is missing",
    ),
    (
        "gitSync settings with image delivery",
        _set(LOCAL, "dags", {"delivery": "image", "gitSync": {"repo": "https://x/y.git"}}),
        "dags",
        "`gitSync` is set but delivery is 'image'",
    ),
    (
        "git-sync bad period",
        _set(LOCAL, "dags", {**GIT, "gitSync": {"repo": "https://x/y.git", "period": "often"}}),
        "dags.gitSync.period",
        "should match pattern",
    ),
    (
        "git-sync two credentials",
        _set(
            LOCAL,
            "dags",
            {
                **GIT,
                "gitSync": {
                    "repo": "https://x/y.git",
                    "sshKeySecret": "a",
                    "httpsCredentialsSecret": "b",
                },
            },
        ),
        "dags.gitSync",
        "not both",
    ),
    (
        "celery concurrency zero",
        _set(CELERY_LOCAL, "celery", {"workers": {"concurrency": 0}}),
        "celery.workers.concurrency",
        "greater than or equal to 1",
    ),
    (
        "celery unknown key",
        _set(CELERY_LOCAL, "celery", {"workerz": {}}),
        "celery.workerz",
        "Extra inputs",
    ),
    (
        "flower ingress path not absolute",
        _set(CELERY_LOCAL, "celery", {"flower": {"enabled": True, "ingressPath": "flower"}}),
        "celery.flower.ingressPath",
        "should match pattern",
    ),
]


@pytest.mark.parametrize(
    ("cluster", "key", "phrase"),
    [pytest.param(c, k, p, id=d) for d, c, k, p in INVALID],
)
def test_invalid_config_is_refused_naming_the_key(cluster: Any, key: str, phrase: str) -> None:
    config = {**stack_config("local"), f"{PREFIX}": cluster}
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError) as error:
        render_program(config, mocks=mocks)
    message = str(error.value)
    expected_key = f"{PREFIX}.{key}" if key else PREFIX
    assert any(
        line.startswith(f"{expected_key}:") or line.startswith(f"{expected_key}.")
        for line in message.splitlines()
    ), message
    assert phrase in message
    assert "Traceback" not in message
    assert mocks.resources == [], "resources were registered before validation failed"


def test_external_database_without_any_password_is_refused() -> None:
    cluster = _set(PROD, "database.external.passwordSecret", None)
    mocks = CapturingMocks()
    with pytest.raises(
        pulumi.RunError, match=r"database\.external\.passwordSecret: .*needs a password"
    ):
        render_program({**stack_config("prod"), PREFIX: cluster}, mocks=mocks)
    assert mocks.resources == []


def test_bad_release_name_is_refused() -> None:
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match="airflow-k8s:releaseName"):
        render_program({**stack_config("local"), "airflow-k8s:releaseName": "Team_A"}, mocks=mocks)
    assert mocks.resources == []


def test_error_lists_every_bad_key_at_once() -> None:
    cluster = _set(_set(LOCAL, "scheduler.replicas", 0), "image.tag", "")
    with pytest.raises(pulumi.RunError) as error:
        render_program({**stack_config("local"), PREFIX: cluster})
    lines = str(error.value).splitlines()
    assert any(line.startswith(f"{PREFIX}.scheduler.replicas:") for line in lines)
    assert any(line.startswith(f"{PREFIX}.image.tag:") for line in lines)


def test_a_password_generation_for_a_password_of_your_own_is_refused() -> None:
    """Nothing generated could be rotated: saying so would be a silent no-op."""
    cluster = _set(
        _set(LOCAL, "existingSecrets", {"postgresPassword": {"name": "pg", "key": "password"}}),
        "database.inCluster.passwordGeneration",
        2,
    )
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError) as error:
        render_program({**stack_config("local"), PREFIX: cluster}, mocks=mocks)
    message = str(error.value)
    assert "database.inCluster.passwordGeneration" in message, message
    assert "existingSecrets.postgresPassword" in message and "Traceback" not in message
    assert mocks.resources == []

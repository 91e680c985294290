"""Property: any config the models accept renders manifests Kubernetes accepts.

Hypothesis draws configs over the model's main axes (environment, replicas, resources,
namespace, Service type, ingress with/without TLS, auth manager, database mode, executors,
DAG delivery). Whatever `AirflowConfig` accepts must render, under Pulumi mocks, manifests
that are strict-valid for Kubernetes 1.30 and 1.37, with valid object names and labels, and
pods that meet Pod Security "restricted" and this project's stricter rules.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from unittest import mock

import kubernetes_validate
import kubernetes_validate.utils
import pulumi
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airflow_component import AirflowCluster, AirflowClusterArgs, AirflowConfig
from tests.support.rendering import Rendering, run_under_mocks
from tests.test_pod_security import pods, restricted_violations, stricter_violations

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

dns_label = st.from_regex(r"\A[a-z]([-a-z0-9]{0,14}[a-z0-9])?\Z")
gibibytes = st.integers(min_value=1, max_value=16).map(lambda n: f"{n}Gi")


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    """Requests, and limits at or above them (as the API server requires), in mixed units."""
    cpu = draw(st.integers(min_value=10, max_value=2000))
    memory = draw(st.integers(min_value=64, max_value=4096))
    cpu_factor, memory_factor = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    cpu_limit = cpu * cpu_factor
    return {
        "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
        "limits": {
            "cpu": str(cpu_limit // 1000) if cpu_limit % 1000 == 0 else f"{cpu_limit}m",
            "memory": f"{memory * memory_factor}Mi",
        },
    }


def process(max_replicas: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"replicas": st.integers(min_value=1, max_value=max_replicas)},
        optional={"resources": resources()},
    )


@st.composite
def service(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer"]))
    result: dict[str, Any] = {"type": kind}
    if kind != "ClusterIP" and draw(st.booleans()):
        result["nodePort"] = draw(st.integers(min_value=30000, max_value=32767))
    return result


@st.composite
def ingress(draw: st.DrawFn) -> dict[str, Any]:
    if not draw(st.booleans()):
        return {"enabled": False}
    host = f"{draw(dns_label)}.example.com"
    result: dict[str, Any] = {"enabled": True, "host": host}
    if draw(st.booleans()):
        result["tlsSecretName"] = f"{draw(dns_label)}-tls"
    if draw(st.booleans()):
        result["className"] = draw(st.sampled_from(["nginx", "traefik"]))
    if draw(st.booleans()):
        result["path"] = draw(st.sampled_from(["/", "/airflow", "/team/airflow"]))
    if draw(st.booleans()):
        result["annotations"] = {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"}
    return result


@st.composite
def database(draw: st.DrawFn, environment: str) -> tuple[dict[str, Any], str | None]:
    """(database settings, the external password given as stack config, if any)."""
    if draw(st.booleans()):
        storage: dict[str, Any] = {"size": draw(gibibytes)}
        if draw(st.booleans()):
            storage["storageClassName"] = draw(st.sampled_from(["standard", "fast-ssd"]))
        if environment == "local" and draw(st.booleans()):
            storage["ephemeral"] = True
        in_cluster: dict[str, Any] = {"storage": storage}
        if draw(st.booleans()):
            in_cluster["resources"] = draw(resources())
        return {"mode": "in-cluster", "inCluster": in_cluster}, None
    external: dict[str, Any] = {
        "host": f"{draw(dns_label)}.db.example.com",
        "port": draw(st.sampled_from([5432, 6432])),
        "sslmode": draw(st.sampled_from(["require", "verify-full", "disable"])),
    }
    password = None
    if draw(st.booleans()):
        external["passwordSecret"] = {"name": draw(dns_label), "key": "password"}
    else:
        password = "p@ss:w/rd%" + draw(st.text("abcXYZ019", min_size=4, max_size=12))
    return {"mode": "external", "external": external}, password


@st.composite
def dags(draw: st.DrawFn, environment: str) -> dict[str, Any]:
    deliveries = ["image", "git-sync", "volume"] + (["hostPath"] if environment == "local" else [])
    delivery = draw(st.sampled_from(deliveries))
    if delivery == "git-sync":
        return {
            "delivery": delivery,
            "gitSync": {
                "repo": "https://github.com/example/dags.git",
                "ref": draw(st.sampled_from(["main", "v1.2.3"])),
                "depth": draw(st.integers(min_value=0, max_value=3)),
            },
        }
    return {"delivery": delivery}


@st.composite
def configs(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    environment = draw(st.sampled_from(["local", "staging", "prod"]))
    executors = draw(
        st.lists(
            st.sampled_from(["LocalExecutor", "CeleryExecutor", "KubernetesExecutor"]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    database_settings, password = draw(database(environment))
    config: dict[str, Any] = {
        "environment": environment,
        "namespace": {"name": draw(dns_label)},
        "executors": executors,
        "auth": {"manager": draw(st.sampled_from(["simple", "fab"]))},
        "database": database_settings,
        "apiServer": {
            **draw(process()),
            "service": draw(service()),
            "workers": draw(st.integers(min_value=1, max_value=4)),
        },
        "scheduler": draw(process()),
        # One processor per bundle: Airflow 3.3 does not coordinate two on the same one.
        "dagProcessor": draw(process(1)),
        "triggerer": draw(process(2)),
        "ingress": draw(ingress()),
        "dags": draw(dags(environment)),
    }
    if database_settings["mode"] == "external":
        # Nothing in the cluster can snapshot an external database before a migration.
        config["upgrade"] = {"snapshot": False}
    if draw(st.booleans()):
        config["jobResources"] = draw(resources())
    if "CeleryExecutor" in executors and draw(st.booleans()):
        config["celery"] = {"workers": draw(process(3))}
    return config, password


# kubernetes-validate re-reads its JSON schemas (several MB) on every call; the files never
# change, so reading each once keeps 25 examples well inside the time budget.
_cached_schema_contents = functools.lru_cache(maxsize=None)(
    kubernetes_validate.utils.schema_contents
)


def strict_errors(rendering: Rendering) -> list[str]:
    with mock.patch.object(kubernetes_validate.utils, "schema_contents", _cached_schema_contents):
        return _strict_errors(rendering)


def _strict_errors(rendering: Rendering) -> list[str]:
    errors = []
    for manifest in rendering.manifests():
        name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                errors.append(f"{name} @ {version}: {error.message} at {list(error.path)}")
    return errors


def naming_errors(rendering: Rendering) -> list[str]:
    errors = []
    for manifest in rendering.manifests():
        metadata = manifest.get("metadata") or {}
        name = metadata.get("name") or ""
        if not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
            errors.append(f"{manifest.get('kind')}: bad name {name!r}")
        if manifest.get("kind") in ("Namespace", "Service") and len(name) > 63:
            errors.append(f"{manifest['kind']}/{name}: longer than 63 characters")
        for key, value in (metadata.get("labels") or {}).items():
            if not (LABEL_VALUE.match(str(value)) and len(str(value)) <= 63):
                errors.append(f"{manifest.get('kind')}/{name}: label {key}={value!r}")
    return errors


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(configs())
def test_any_accepted_config_renders_valid_manifests(drawn: tuple[dict[str, Any], str]) -> None:
    raw, external_password = drawn
    try:
        config = AirflowConfig.model_validate(raw)
    except ValidationError:
        assume(False)
        return
    try:
        rendering = run_under_mocks(
            lambda: AirflowCluster(
                "airflow",
                AirflowClusterArgs(config=config, external_database_password=external_password),
            )
        )
    except pulumi.RunError:
        assume(False)
        return
    assert rendering.kubernetes, "nothing rendered"
    problems = strict_errors(rendering) + naming_errors(rendering)
    for where, spec, pod_annotations in pods(rendering):
        problems += [
            f"{where}: {problem}"
            for problem in restricted_violations(spec, pod_annotations) + stricter_violations(spec)
        ]
    assert not problems, f"config {raw}:\n" + "\n".join(problems)


def test_strict_validation_is_live() -> None:
    """The validator used above rejects a manifest with a misspelled field."""
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "resorces": {}}]},
            },
        },
    }
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(bad, version, strict=True)
        except kubernetes_validate.ValidationError:
            continue
        raise AssertionError(f"misspelled field accepted by the {version} schema")

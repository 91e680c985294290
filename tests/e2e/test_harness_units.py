"""Unit tests of the harness itself (fast, no Airflow needed): the kubelet emulation must be exact,
or the end-to-end results would prove nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from .harness.cluster import AirflowImage, image_repository, image_role, image_tag
from .harness.kubelet import (
    KubeletError,
    ObjectStore,
    PodInfo,
    expand,
    expand_command,
    mapping_for,
    materialize_volume,
    resolve_env,
    service_link_env,
)
from .harness.network import Network, NetworkError, Workload

VARS = {"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Cases of Kubernetes' third_party/forked/golang/expansion/expand_test.go
        ("$(VAR_A)", "A"),
        ("___$(VAR_B)___", "___B___"),
        ("$(VAR_A)-$(VAR_A)", "A-A"),
        ("$(VAR_A)-1", "A-1"),
        ("$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
        ("$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
        ("$$(VAR_B)_$$(VAR_A)", "$(VAR_B)_$(VAR_A)"),
        ("f000-$$VAR_A", "f000-$VAR_A"),
        ("foo\\$(VAR_C)bar", "foo\\Cbar"),
        ("foo\\\\$(VAR_C)bar", "foo\\\\Cbar"),
        ("$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"),
        ("$(VAR_A", "$(VAR_A"),
        ("$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"),
        ("$(VAR_DNE)", "$(VAR_DNE)"),
        ("$(VAR_REF)", "$(VAR_A)"),
        ("$(VAR_EMPTY)", ""),
        ("$()", "$()"),
        ("$", "$"),
        ("$$", "$"),
        ("$$$", "$$"),
        ("$$$$", "$$"),
        ("$(VAR_A)$", "A$"),
        ("$(VAR_A)$$", "A$"),
        ("$VAR_A", "$VAR_A"),
        ("$(", "$("),
        ("$$(", "$("),
        ("f0o$(VAR_A)", "f0oA"),
        ("$($(VAR_A))", "$($(VAR_A))"),
    ],
)
def test_expand_matches_kubernetes(value, expected):
    assert expand(value, mapping_for(VARS)) == expected


def _store() -> ObjectStore:
    return ObjectStore.from_manifests(
        [
            {
                "kind": "Secret",
                "metadata": {"name": "s", "namespace": "ns"},
                "stringData": {"pw": "p$w"},
            },
            {
                "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "ns"},
                "data": {"K": "v", "X": "x1"},
            },
        ]
    )


POD = PodInfo(name="pod-0", namespace="ns", labels={"a": "b"}, annotations={}, service_account="sa")


def test_resolve_env_follows_kubelet_order():
    container = {
        "envFrom": [{"configMapRef": {"name": "c"}, "prefix": "CM_"}],
        "env": [
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {
                "name": "LATER_REF",
                "value": "$(FIRST)",
            },  # declared later: only the service var is seen
            {"name": "UNKNOWN_REF", "value": "$(DECLARED_LATER)"},
            {"name": "DECLARED_LATER", "value": "late"},
            {"name": "FIRST", "value": "one"},
            {"name": "USES", "value": "$(FIRST)-$(PW)-$(CM_K)-$$(FIRST)-$(SVC_HOST)"},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['a']"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            },
        ],
        "args": ["--pw", "$(PW)", "$(SVC_HOST)", "$$(PW)", "$(MISSING)"],
    }
    env = resolve_env(container, _store(), POD, {"SVC_HOST": "10.0.0.1", "FIRST": "from-service"})
    assert env["PW"] == "p$w"  # secret values are never expanded
    assert env["LATER_REF"] == "from-service"
    assert env["UNKNOWN_REF"] == "$(DECLARED_LATER)"
    assert env["USES"] == "one-p$w-v-$(FIRST)-10.0.0.1"
    assert env["NAME"] == "pod-0" and env["LABEL"] == "b"
    assert env["CM_X"] == "x1" and env["FIRST"] == "one" and env["SVC_HOST"] == "10.0.0.1"
    assert "OPT" not in env
    _, args = expand_command(container, env)
    assert args == ["--pw", "p$w", "10.0.0.1", "$(PW)", "$(MISSING)"]


def test_missing_secret_is_a_config_error():
    container = {
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "absent"}}}]
    }
    with pytest.raises(KubeletError):
        resolve_env(container, _store(), POD, {})


def test_service_link_variables():
    services = [
        {
            "metadata": {"name": "my-api", "namespace": "ns"},
            "spec": {"ports": [{"name": "http", "port": 8080.0}]},
        },
        {
            "metadata": {"name": "db", "namespace": "ns"},
            "spec": {"clusterIP": "None", "ports": [{"port": 5432}]},
        },
        {"metadata": {"name": "other", "namespace": "elsewhere"}, "spec": {"ports": [{"port": 1}]}},
    ]
    env = service_link_env(services, "ns", lambda svc, port: ("127.0.0.1", 40000))
    assert env["MY_API_SERVICE_HOST"] == "127.0.0.1"
    assert env["MY_API_SERVICE_PORT"] == "40000"
    assert env["MY_API_SERVICE_PORT_HTTP"] == "40000"
    assert env["MY_API_PORT"] == "tcp://127.0.0.1:40000"
    assert env["MY_API_PORT_8080_TCP_ADDR"] == "127.0.0.1"
    assert not any(k.startswith(("DB_", "OTHER_")) for k in env)


def test_secret_volume_items_and_modes(tmp_path: Path):
    volume = {
        "name": "v",
        "secret": {
            "secretName": "s",
            "items": [{"key": "pw", "path": "d/pw.txt"}],
            "defaultMode": 288.0,
        },
    }
    assert materialize_volume(volume, _store(), "ns", tmp_path / "v") == "secret"
    target = tmp_path / "v" / "d" / "pw.txt"
    assert target.read_text() == "p$w"
    assert stat.S_IMODE(target.stat().st_mode) == 0o440
    assert stat.S_IMODE((tmp_path / "v").stat().st_mode) == 0o555
    assert sorted(os.listdir(tmp_path / "v")) == ["d"]
    with pytest.raises(KubeletError):
        materialize_volume(
            {"name": "w", "secret": {"secretName": "s", "items": [{"key": "no", "path": "x"}]}},
            _store(),
            "ns",
            tmp_path / "w",
        )


def _network() -> Network:
    workload = Workload(
        kind="Deployment",
        name="api",
        namespace="ns",
        labels={"app": "api"},
        pod_spec={
            "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8080.0}]}]
        },
    )
    network = Network(
        namespace="ns",
        services=[
            {
                "metadata": {"name": "api", "namespace": "ns"},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": "web"}]},
            }
        ],
        workloads=[workload],
    )
    network.container_ports[("api", 8080)] = 41000
    network.external[("db.example.com", 5432)] = 42000
    return network


def test_network_follows_service_to_container_port():
    network = _network()
    assert (
        network.translate("http://api.ns.svc.cluster.local:80/execution/")
        == "http://127.0.0.1:41000/execution/"
    )
    assert (
        network.translate("x@db.example.com:5432/airflow?sslmode=require")
        == "x@127.0.0.1:42000/airflow?sslmode=require"
    )
    with pytest.raises(NetworkError):
        network.translate("http://api.ns.svc.cluster.local:8080/")  # the Service has no port 8080
    with pytest.raises(NetworkError):
        network.translate("http://missing.ns.svc.cluster.local:80/")
    assert network.translate("http://localhost:30080") == "http://localhost:30080"


def test_image_helpers():
    assert image_repository("registry:5000/apache/airflow:3.3.2") == "registry:5000/apache/airflow"
    assert image_tag("apache/airflow:3.3.2") == "3.3.2"
    assert image_role("apache/airflow:3.3.2-python3.12") == "airflow"
    assert image_role("postgres:17.6") == "postgres"
    assert AirflowImage.entrypoint(["db", "migrate"])[-2:] == ["db", "migrate"]

"""Input that would break, leak or lose data is refused, naming the key, before anything exists.

Each case was accepted before (and rendered something a cluster or Airflow would get wrong).
"""

from __future__ import annotations

import copy
import re
import types
import typing
from typing import Any

import pulumi
import pytest

from airflow_component import AirflowCluster, AirflowClusterArgs, AirflowConfig
from airflow_component.config import parse_config
from airflow_component.config.cron import validate_cron
from tests.support.rendering import CapturingMocks, cluster_config, run_under_mocks

LOCAL = cluster_config("local")


def with_(path: str, value: Any, base: dict[str, Any] = LOCAL) -> dict[str, Any]:
    tree = copy.deepcopy(base)
    node = tree
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return tree


FULLWIDTH_ONE, FULLWIDTH_THREE = "\uff11", "\uff13"  # digits str.isdigit() accepts
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "512Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
GIT: dict[str, Any] = {
    "delivery": "git-sync",
    "gitSync": {"repo": "https://git.example.com/dags.git"},
}
VAULT = {"name": "vault", "key": "fernet"}

REFUSED = [
    # Whole-value matching: a pattern anchored with `$` accepted a trailing newline.
    ("namespace name with a newline", with_("namespace.name", "airflow\n"), "namespace.name"),
    ("digest with a newline", with_("image.digest", "sha256:" + "a" * 64 + "\n"), "image.digest"),
    (
        "unicode digits in a quantity",
        with_(
            "triggerer.resources",
            RESOURCES | {"limits": {"cpu": "1", "memory": f"{FULLWIDTH_ONE}Gi"}},
        ),
        "triggerer.resources.limits.memory",
    ),
    ("unicode digits in an image tag", with_("image.tag", f"{FULLWIDTH_THREE}.3.2"), "image.tag"),
    (
        "unicode digits in a git-sync period",
        with_("dags", GIT | {"gitSync": GIT["gitSync"] | {"period": f"{FULLWIDTH_THREE}0s"}}),
        "dags.gitSync.period",
    ),
    # A NUL cannot be carried by an env var, an argument or a label: the container never starts.
    ("NUL in a name", with_("auth.adminFirstName", "Ada\x00"), "adminFirstName"),
    ("NUL in a Variable", with_("variables", {"v": {"value": "a\x00b"}}), "value"),
    ("NUL in an annotation", with_("ingress.annotations", {"a": "\x00"}), "annotations"),
    # Cron fields Kubernetes rejects.
    ("weekday 7", with_("housekeeping.dbClean.schedule", "0 3 * * 7"), "schedule"),
    ("leading space", with_("housekeeping.dbClean.schedule", " 0 3 * * *"), "schedule"),
    (
        "non-ASCII digits in cron",
        with_("housekeeping.dbClean.schedule", f"0 {FULLWIDTH_THREE} * * *"),
        "schedule",
    ),
    # Namespaces that are not ours to police.
    ("kube-system", with_("namespace.name", "kube-system"), "namespace"),
    ("creating default", with_("namespace", {"name": "default", "create": True}), "namespace"),
    # Two ids Airflow reads from one env var.
    (
        "colliding connection ids",
        with_(
            "connections",
            {
                "warehouse": {"secret": {"name": "a", "key": "uri"}},
                "WAREHOUSE": {"secret": {"name": "b", "key": "uri"}},
            },
        ),
        "connections.WAREHOUSE and connections.warehouse",
    ),
    # A rotation whose previous key is the current one re-encrypts nothing.
    (
        "previous key is the current key",
        with_("fernet", {"previousKeys": [VAULT]}, with_("existingSecrets", {"fernetKey": VAULT})),
        "fernet.previousKeys[0]",
    ),
]


@pytest.mark.parametrize(("case", "raw", "key"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_naming_the_key(case: str, raw: dict[str, Any], key: str) -> None:
    with pytest.raises(pulumi.RunError) as error:
        parse_config(raw)
    assert key in str(error.value), (case, str(error.value))


def test_cron_accepts_what_kubernetes_accepts() -> None:
    for schedule in ("0 3 * * 0", "*/15 * * * *", "0 0 1 jan,jul *", "@daily", "5 4 * * sun-sat"):
        assert validate_cron(schedule) == schedule


def test_a_release_named_like_a_system_namespace_is_refused_before_any_resource() -> None:
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=r"namespace\.name"):
        run_under_mocks(
            lambda: AirflowCluster("kube-system", AirflowClusterArgs(config=AirflowConfig())),
            mocks=mocks,
        )
    assert mocks.resources == []


def test_the_generated_key_secret_as_previous_key_is_refused_before_any_resource() -> None:
    config = AirflowConfig.model_validate(
        {
            "fernet": {
                "generation": 2,
                "previousKeys": [{"name": "airflow-keys", "key": "fernet-key"}],
            }
        }
    )
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=r"fernet\.previousKeys\[0\]"):
        run_under_mocks(
            lambda: AirflowCluster("airflow", AirflowClusterArgs(config=config)), mocks=mocks
        )
    assert mocks.resources == []


# Kubernetes' own name limits for what it derives from a name: a Service or Namespace is a
# DNS-1035/1123 label (63); a Job's name becomes its pods' `job-name` label (63); a CronJob gets
# 11 characters appended for its Jobs (52); a StatefulSet's revision label appends a hash (52).
NAME_LIMITS = {"Service": 63, "Namespace": 63, "Job": 63, "CronJob": 52, "StatefulSet": 52}


def test_the_longest_release_name_keeps_every_derived_name_within_kubernetes_limits() -> None:
    release = "a" * 40
    config = AirflowConfig.model_validate(
        {
            "environment": "staging",
            "namespace": {"name": "team"},
            "executors": "CeleryExecutor,KubernetesExecutor",
            "celery": {"flower": {"enabled": True}},
            "auth": {"manager": "fab"},
            "pgbouncer": {"enabled": True},
            "metrics": {"serviceMonitor": True},
            "pools": {"p": {"slots": 1}},
            "fernet": {"generation": 2, "previousKeys": [{"name": "old", "key": "k"}]},
        }
    )
    rendering = run_under_mocks(lambda: AirflowCluster(release, AirflowClusterArgs(config=config)))
    too_long = [
        f"{r.kind}/{r.object_name} ({len(r.object_name or '')} > {NAME_LIMITS[r.kind or '']})"
        for r in rendering.kubernetes
        if r.kind in NAME_LIMITS and len(r.object_name or "") > NAME_LIMITS[r.kind]
    ]
    assert {r.kind for r in rendering.kubernetes} >= {"Job", "CronJob", "StatefulSet"}
    assert not too_long, too_long


def _numeric_paths(model: type[Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every number field reachable through nested models (camelCase paths)."""
    from airflow_component.config.types import StrictModel, _is_number

    found = []
    for name, field in model.model_fields.items():
        key = (*prefix, field.alias or name)
        annotation = field.annotation
        # The model itself or an Optional of it; not list/dict items (no path of keys reaches
        # those).
        is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        candidates = [annotation, *(typing.get_args(annotation) if is_union else ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, StrictModel)]
        if _is_number(annotation):
            found.append(key)
        elif nested:
            found += _numeric_paths(nested[0], key)
    return found


def test_no_number_field_accepts_a_boolean() -> None:
    """`replicas: true` is a typo, not 1: every number field, at any depth, refuses booleans
    and names itself. (A field whose section is invalid on its own, e.g. `gitSync` without
    git-sync delivery, is refused for that reason first; such paths must then fail with a
    number too, and most paths must be reached.)"""
    from airflow_component.config import AirflowConfig

    def with_value(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
        return raw

    paths = _numeric_paths(AirflowConfig)
    named = 0
    for path in paths:
        with pytest.raises(pulumi.RunError) as error:
            parse_config(with_value(path, True))
        if f"{path[-1]}: expected a number, got true" in str(error.value):
            named += 1
            continue
        with pytest.raises(pulumi.RunError):
            parse_config(with_value(path, 1))
    assert named > 20 and named >= 0.7 * len(paths), (named, len(paths))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        # decimal.Overflow escaped as a raw exception before.
        (
            {
                "scheduler": {
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "512Mi"},
                        "limits": {"cpu": "1", "memory": "1e9999999"},
                    }
                }
            },
            "scheduler.resources.limits.memory",
        ),
        (
            {
                "scheduler": {
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "512Mi"},
                        "limits": {"cpu": "1e500", "memory": "4Gi"},
                    }
                }
            },
            "scheduler.resources.limits.cpu",
        ),
        ({"logging": {"localSizeLimit": "9" * 40 + "Ei"}}, "logging.localSizeLimit"),
    ],
)
def test_a_quantity_beyond_what_kubernetes_holds_is_refused_by_key(
    raw: dict[str, Any], key: str
) -> None:
    """Kubernetes keeps quantities in 64-bit integers and caps larger ones silently."""
    with pytest.raises(pulumi.RunError, match=rf"cluster\.{re.escape(key)}: .* larger than"):
        parse_config(raw)


DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize("release", ["1airflow", "9", "-a", "a-", "Airflow", "a_b"])
def test_a_release_name_no_service_could_carry_is_refused(release: str) -> None:
    """Service names must be DNS-1035 labels (start with a letter); they derive from the release
    name, so a name that would make one invalid is refused before any resource."""
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match="DNS-1035"):
        run_under_mocks(
            lambda: AirflowCluster(release, AirflowClusterArgs(config=AirflowConfig())),
            mocks=mocks,
        )
    assert mocks.resources == []


@pytest.mark.parametrize("release", ["a", "team-a2", "x" * 40])
def test_every_service_name_of_an_accepted_release_is_a_dns_1035_label(release: str) -> None:
    mocks = CapturingMocks()
    run_under_mocks(
        lambda: AirflowCluster(release, AirflowClusterArgs(config=AirflowConfig())), mocks=mocks
    )
    services = [
        r.inputs["metadata"]["name"]
        for r in mocks.resources
        if r.typ == "kubernetes:core/v1:Service"
    ]
    assert services
    for name in services:
        assert DNS_1035.fullmatch(name) and len(name) <= 63, name


@pytest.mark.parametrize("stack", ["local", "staging", "prod"])
def test_the_owned_secret_list_covers_every_rendered_secret(stack: str) -> None:
    from airflow_component.naming import Naming
    from airflow_component.secrets import owned_secret_names
    from tests.support.rendering import render_stack

    rendering = render_stack(stack)
    owned = owned_secret_names(Naming("airflow", rendering.outputs["namespace"]))
    rendered = {r.object_name for r in rendering.of_kind("Secret")}
    assert rendered <= owned, rendered - owned


@pytest.mark.parametrize(
    ("where", "secret"),
    [
        (
            {"existingSecrets": {"jwtSecret": {"name": "airflow-admin", "key": "k"}}},
            "airflow-admin",
        ),
        (
            {
                "logging": {
                    "remote": {
                        "baseFolder": "s3://logs-bucket/p",
                        "connectionSecret": {"name": "airflow-keys", "key": "uri"},
                    }
                }
            },
            "airflow-keys",
        ),
        (
            {"connections": {"c1": {"secret": {"name": "airflow-declared", "key": "uri"}}}},
            "airflow-declared",
        ),
    ],
)
def test_a_secret_the_component_owns_cannot_be_named_as_the_users(
    where: dict[str, Any], secret: str
) -> None:
    """`pulumi up` would create a Secret that exists, or overwrite the user's values with
    generated ones: refused before any resource, naming the key."""
    config = AirflowConfig.model_validate(where)
    mocks = CapturingMocks()
    with pytest.raises(pulumi.RunError, match=rf"\.name: '{secret}' is a Secret this component"):
        run_under_mocks(
            lambda: AirflowCluster("airflow", AirflowClusterArgs(config=config)), mocks=mocks
        )
    assert mocks.resources == []


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (
            {"pgbouncer": {"enabled": False, "maxClientConnections": 500}},
            r"pgbouncer: maxClientConnections set while enabled is false",
        ),
        (
            {"ingress": {"enabled": False, "host": "a.example.com"}},
            r"ingress: host set while enabled is false",
        ),
        (
            {"metrics": {"enabled": False, "serviceMonitor": True}},
            r"metrics: serviceMonitor set while",
        ),
        ({"backups": {"enabled": False, "schedule": "0 1 * * *"}}, r"backups: schedule set while"),
        (
            {
                "executors": "CeleryExecutor",
                "celery": {"flower": {"enabled": False, "ingressPath": "/f"}},
            },
            r"flower: ingressPath set while",
        ),
        ({"housekeeping": {"cleanupPods": {"enabled": True}}}, r"cleanupPods\.enabled: .* ignored"),
        (
            {"logging": {"volume": {"storageClassName": "efs"}, "localSizeLimit": "5Gi"}},
            r"localSizeLimit .* ignored",
        ),
    ],
)
def test_a_setting_for_a_switched_off_feature_is_refused_not_ignored(
    raw: dict[str, Any], named: str
) -> None:
    """A setting that would be silently ignored makes the user believe something is configured
    that is not: refused, naming it."""
    with pytest.raises(pulumi.RunError, match=named):
        parse_config(raw)


def test_switching_a_feature_off_alone_is_fine() -> None:
    for raw in ({"pgbouncer": {"enabled": False}}, {"backups": {"enabled": False}}):
        assert parse_config(raw) is not None


def test_a_generation_bump_without_the_old_key_is_refused_until_rotation_is_confirmed() -> None:
    """Bumping `fernet.generation` alone would make every encrypted connection and variable
    unreadable: refused unless the old key is listed, or the finished rotation is confirmed."""
    with pytest.raises(pulumi.RunError, match=r"fernet\.generation 2 without previousKeys"):
        parse_config({"fernet": {"generation": 2}})
    with pytest.raises(pulumi.RunError, match=r"fernet\.generation 3 without previousKeys"):
        parse_config({"fernet": {"generation": 3, "rotatedGeneration": 2}})
    old = [{"name": "fernet-old", "key": "fernet-key"}]
    assert parse_config({"fernet": {"generation": 2, "previousKeys": old}}) is not None
    assert parse_config({"fernet": {"generation": 2, "rotatedGeneration": 2}}) is not None

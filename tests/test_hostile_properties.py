"""Property: no accepted string breaks, leaks or injects (issue: hostile input).

Hypothesis draws adversarial text (quotes, newlines, `$(` references to real variables, `%`,
`#`, `;`, `&`, `?`, full-width digits, long runs) into every free-text field a user controls:
admin names and e-mail, the git ref, the public URL's path, the external database's name and
user, Variable values, ingress annotations. For every config the models accept, the rendering
must be strict-valid Kubernetes, every reference must resolve, no secret value may appear outside
a Secret, and each text must reach its process exactly as written (resolved with the kubelet's
own `$(VAR)` expansion) and stay one part of the metadata URL.

Two runs: a fixed seed (the same examples every time) and a fresh random seed per run.
"""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pulumi
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from airflow_component import AirflowConfig
from airflow_component.config import parse_config
from tests.support.rendering import cluster_config, render_stack
from tests.test_properties import strict_errors
from tests.test_references import dangling
from tests.test_user_text_is_data import containers

PIECES = [
    "'", '"', "\n", "$(", ")", "$(AIRFLOW_ADMIN_PASSWORD)", "$(GITSYNC_REPO)", "$$", "%", "%2F",
    "#", ";", "&", "?", "=", "@", ":", "/", "\\", " ", "\uff13", "\u0000", "x" * 60, "airflow",
]  # fmt: skip
hostile_text = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)


@st.composite
def hostile_config(draw: st.DrawFn) -> dict[str, Any]:
    base = copy.deepcopy(cluster_config("staging"))
    base["auth"] |= {
        "adminFirstName": draw(hostile_text),
        "adminLastName": draw(hostile_text),
        "adminEmail": f"{draw(hostile_text)}@example.com",
    }
    base["dags"]["gitSync"]["ref"] = draw(hostile_text)
    base["baseUrl"] = f"https://airflow.example.com/{draw(hostile_text)}"
    base["variables"] = {"note": {"value": draw(hostile_text)}}
    base["ingress"]["annotations"] = {"example.com/note": draw(hostile_text)}
    if draw(st.booleans()):
        base["database"] = {
            "mode": "external",
            "external": {
                "host": "db.example.com",
                "database": draw(hostile_text),
                "user": draw(hostile_text),
                "passwordSecret": {"name": "db-credentials", "key": "password"},
            },
        }
        base.pop("backups", None)
        base["upgrade"] = {"snapshot": False}
    return base


def check(raw: dict[str, Any]) -> None:
    try:
        AirflowConfig.model_validate(raw)
    except ValidationError:
        assume(False)
        return
    try:
        rendering = render_stack("staging", cluster=raw)
    except pulumi.RunError:
        assume(False)
        return
    problems = strict_errors(rendering) + dangling(rendering, raw)
    # Secrets only in Secrets.
    non_secret = json.dumps([r.inputs for r in rendering.kubernetes if r.kind != "Secret"])
    secret_values = {
        value for (name, _), value in rendering.secret_data().items() if name != "airflow-declared"
    }
    problems += [
        f"secret value outside a Secret: {v[:6]}…" for v in secret_values if v in non_secret
    ]
    # Text reaches its process as written.
    auth = raw["auth"]
    for _, env, argv in containers(rendering, extra_secrets={"db-credentials": {"password": "pw"}}):
        if "--firstname" in argv:
            problems += [
                f"{flag} changed"
                for flag, value in (
                    ("--firstname", auth["adminFirstName"]),
                    ("--lastname", auth["adminLastName"]),
                )
                if argv[argv.index(flag) + 1] != value
            ]
        if "GITSYNC_REF" in env and env["GITSYNC_REF"] != raw["dags"]["gitSync"]["ref"]:
            problems.append("git ref changed")
        base_url = raw["baseUrl"].rstrip("/")
        if env.get("AIRFLOW__API__BASE_URL", base_url) != base_url:
            problems.append("base URL changed")
        command = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD")
        if command:
            argv_cmd = shlex.split(command)
            argv_cmd[0] = sys.executable
            url = subprocess.run(
                argv_cmd, env={**env, "AIRFLOW_METADATA_DB_PASSWORD": "pw"}, capture_output=True,
                text=True, check=True,
            ).stdout.strip()  # fmt: skip
            parts = urlsplit(url)
            external = raw["database"]["external"]
            if (
                parts.hostname != "db.example.com"
                or unquote(parts.path[1:]) != external["database"]
                or unquote(parts.username or "") != external["user"]
                or parse_qs(parts.query) != {"sslmode": ["require"]}
            ):
                problems.append(f"metadata URL changed shape: {url!r}")
    assert not problems, "\n".join(problems)


@settings(
    max_examples=20, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
@given(hostile_config())
def test_hostile_text_fixed_seed(raw: dict[str, Any]) -> None:
    check(raw)


@settings(
    max_examples=10, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # fmt: skip
@given(hostile_config())
def test_hostile_text_random_seed(raw: dict[str, Any]) -> None:
    check(raw)


def test_hostile_pieces_are_accepted_somewhere() -> None:
    """Not vacuous: the fields take most of these pieces (they are data, not refused)."""
    raw = copy.deepcopy(cluster_config("staging"))
    raw["auth"] |= {"adminFirstName": "O'Brien $(AIRFLOW_ADMIN_PASSWORD) ; # & ?"}
    raw["variables"] = {"note": {"value": "a\n'\"$(X)%#;"}}
    parse_config(raw)

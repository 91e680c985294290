"""An accepted string never changes the structure of what it lands in (issue: hostile input).

Rules a kubelet and a shell enforce, checked on the rendered manifests:
- the kubelet expands `$(NAME)` in env values, command and args: user text reaches the process
  exactly as written, never as another variable's (secret) value;
- a database name or user is part of the metadata URL, never a new part of it (a query, a host),
  and never part of the program that composes the URL.
"""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.e2e.harness.kubelet import ObjectStore, PodInfo, expand_command, resolve_env
from tests.support.rendering import Rendering, cluster_config, render_stack

HOSTILE_NAME = "$(AIRFLOW_ADMIN_PASSWORD)"
# Variables declared before the field in the same container: what the kubelet would expand.
HOSTILE_REF = "main$(GITSYNC_REPO)"


def containers(
    rendering: Rendering, extra_secrets: dict[str, dict[str, str]] | None = None
) -> list[tuple[dict[str, Any], dict[str, str], list[str]]]:
    """(container, final env, final argv) of every container, resolved as the kubelet does."""
    namespace = rendering.outputs["namespace"]
    store = ObjectStore.from_manifests(rendering.manifests())
    # The Secrets the stacks expect an operator to create.
    for name, data in {
        "airflow-dags-git-token": {"username": "u", "password": "p"},
        "airflow-db-credentials": {"password": "operator-password"},
        "airflow-dags-deploy-key": {"ssh-privatekey": "k", "known_hosts": "h"},
        **(extra_secrets or {}),
    }.items():
        store.add_secret(namespace, name, data)
    pod = PodInfo(name="p", namespace=namespace, labels={}, annotations={}, service_account="")
    found = []
    for _, spec in rendering.pod_specs():
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            env = resolve_env(container, store, pod, service_env={})
            command, args = expand_command(container, env)
            found.append((container, env, [*command, *args]))
    return found


def test_user_text_reaches_processes_unexpanded() -> None:
    cluster = copy.deepcopy(cluster_config("staging"))
    cluster["auth"] |= {"adminFirstName": HOSTILE_NAME, "adminLastName": "O'Brien $$ $HOME"}
    cluster["dags"]["gitSync"]["ref"] = HOSTILE_REF
    cluster["baseUrl"] = "https://airflow.example.com/$(AIRFLOW__CORE__EXECUTOR)"
    rendering = render_stack("staging", cluster=cluster)
    resolved = containers(rendering)
    admin = [argv for container, _, argv in resolved if container["name"] == "create-admin"]
    (argv,) = admin
    assert argv[argv.index("--firstname") + 1] == HOSTILE_NAME
    assert argv[argv.index("--lastname") + 1] == "O'Brien $$ $HOME"
    refs = {env["GITSYNC_REF"] for _, env, _ in resolved if "GITSYNC_REF" in env}
    assert refs == {HOSTILE_REF}
    urls = {
        env["AIRFLOW__API__BASE_URL"] for _, env, _ in resolved if "AIRFLOW__API__BASE_URL" in env
    }
    assert urls == {"https://airflow.example.com/$(AIRFLOW__CORE__EXECUTOR)"}


def compose_url(rendering: Rendering, password: str) -> str:
    """Run the rendered `_CMD` as Airflow does (shlex-split, no shell) with the container's env."""
    for _, env, _ in containers(rendering):
        command = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD")
        if command:
            argv = shlex.split(command)
            argv[0] = sys.executable if argv[0] == "python" else argv[0]
            env = {**env, "AIRFLOW_METADATA_DB_PASSWORD": password}
            result = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            return result.stdout.strip()
    raise AssertionError("no container composes the URL")


def external(database: str, user: str = "airflow") -> Rendering:
    cluster = copy.deepcopy(cluster_config("prod"))
    cluster["database"]["external"] |= {"database": database, "user": user}
    return render_stack("prod", cluster=cluster)


def test_a_database_name_stays_a_database_name() -> None:
    hostile = "air'flow\")?sslmode=disable&host=evil#"
    url = compose_url(external(hostile, user="u@x:y/"), password="p@ss:w/rd%")
    parts = urlsplit(url)
    assert parts.hostname == "airflow-db.prod.internal.example.com"
    assert unquote(parts.path[1:]) == hostile
    assert unquote(parts.username or "") == "u@x:y/"
    assert unquote(parts.password or "") == "p@ss:w/rd%"
    assert parse_qs(parts.query) == {"sslmode": ["require"]}


def test_the_url_program_is_the_same_whatever_the_names() -> None:
    def programs(rendering: Rendering) -> set[str]:
        return {
            e["value"]
            for _, spec in rendering.pod_specs()
            for c in spec["containers"]
            for e in c.get("env", [])
            if e["name"].endswith("_CMD")
        }

    assert programs(external("airflow")) == programs(
        external("x'); import os; os.system('id'); ('")
    )

"""`airflowConfig`: any option of the pinned Airflow, validated against its own option catalog.

`airflow_component/data/airflow_options.json` is generated from the installed Airflow (core
`config.yml` plus the installed providers' config) by `scripts/generate_airflow_catalog.py`; the
real-Airflow suite fails when it is stale. An unknown section or option is refused with a "did
you mean"; a value must fit the option's type and listed values; options this component manages
are refused with the config key that controls them.
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from typing import Any

from pydantic import Field

from .types import SecretKeyRef, StrictModel


class SecretOptionValue(StrictModel):
    """An option whose value lives in an existing Secret (delivered by secretKeyRef)."""

    secret: SecretKeyRef = Field(description="The Secret and key holding the value.")


AirflowOptionValue = bool | int | float | str | SecretOptionValue
AirflowOptions = dict[str, dict[str, AirflowOptionValue]]

# Options the component sets itself, and the config key that controls each.
MANAGED: dict[tuple[str, str], str] = {
    ("core", "executor"): "executors",
    ("core", "parallelism"): "parallelism",
    ("core", "fernet_key"): "existingSecrets.fernetKey / fernet",
    ("core", "dags_folder"): "dags",
    ("core", "auth_manager"): "auth.manager",
    ("core", "execution_api_server_url"): "apiServer (the in-cluster Service)",
    ("core", "simple_auth_manager_users"): "auth.adminUsername",
    ("core", "simple_auth_manager_passwords_file"): "auth",
    ("core", "hostname_callable"): "(fixed: task logs are fetched from the pod IP)",
    ("core", "load_examples"): "(fixed: False)",
    ("database", "sql_alchemy_conn"): "database",
    ("database", "sql_alchemy_conn_cmd"): "database",
    ("database", "sql_alchemy_conn_async"): "database",
    ("api", "base_url"): "baseUrl / ingress",
    ("api", "workers"): "apiServer.workers",
    ("api", "host"): "(fixed: the api-server listens on every address of its pod)",
    ("api", "port"): "(fixed: 8080, the Service's target)",
    ("api", "secret_key"): "existingSecrets.apiSecretKey",
    ("api_auth", "jwt_secret"): "existingSecrets.jwtSecret",
    ("fab", "config_file"): "auth.webserverConfig",
    ("celery", "broker_url"): "celery",
    ("celery", "result_backend"): "celery",
    ("celery", "worker_concurrency"): "celery.workers.concurrency",
    ("celery", "flower_basic_auth"): "celery.flower",
    ("logging", "base_log_folder"): "logging",
    ("logging", "remote_logging"): "logging.remote",
    ("logging", "remote_base_log_folder"): "logging.remote.baseFolder",
    ("logging", "remote_log_conn_id"): "logging.remote.connectionId",
    ("logging", "delete_local_logs"): "logging.remote",
    ("metrics", "statsd_on"): "metrics.enabled",
    ("metrics", "statsd_host"): "metrics",
    ("metrics", "statsd_port"): "metrics",
    ("metrics", "statsd_prefix"): "metrics",
    ("scheduler", "enable_health_check"): "(fixed: the liveness probe uses it)",
    ("dag_processor", "dag_bundle_config_list"): "dags.bundles",
    ("dag_processor", "dag_bundle_storage_path"): "dags.bundles (an emptyDir of its own)",
    ("dag_processor", "refresh_interval"): "(set per environment)",
    ("dag_processor", "min_file_process_interval"): "(set per environment)",
    ("kubernetes_executor", "pod_template_file"): "kubernetesExecutor",
    ("kubernetes_executor", "namespace"): "namespace",
    ("kubernetes_executor", "delete_worker_pods"): "kubernetesExecutor.deleteWorkerPods",
    ("kubernetes_executor", "delete_worker_pods_on_failure"): "kubernetesExecutor",
    ("kubernetes_executor", "in_cluster"): "(fixed: True)",
}


@functools.cache
def catalog() -> dict[str, Any]:
    text = resources.files("airflow_component.data").joinpath("airflow_options.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def env_name(section: str, option: str) -> str:
    """The variable Airflow reads an option from (`.` in provider sections becomes `_`)."""
    return f"AIRFLOW__{section.replace('.', '_').upper()}__{option.upper()}"


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_value(where: str, spec: dict[str, Any], value: AirflowOptionValue) -> None:
    if isinstance(value, SecretOptionValue):
        return
    kind = spec["type"]
    ok = {
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "string": isinstance(value, str | int | float) and not isinstance(value, bool),
    }[kind]
    if not ok:
        raise ValueError(f"{where}: expected a {kind}, got {value!r}")
    if "values" in spec and str(value) not in spec["values"]:
        raise ValueError(f"{where}: {value!r} is not one of {spec['values']}")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where}: NUL characters cannot reach a process")


def validate_options(options: AirflowOptions) -> AirflowOptions:
    """Every (section, option) exists in the pinned Airflow, fits its type, is not managed here,
    and (when sensitive) comes from a Secret."""
    known = catalog()["sections"]
    version = catalog()["airflowVersion"]
    for section, values in options.items():
        if section not in known:
            raise ValueError(
                f"{section}: not a configuration section of Airflow {version}"
                + _suggest(section, list(known))
            )
        for option, value in values.items():
            where = f"{section}.{option}"
            if option not in known[section]:
                elsewhere = [name for name, body in known.items() if option in body]
                hint = (
                    f"; it is in [{elsewhere[0]}]"
                    if elsewhere
                    else _suggest(option, list(known[section]))
                )
                raise ValueError(f"{where}: not an option of Airflow {version}{hint}")
            if (section, option) in MANAGED:
                raise ValueError(
                    f"{where}: set by this component; use {MANAGED[(section, option)]}"
                )
            spec = known[section][option]
            if spec.get("sensitive") and not isinstance(value, SecretOptionValue):
                raise ValueError(
                    f"{where}: a sensitive option; give it as {{secret: {{name, key}}}} so the "
                    "value never appears in a manifest"
                )
            _check_value(where, spec, value)
    return options


def overlaid(*layers: AirflowOptions) -> AirflowOptions:
    """Later layers override earlier ones, option by option (a section set in two layers keeps
    the options only the earlier one sets)."""
    result: AirflowOptions = {}
    for layer in layers:
        for section, values in layer.items():
            result[section] = {**result.get(section, {}), **values}
    return result


def merged(*layers: AirflowOptions) -> dict[tuple[str, str], AirflowOptionValue]:
    """`overlaid`, keyed by (section, option)."""
    return {
        (section, option): value
        for section, values in overlaid(*layers).items()
        for option, value in values.items()
    }


def as_text(value: bool | int | float | str) -> str:
    """What Airflow parses: True/False for booleans, numbers as written."""
    return str(value)


def api_server_option_problem(
    options: dict[tuple[str, str], AirflowOptionValue], official_image: bool
) -> str | None:
    """api-server settings that cannot work: rolling worker refresh works only with gunicorn
    (Airflow 3.3 `config.yml`, [api] worker_refresh_interval), and gunicorn is an extra
    (`apache-airflow-core[gunicorn]`) that the official image does not install (its Dockerfile's
    AIRFLOW_EXTRAS), so the api-server would exit at start ("Gunicorn is not installed")."""
    refresh = options.get(("api", "worker_refresh_interval"), 0)
    server = options.get(("api", "server_type"), "uvicorn")
    if server == "gunicorn" and official_image:
        return (
            "api.server_type gunicorn: the official apache/airflow image does not ship gunicorn "
            "(the apache-airflow-core[gunicorn] extra) and the api-server would not start; "
            "use an image built with it (image.repository)"
        )
    if isinstance(refresh, int) and refresh > 0 and server != "gunicorn":
        return (
            "api.worker_refresh_interval is ignored unless api.server_type is gunicorn "
            f"(it is {server!r}); set both or neither"
        )
    return None

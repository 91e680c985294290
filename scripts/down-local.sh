#!/usr/bin/env bash
# Removes the local stack (`pulumi destroy -s local`) and, when asked, the kind cluster.
# Usage: scripts/down-local.sh [--delete-cluster]
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
CLUSTER=airflow

command -v pulumi >/dev/null || {
  echo "error: 'pulumi' is not installed (see README: Requirements)" >&2
  exit 1
}

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$ROOT/.pulumi-state}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-airflow-k8s-local}"

if pulumi stack select local 2>/dev/null; then
  echo "==> pulumi destroy -s local"
  pulumi destroy -s local --yes --skip-preview
else
  echo "==> no local stack in $PULUMI_BACKEND_URL"
fi

if [[ "${1:-}" == "--delete-cluster" ]]; then
  command -v kind >/dev/null || {
    echo "error: 'kind' is not installed" >&2
    exit 1
  }
  echo "==> kind delete cluster --name $CLUSTER"
  kind delete cluster --name "$CLUSTER"
else
  echo "The kind cluster '$CLUSTER' stays (scripts/down-local.sh --delete-cluster removes it)."
fi

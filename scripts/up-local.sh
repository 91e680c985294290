#!/usr/bin/env bash
# The main job: Airflow 3 on a local kind cluster with `pulumi up -s local`.
# Needs docker, kind and the pulumi CLI on PATH. Creates the kind cluster if missing, keeps
# Pulumi state in ./.pulumi-state (no account) with a documented local-only passphrase.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
CLUSTER=airflow

for tool in docker kind pulumi python3; do
  command -v "$tool" >/dev/null || {
    echo "error: '$tool' is not installed (see README: Requirements)" >&2
    exit 1
  }
done

if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "==> creating kind cluster '$CLUSTER'"
  kind_config="$(mktemp)"
  trap 'rm -f "$kind_config"' EXIT
  sed "s#REPO_ROOT#$ROOT#g" kind/kind-config.yaml >"$kind_config"
  kind create cluster --config "$kind_config" --wait 120s
fi

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$ROOT/.pulumi-state}"
# Local development only: this passphrase protects nothing of value. Use your own elsewhere.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-airflow-k8s-local}"
mkdir -p .pulumi-state

pulumi stack select local 2>/dev/null || pulumi stack init local

# Images Docker already has go into the kind node, so the first start does not wait on pulls
# (and works offline once pulled). The list is the one the stack renders.
echo "==> preloading images Docker already has into kind"
.venv/bin/python - <<'PY' >"${TMPDIR:-/tmp}/airflow-k8s-images.txt"
from airflow_component import versions
print(f"{versions.AIRFLOW_IMAGE_REPOSITORY}:{versions.AIRFLOW_VERSION}")
for name in dir(versions):
    value = getattr(versions, name)
    if name.endswith("_IMAGE") and isinstance(value, str):
        print(value)
PY
while read -r image; do
  if docker image inspect "$image" >/dev/null 2>&1; then
    echo "    kind load docker-image $image"
    kind load docker-image --name "$CLUSTER" "$image" >/dev/null
  else
    echo "    $image: not in Docker, the node pulls it"
  fi
done <"${TMPDIR:-/tmp}/airflow-k8s-images.txt"

echo "==> pulumi up -s local (migrations, workloads, then the self-check Job)"
pulumi up -s local --yes --skip-preview "$@"

echo
echo "Airflow UI: $(pulumi stack output url -s local)"
echo "User: $(pulumi stack output adminUsername -s local)"
echo "Password: $(pulumi stack output adminPassword --show-secrets -s local)"
echo "DAGs: save a file in ./dags; it appears within seconds (local refresh interval 5 s)."
echo "Remove: scripts/down-local.sh"

#!/usr/bin/env bash
# End-to-end: a kind cluster (one worker labelled as a GPU pool node), `pulumi up -s dev` with a
# local file backend, readiness checks with the kubernetes client, then teardown.
#
# Needs: a reachable Docker engine, kind, pulumi (and the project's .venv: `make setup`).
# Everything it creates lives in a temporary directory and the kind cluster, both removed at exit
# (set MODELPLANE_E2E_KEEP=1 to keep the cluster for debugging).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${MODELPLANE_E2E_CLUSTER:-modelplane-e2e}"
context="kind-${cluster}"
timeout="${MODELPLANE_E2E_TIMEOUT:-1200}"

missing=()
command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || missing+=("docker (a reachable engine)")
command -v kind >/dev/null 2>&1 || missing+=("kind")
command -v pulumi >/dev/null 2>&1 || missing+=("pulumi")
test -x "$root/.venv/bin/python" || missing+=(".venv (run make setup)")
if ((${#missing[@]})); then
  printf 'e2e: missing: %s\n' "${missing[@]}" >&2
  exit 2
fi

work="$(mktemp -d)"
cleanup() {
  if [[ "${MODELPLANE_E2E_KEEP:-0}" != 1 ]]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/kind.yaml" <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
  - role: worker
  - role: worker
    labels:
      modelplane.dev/gpu-pool: kind-gpu
      nvidia.com/gpu.present: "true"
KIND
kind create cluster --name "$cluster" --config "$work/kind.yaml" --wait 180s

# A copy of the project, so that `pulumi stack init` writes its stack settings there, not here.
mkdir -p "$work/project"
tar -C "$root" --exclude=.venv --exclude=.git --exclude=deploy -cf - . | tar -C "$work/project" -xf -
ln -s "$root/.venv" "$work/project/.venv"

export PULUMI_BACKEND_URL="file://$work/state"
export PULUMI_CONFIG_PASSPHRASE="modelplane-e2e"
export PULUMI_SKIP_UPDATE_CHECK=true
mkdir -p "$work/state"
cd "$work/project"
pulumi login "file://$work/state"
pulumi stack select dev --create --non-interactive
pulumi config set kubernetes:context "$context" -s dev
pulumi up -s dev --yes --skip-preview --non-interactive

"$root/.venv/bin/python" "$root/scripts/e2e_check.py" "$root/stacks/dev.yaml" --context "$context" --timeout "$timeout"

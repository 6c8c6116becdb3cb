#!/usr/bin/env bash
# End-to-end: `pulumi up` on a real cluster.
#
# Two ways, chosen by MODELPLANE_E2E_MODE (default `auto`: kind where docker, kind and pulumi are
# present, the local control plane otherwise):
#   kind   a kind cluster (one worker labelled as a GPU pool node), `pulumi up -s dev` with a
#          local file backend and the upstream releases installed from their chart
#          repositories, readiness checks with the kubernetes client, then teardown.
#          Needs a reachable Docker engine, kind and pulumi.
#   local  the control plane of tests/cluster (kube-apiserver, etcd, KServe's and Knative's own
#          controllers and webhooks, kwok nodes) and Pulumi's engine, Python language host and
#          Kubernetes provider, all built from their Go modules: `pulumi preview`, `pulumi up`
#          for dev and staging, a second `up` that must change nothing, then a canary.
#          Needs Go; runs tests/cluster/test_pulumi.py.
# Both need the project's .venv (`make setup`). Everything they create lives in temporary
# directories (and the kind cluster), removed at exit; MODELPLANE_E2E_KEEP=1 keeps the cluster.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${MODELPLANE_E2E_MODE:-auto}"

kind_missing() {
  local missing=()
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || missing+=("docker (a reachable engine)")
  command -v kind >/dev/null 2>&1 || missing+=("kind")
  command -v pulumi >/dev/null 2>&1 || missing+=("pulumi")
  printf '%s\n' "${missing[@]}"
}

test -x "$root/.venv/bin/python" || { echo "e2e: missing: .venv (run make setup)" >&2; exit 2; }
case "$mode" in
  auto)
    if [[ -z "$(kind_missing)" ]]; then mode=kind; else mode=local; fi ;;
  kind|local) ;;
  *) echo "e2e: MODELPLANE_E2E_MODE must be auto, kind or local (got '$mode')" >&2; exit 2 ;;
esac

if [[ "$mode" == local ]]; then
  if ! command -v go >/dev/null 2>&1; then
    echo "e2e: missing: go (for the local control plane and Pulumi), or docker, kind and pulumi (for kind)" >&2
    exit 2
  fi
  echo "e2e: local control plane and Pulumi built from Go modules" >&2
  cd "$root"
  # -p no:cacheprovider: nothing written into the project. The test fails, never skips, when
  # something it needs is missing (MODELPLANE_E2E=1).
  MODELPLANE_E2E=1 exec "$root/.venv/bin/pytest" -p no:cacheprovider tests/cluster/test_pulumi.py
fi

mapfile -t missing < <(kind_missing)
if ((${#missing[@]})) && [[ -n "${missing[0]}" ]]; then
  printf 'e2e: missing: %s\n' "${missing[@]}" >&2
  exit 2
fi

cluster="${MODELPLANE_E2E_CLUSTER:-modelplane-e2e}"
context="kind-${cluster}"
timeout="${MODELPLANE_E2E_TIMEOUT:-1200}"
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

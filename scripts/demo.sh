#!/usr/bin/env bash
# The modelplane demo: validate, render and summarise the example stacks, plan prod's
# capacity, and preview and advance a canary rollout.
#
# `make demo` has already created .venv and installed modelplane; this script sets up
# nothing else. It runs from the project root and writes deploy/<stack>/ for each stack.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
MODELPLANE="${MODELPLANE:-.venv/bin/modelplane}"
CRD_DIR="../shared/schemas/crds"
# Every example stack file; lock files (deployed-state records) are not stacks.
STACKS=()
for file in stacks/*.yaml; do
  [[ "$file" == *.lock.yaml || "$(basename "$file")" == Pulumi.* ]] || STACKS+=("$file")
done

heading() {
  printf '\n== %s ==\n\n' "$1"
}

# KServe's LLMInferenceService CRD is not among the schemas beside the project; it is read from
# the pinned KServe Go module (tools/kserve-webhook's go.mod pins it) when Go is here.
schema_dir() {
  local dir module
  command -v go >/dev/null 2>&1 || return 1
  module="$(cd tools/kserve-webhook && go mod download -json github.com/kserve/kserve 2>/dev/null \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" || return 1
  dir="$(mktemp -d)"
  cp -r "$CRD_DIR"/. "$dir"/
  cp "$module/config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml" \
    "$dir/serving.kserve.io/llminferenceservice.yaml"
  echo "$dir"
}

heading "1. Validate the example stacks"
if [[ -d "$CRD_DIR" ]] && SCHEMAS="$(schema_dir)"; then
  echo "Rendered objects are also checked against the upstream CRD schemas in $CRD_DIR"
  echo "(and KServe's LLMInferenceService CRD from its Go module)."
  "$MODELPLANE" validate --schemas "$SCHEMAS" "${STACKS[@]}"
  rm -rf "$SCHEMAS"
else
  echo "No upstream CRD schemas at $CRD_DIR: validating the stack files only."
  echo "(modelplane schemas fetch FILE --out DIR downloads them for a stack's pinned versions.)"
  "$MODELPLANE" validate "${STACKS[@]}"
fi

heading "2. Render each stack for GitOps (Flux) into deploy/<stack>/"
for stack in "${STACKS[@]}"; do
  name="$(basename "$stack" .yaml)"
  "$MODELPLANE" render "$stack" -o "deploy/$name"
done

heading "3. What each stack deploys"
for stack in "${STACKS[@]}"; do
  "$MODELPLANE" summary "$stack"
  echo
done

# -- Further parts of the demo (rollout preview, capacity plan) go below this line. --

heading "4. Capacity plan of prod (GPU bin packing, mesh density, pod and IP budgets)"
"$MODELPLANE" plan stacks/prod.yaml

heading "5. A canary rollout, derived by diffing, previewed as a pull request would see it"
bash scripts/demo_rollout.sh

#!/usr/bin/env bash
# A canary rollout derived by diffing, end to end, with no cluster: copy the prod stack into a
# scratch Git repository, bump one model's version, preview the change as a pull request would,
# record it, advance the canary twice, and show the lock and the traffic split that renders.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODELPLANE="${MODELPLANE:-$ROOT/.venv/bin/modelplane}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
MODEL=fraud-detector

heading() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stacks"
cp "$ROOT/stacks/prod.yaml" "$ROOT/stacks/prod.lock.yaml" "$work/stacks/"
cd "$work"
git init -q
git -c user.name=demo -c user.email=demo@example.invalid add -A
git -c user.name=demo -c user.email=demo@example.invalid commit -qm "prod as deployed"

heading "1. A pull request bumps $MODEL from v7 to v8"
sed -i "/name: $MODEL\$/,/^    version:/ s/v7/v8/g" stacks/prod.yaml
git --no-pager diff --stat
git --no-pager diff -U0 stacks/prod.yaml | tail -n +5

heading "2. modelplane preview (the pull-request comment; no cluster credentials)"
"$MODELPLANE" preview stacks/prod.yaml --base HEAD

heading "3. After merge, CI records the rollout in the lock"
"$MODELPLANE" rollout apply stacks/prod.yaml --now 2026-09-01T09:00:00Z

heading "4. Advance: too early waits (stepInterval is 15m in prod), then two steps"
# The demo has no Prometheus: --skip-gates says so, and the lock's history records it.
"$MODELPLANE" rollout advance stacks/prod.yaml "$MODEL" --now 2026-09-01T09:10:00Z
"$MODELPLANE" rollout advance stacks/prod.yaml "$MODEL" --skip-gates --now 2026-09-01T09:15:00Z
"$MODELPLANE" rollout advance stacks/prod.yaml "$MODEL" --skip-gates --now 2026-09-01T09:30:00Z

heading "5. The lock, as Git shows it"
git --no-pager diff stacks/prod.lock.yaml

heading "6. Where the model stands, and the traffic split the rendered objects carry"
"$MODELPLANE" rollout status stacks/prod.yaml "$MODEL" --now 2026-09-01T09:30:00Z
"$MODELPLANE" render stacks/prod.yaml -o - | "$PYTHON" -c '
import sys, yaml
for doc in yaml.safe_load_all(sys.stdin):
    if doc and doc["kind"] == "InferenceService" and doc["metadata"]["name"] == sys.argv[1]:
        spec = doc["spec"]
        shown = {"predictor": {k: spec["predictor"][k] for k in ("name", "minReplicas", "maxReplicas")},
                 "predictor.model.storageUri": spec["predictor"]["model"]["storageUri"],
                 "canary": [{"predictor.name": c["predictor"]["name"],
                             "predictor.model.storageUri": c["predictor"]["model"]["storageUri"],
                             "trafficPercent": c["trafficPercent"]} for c in spec.get("canary", [])]}
        print(yaml.safe_dump(shown, sort_keys=False), end="")
' "$MODEL"

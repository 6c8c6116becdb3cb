"""Why a graph's router runs in Knative mode only: its pod, as KServe v0.20.0 builds it, judged by
Kubernetes' own Pod Security evaluator.

KServe builds the router container's securityContext itself (pkg/controller/v1alpha1/
inferencegraph/raw_ig.go:66-76 for Standard mode, knative_reconciler.go:221-230 for Knative),
with no seccomp profile and no pod securityContext. A tenant namespace enforces "restricted",
which requires one; Knative's ``secure-pod-defaults`` (serving pkg/apis/serving/v1/
revision_defaults.go:214-236) sets RuntimeDefault on every container of a revision that sets none.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.upstream import psa

ROUTER_CONTAINER: dict[str, Any] = {
    "name": "fraud-ensemble",
    "image": "kserve/router:v0.20.0",
    "args": ["--graph-json", "{}"],
    "securityContext": {
        "privileged": False,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
}
"""The router container as KServe v0.20.0 builds it (raw_ig.go:58-77; the Knative one sets the same context)."""


def _router_pod(*, secure_pod_defaults: bool) -> dict[str, Any]:
    container = copy.deepcopy(ROUTER_CONTAINER)
    if secure_pod_defaults:
        container["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
    return {"containers": [container], "automountServiceAccountToken": False}


def test_a_standard_mode_router_is_refused_by_a_restricted_namespace(psa_binary: Path) -> None:
    [verdict] = psa.evaluate(
        psa_binary, [("router", {}, _router_pod(secure_pod_defaults=False))], kubernetes="1.33"
    )
    assert verdict.allowed("baseline")
    assert [v.split(":")[0] for v in verdict.restricted] == ["seccompProfile"]


def test_knative_secure_pod_defaults_make_the_router_restricted(psa_binary: Path) -> None:
    [verdict] = psa.evaluate(
        psa_binary, [("router", {}, _router_pod(secure_pod_defaults=True))], kubernetes="1.33"
    )
    assert verdict.allowed("restricted")

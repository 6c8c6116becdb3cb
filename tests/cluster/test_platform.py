"""Every example stack against a real API server, KServe's and Knative's own code, and a scheduler.

What the schema tests cannot see, these do: admission webhooks (KServe's and Knative's), CEL
rules, server-side-apply ownership, immutable fields, what KServe builds from an
InferenceService, what Knative accepts from KServe, and where the scheduler puts the pods.
"""

from __future__ import annotations

import copy
import difflib
import re
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Platform
from tests.cluster.kubectl import ApplyError, identity
from tests.cluster.nodes import plan_json

RECONCILE_TIMEOUT = 180.0


def models(platform: Platform, mode: str) -> list[Any]:
    return [m for m in platform.args.models if platform.args.mode(m) == mode]


def isvc_namespace(platform: Platform, name: str) -> str:
    for obj in platform.rendered.objects:
        if obj["kind"] == "InferenceService" and obj["metadata"]["name"] == name:
            return str(obj["metadata"]["namespace"])
    raise LookupError(name)


def isvc_messages(platform: Platform, name: str) -> str:
    """What KServe reports about an InferenceService: its conditions and warning events."""
    namespace = isvc_namespace(platform, name)
    isvc = platform.kube.get("serving.kserve.io/v1beta1", "InferenceService", name, namespace) or {}
    conditions = [
        f"{c.get('type')}={c.get('status')}: {c.get('message', '')}"
        for c in isvc.get("status", {}).get("conditions", [])
        if c.get("status") != "True"
    ]
    events = [
        e.get("message", "")
        for e in platform.kube.list("v1", "Event", namespace)
        if e.get("involvedObject", {}).get("name") == name and e.get("type") == "Warning"
    ]
    return "; ".join(conditions + sorted(set(events)))


def wait_until(check: Any, timeout: float = RECONCILE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(1)
    return bool(check())


def test_every_rendered_object_is_admitted(platform: Platform) -> None:
    assert platform.refused == {}, "\n".join(platform.refused.values())


def _served(obj: dict[str, Any]) -> dict[str, Any]:
    """An object as served, less what every write bumps (resourceVersion, managedFields times).

    Custom resources whose CRD defaults status fields (Gateway API's) get a new resourceVersion
    on the first no-op write after create: the API server stores the defaulted status it had
    only served until then. Nothing a client sees changes, so the comparison is on content.
    """
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("resourceVersion", None)
    for entry in obj["metadata"].get("managedFields") or []:
        entry.pop("time", None)
    return obj


def test_a_second_apply_changes_nothing(platform: Platform) -> None:
    changed = []
    for obj in platform.rendered.objects:
        if identity(obj) not in platform.applied:
            continue
        meta = obj["metadata"]
        before = platform.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        try:
            after = platform.kube.apply(obj)
        except ApplyError as error:
            changed.append(str(error))
            continue
        if before is None or _served(after) != _served(before):
            diff = difflib.unified_diff(
                yaml.safe_dump(_served(before or {"metadata": {}})).splitlines(),
                yaml.safe_dump(_served(after)).splitlines(),
                lineterm="",
                n=0,
            )
            changed.append(f"{identity(obj)}:\n" + "\n".join(list(diff)[2:]))
    assert changed == [], "\n".join(changed)


def models_without(platform: Platform, mode: str, api_version: str, kind: str) -> dict[str, str]:
    """Models of ``mode`` for which KServe built no ``kind`` (with what KServe says instead)."""
    chosen = models(platform, mode)
    if not chosen:
        pytest.skip(f"{platform.stack_file.name} has no {mode}-mode model")
    missing: dict[str, str] = {}

    def built() -> bool:
        missing.clear()
        for model in chosen:
            selector = f"serving.kserve.io/inferenceservice={model.name}"
            namespace = isvc_namespace(platform, model.name)
            if not platform.kube.list(api_version, kind, namespace, label_selector=selector):
                missing[model.name] = isvc_messages(platform, model.name)
        return not missing

    wait_until(built)
    return missing


def test_kserve_builds_a_deployment_for_every_standard_model(platform: Platform) -> None:
    assert models_without(platform, "standard", "apps/v1", "Deployment") == {}


def test_knative_admits_the_service_of_every_knative_model(platform: Platform) -> None:
    # Knative's webhook refuses what its field mask drops (a pod securityContext, priorityClassName)
    # unless config-features allows it; KServe then reports the refusal on the InferenceService.
    assert models_without(platform, "knative", "serving.knative.dev/v1", "Service") == {}


def _pool_of(platform: Platform, node_name: str) -> str:
    for pool in platform.args.gpu_pools:
        if node_name.startswith(f"{pool.name}-"):
            return pool.name
    return ""


def test_pods_land_on_the_gpu_pools_as_the_plan_says(platform: Platform) -> None:
    if not platform.args.gpu_pools:
        pytest.skip(f"{platform.stack_file.name} has no GPU pool")
    planned = {p["name"]: p["min"]["pods"] for p in plan_json(platform.stack_file)["pools"]}
    gpu_models = {
        m.name for m in platform.args.models if m.resources.pool and platform.args.mode(m) != "modelmesh"
    }
    placed: Counter[str] = Counter()
    pending: list[str] = []

    def scheduled() -> bool:
        placed.clear()
        pending.clear()
        for pod in platform.kube.list("v1", "Pod", label_selector="serving.kserve.io/inferenceservice"):
            if pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"] not in gpu_models:
                continue
            node_name = pod["spec"].get("nodeName")
            if node_name:
                placed[_pool_of(platform, node_name)] += 1
            else:
                reasons = [c.get("message", "") for c in pod.get("status", {}).get("conditions", [])]
                pending.append(f"{pod['metadata']['name']}: {'; '.join(reasons)}")
        return dict(placed) == planned and not pending

    wait_until(scheduled)
    assert (dict(placed), pending) == (planned, [])


def _status(platform: Platform) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelplane.cli", "status", str(platform.stack_file)],
        capture_output=True,
        text=True,
        check=False,
        env={"KUBECONFIG": str(platform.cp.kubeconfig), "PATH": "/usr/bin:/bin"},
    )


def test_status_reports_no_drift_then_the_exact_drift_of_a_manual_edit(platform: Platform) -> None:
    synced = _status(platform)
    assert (synced.returncode, synced.stdout.splitlines()[-1:]) == (0, ["in sync"]), (
        synced.stdout + synced.stderr
    )
    isvc = next(o for o in platform.rendered.objects if o["kind"] == "InferenceService")
    name, namespace = isvc["metadata"]["name"], isvc["metadata"]["namespace"]
    platform.kube.patch(isvc, {"spec": {"predictor": {"maxReplicas": 97}}})
    try:
        drifted = _status(platform)
    finally:
        platform.kube.apply(isvc)
    rendered_max = isvc["spec"]["predictor"].get("maxReplicas")
    changed = [line for line in drifted.stdout.splitlines() if line.startswith("changed:")]
    assert (drifted.returncode, changed) == (
        3,
        [
            f"changed: InferenceService {namespace}/{name}: spec.predictor.maxReplicas: "
            f"rendered {rendered_max!r}, live 97"
        ],
    ), drifted.stdout
    assert re.search(r"^drift$", drifted.stdout, re.M)

"""Every example stack against a real API server, KServe's and Knative's own code, and a scheduler.

What the schema tests cannot see, these do: admission webhooks (KServe's and Knative's), CEL
rules, server-side-apply ownership, immutable fields, what KServe builds from an
InferenceService, what Knative accepts from KServe, and where the scheduler puts the pods.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import llm, load_stack
from tests.cluster.conftest import Platform
from tests.cluster.kubectl import FIELD_MANAGER, ApplyError, identity
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
    """What an apply by modelplane can change: the object less status and other writers' traces.

    Left out: ``resourceVersion`` (custom resources whose CRD defaults status fields, Gateway
    API's, get a new one on the first no-op write after create, when the API server stores the
    defaulted status it had only served), ``status`` and the managedFields entries of other
    managers (KServe writes status concurrently), and the time of modelplane's own entry.
    """
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    obj["metadata"].pop("resourceVersion", None)
    entries = [e for e in obj["metadata"].get("managedFields") or [] if e.get("manager") == FIELD_MANAGER]
    for entry in entries:
        entry.pop("time", None)
    obj["metadata"]["managedFields"] = entries
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


def planned_isvc_pods(stack_file: Path) -> dict[str, int]:
    """Pods per pool at minimum replicas, as ``modelplane plan`` counts them, less ModelMesh's.

    ModelMesh's controller is not run here (upstream is archived; no module to build it from at
    v0.12), so the mesh runtime pods the plan places on a pool are taken out of its count, and so
    are LLM services' pods.
    """
    plan = plan_json(stack_file)
    elsewhere: Counter[str] = Counter()
    for entry in plan["mesh"]:
        if entry["pool"]:
            elsewhere[entry["pool"]] += entry["pods"]
    # Nor is the LLMInferenceService controller (a separate manager of KServe's), so LLM
    # services' pods never appear either.
    for service in load_stack(stack_file).llms:
        if service.resources.pool:
            elsewhere[service.resources.pool] += sum(pods for _, pods in llm.gpu_pods(service, "min"))
    pools = {p["name"]: p["min"]["pods"] - elsewhere[p["name"]] for p in plan["pools"]}
    return {name: pods for name, pods in pools.items() if pods}


def test_pods_land_on_the_gpu_pools_as_the_plan_says(platform: Platform) -> None:
    if not platform.args.gpu_pools:
        pytest.skip(f"{platform.stack_file.name} has no GPU pool")
    if "keda" not in platform.cp.bins:
        held = [
            m.name
            for m in platform.args.models
            if m.resources.pool
            and platform.args.mode(m) == "standard"
            and (m.scaling.metric or "cpu") not in ("cpu", "memory")
            and m.scaling.min_replicas > 1
        ]
        if held:
            pytest.skip(
                f"KEDA's operator is not built (scripts/build_tools.py build keda): KServe leaves the "
                f"Deployments of KEDA-scaled {', '.join(held)} at 1 replica until KEDA scales them to minReplicas"
            )
    planned = planned_isvc_pods(platform.stack_file)
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


def test_every_predictor_deployment_gets_its_pods(platform: Platform) -> None:
    # Pods are admitted under Pod Security "restricted" in every tenant namespace, as KServe's
    # pod webhook builds them: prod's intent-classifier mounts its model image as an ImageVolume
    # (oci+native://); as a modelcar (oci://) its ReplicaSet reports the pods forbidden. Prod's
    # image-tagger reads a storage-config entry: without control_plane.STORAGE_SPEC_PREFIX its
    # storage-initializer is KServe's bare one and the pods are forbidden too.
    models_without(platform, "standard", "apps/v1", "Deployment")
    refused: dict[str, list[str]] = {}
    short: dict[str, str] = {}

    def settled() -> bool:
        refused.clear()
        short.clear()
        for replicas in platform.kube.list(
            "apps/v1", "ReplicaSet", label_selector="serving.kserve.io/inferenceservice"
        ):
            name = replicas["metadata"]["name"]
            status = replicas.get("status", {})
            failures = [
                c.get("message", "")
                for c in status.get("conditions", [])
                if c.get("type") == "ReplicaFailure"
            ]
            if failures:
                refused[name] = failures
            elif status.get("replicas", 0) < replicas["spec"].get("replicas", 1):
                short[name] = f"{status.get('replicas', 0)} of {replicas['spec'].get('replicas', 1)} pods"
        # Done once every ReplicaSet has its pods or has been refused them.
        return not short

    wait_until(settled)
    assert (refused, short) == ({}, {})


def test_an_oci_native_model_mounts_its_image_as_a_volume(platform: Platform) -> None:
    native = {
        m.name: m.storage.uri.removeprefix("oci+native://")
        for m in platform.args.models
        if m.storage is not None and m.storage.uri is not None and m.storage.uri.startswith("oci+native://")
    }
    if not native:
        pytest.skip(f"{platform.stack_file.name} has no oci+native:// model")
    mounted: dict[str, list[Any]] = {}

    def admitted() -> bool:
        mounted.clear()
        for name in native:
            selector = f"serving.kserve.io/inferenceservice={name}"
            for pod in platform.kube.list(
                "v1", "Pod", isvc_namespace(platform, name), label_selector=selector
            ):
                spec = pod["spec"]
                containers = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
                volumes = [v["image"] for v in spec.get("volumes", []) if "image" in v]
                mounted.setdefault(name, []).append(
                    (volumes, "modelcar" in containers or "modelcar-init" in containers)
                )
        return set(mounted) == set(native)

    wait_until(admitted)
    # KServe's webhook mounted the image (pkg/utils/storage.go:641-693) and added no modelcar.
    assert mounted == {
        name: [([{"reference": image, "pullPolicy": "IfNotPresent"}], False)] * len(mounted.get(name, [None]))
        for name, image in native.items()
    }


def _status(platform: Platform, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelplane.cli", "status", str(platform.stack_file), *options],
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
        drifted = _status(platform, "--output", "json")
        drifted_text = _status(platform)
    finally:
        platform.kube.apply(isvc)
    rendered_max = isvc["spec"]["predictor"].get("maxReplicas")
    report = json.loads(drifted.stdout)
    assert (drifted.returncode, report["inSync"], report["missing"], report["changed"]) == (
        3,
        False,
        [],
        [
            {
                "apiVersion": isvc["apiVersion"],
                "kind": "InferenceService",
                "namespace": namespace,
                "name": name,
                "differences": [{"path": "spec.predictor.maxReplicas", "rendered": rendered_max, "live": 97}],
            }
        ],
    ), drifted.stdout
    assert f"~ spec.predictor.maxReplicas: 97 => {rendered_max}" in drifted_text.stdout, drifted_text.stdout


SELECTOR = re.compile(r"\{([^{}]*)\}")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def pod_selections(query: str) -> list[tuple[str, str]]:
    """(namespace, pod regex) of every series selector in ``query`` that names both."""
    found = []
    for block in SELECTOR.findall(query):
        matchers = {name: (op, value) for name, op, value in MATCHER.findall(block)}
        namespace, pod = matchers.get("namespace"), matchers.get("pod")
        if namespace and pod and namespace[0] == "=":
            found.append((namespace[1], pod[1] if pod[0] == "=~" else re.escape(pod[1])))
    return found


def queries(platform: Platform) -> list[tuple[str, str, str]]:
    """(where, PromQL, model) of every query that selects pods: KEDA triggers, gates and SLO rules.

    ``model`` is the InferenceService the query measures (from the ScaledObject's labels, which
    KServe copies from the component, or the recording rule's ``model`` label); "" for an alert.
    """
    found = []
    for scaled in platform.kube.list("keda.sh/v1alpha1", "ScaledObject"):
        model = scaled["metadata"].get("labels", {}).get("serving.kserve.io/inferenceservice", "")
        for trigger in scaled["spec"].get("triggers", []):
            query = trigger.get("metadata", {}).get("query")
            if query:
                found.append((f"ScaledObject {scaled['metadata']['name']}", query, model))
    for rule in platform.kube.list("monitoring.coreos.com/v1", "PrometheusRule"):
        for group in rule["spec"].get("groups", []):
            for entry in group.get("rules", []):
                name = entry.get("record") or entry.get("alert")
                model = entry.get("labels", {}).get("model", "")
                found.append((f"PrometheusRule {rule['metadata']['name']} {name}", str(entry["expr"]), model))
    return found


def models_refused_pods(platform: Platform) -> set[str]:
    """InferenceServices whose ReplicaSets the API server refuses pods for (ReplicaFailure)."""
    return {
        replicas["metadata"]["labels"]["serving.kserve.io/inferenceservice"]
        for replicas in platform.kube.list(
            "apps/v1", "ReplicaSet", label_selector="serving.kserve.io/inferenceservice"
        )
        if any(c.get("type") == "ReplicaFailure" for c in replicas.get("status", {}).get("conditions", []))
    }


def test_every_pod_query_selects_the_pods_kserve_creates(platform: Platform) -> None:
    standard = [m for m in platform.args.models if platform.args.mode(m) == "standard"]
    if not standard:
        pytest.skip(f"{platform.stack_file.name} has no Standard-mode model")
    models_without(platform, "standard", "apps/v1", "Deployment")
    pods: dict[str, list[str]] = {}

    def settled() -> bool:
        # Every Standard-mode model has its pods, or the API server has refused them.
        pods.clear()
        having = set()
        for pod in platform.kube.list("v1", "Pod", label_selector="serving.kserve.io/inferenceservice"):
            pods.setdefault(pod["metadata"]["namespace"], []).append(pod["metadata"]["name"])
            having.add(pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"])
        return {m.name for m in standard} <= having | models_refused_pods(platform)

    wait_until(settled)
    # A model whose pods are refused (test_every_predictor_deployment_gets_its_pods says why) has no
    # pod a selector could match; its queries are checked where its pods exist.
    refused = models_refused_pods(platform)
    checked = [(where, query) for where, query, model in queries(platform) if model not in refused]
    assert any(pod_selections(query) for _, query in checked)
    unmatched = sorted(
        f"{where}: pod=~{regex!r} in {namespace} matches none of {sorted(pods.get(namespace, []))}"
        for where, query in checked
        for namespace, regex in pod_selections(query)
        if not any(re.fullmatch(regex, name) for name in pods.get(namespace, []))
    )
    assert unmatched == []


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def test_a_pod_monitor_scrapes_every_predictor_pod(platform: Platform) -> None:
    standard = [m.name for m in platform.args.models if platform.args.mode(m) == "standard"]
    if not standard:
        pytest.skip(f"{platform.stack_file.name} has no Standard-mode model")
    models_without(platform, "standard", "apps/v1", "Deployment")
    monitors = platform.kube.list("monitoring.coreos.com/v1", "PodMonitor")
    unscraped = []
    for pod in platform.kube.list("v1", "Pod", label_selector="serving.kserve.io/inferenceservice"):
        meta = pod["metadata"]
        if meta["labels"]["serving.kserve.io/inferenceservice"] not in standard:
            continue
        if not any(
            m["metadata"]["namespace"] == meta["namespace"]
            and _selects(m["spec"].get("selector", {}), meta["labels"])
            for m in monitors
        ):
            unscraped.append(f"{meta['namespace']}/{meta['name']} {meta['labels']}")
    assert unscraped == []

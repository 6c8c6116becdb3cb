"""KServe's pod merge: the pods a model runs, built from its runtime and its InferenceService.

KServe builds a model's pod from two objects, the ServingRuntime's container and pod fields
and the InferenceService predictor's, so ``predictor_pod`` merges them as KServe does. The pods
are then judged by Kubernetes' own Pod Security admission code (``tests/upstream/psa.py``);
this module's hand-written rule checker was replaced by it once it agreed with upstream's
evaluator on every example pod and every rule.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from modelplane.control_plane import STORAGE_SPEC_PREFIX

Obj = dict[str, Any]

# -- KServe's merge ------------------------------------------------------------------------------

_LIST_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """Kubernetes' strategic merge for the fields pod specs use: keyed lists merge, other lists and scalars replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = strategic_merge(base[key], value, key) if key in base else copy.deepcopy(value)
        return merged
    key = _LIST_KEYS.get(field)
    if key and isinstance(base, list) and isinstance(patch, list):
        merged_list = [copy.deepcopy(item) for item in base]
        index = {item.get(key): i for i, item in enumerate(merged_list)}
        for item in patch:
            if item.get(key) in index:
                merged_list[index[item[key]]] = strategic_merge(merged_list[index[item[key]]], item)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


PREDICTOR_NON_POD_FIELDS = frozenset(
    {
        "model",
        "minReplicas",
        "maxReplicas",
        "scaleMetric",
        "scaleMetricType",
        "scaleTarget",
        "autoScaling",
        "containerConcurrency",
        "timeout",
        "canaryTrafficPercent",
        "labels",
        "annotations",
        "logger",
        "batcher",
        "deploymentStrategy",
        "workerSpec",
        "storageUris",
        "storageContainerName",
    }
)
RUNTIME_NON_POD_FIELDS = frozenset(
    {
        "annotations",
        "labels",
        "builtInAdapter",
        "disabled",
        "grpcDataEndpoint",
        "grpcEndpoint",
        "httpDataEndpoint",
        "multiModel",
        "protocolVersions",
        "replicas",
        "storageHelper",
        "supportedModelFormats",
        "workerSpec",
    }
)


def find_runtime(isvc: Obj, runtimes: list[Obj]) -> Obj:
    """The runtime a predictor names: a ServingRuntime of its namespace first, then a ClusterServingRuntime."""
    name = isvc["spec"]["predictor"]["model"]["runtime"]
    namespace = isvc["metadata"]["namespace"]
    for kind, ns in (("ServingRuntime", namespace), ("ClusterServingRuntime", None)):
        for runtime in runtimes:
            meta = runtime["metadata"]
            if runtime["kind"] == kind and meta["name"] == name and meta.get("namespace") == ns:
                return runtime
    raise LookupError(f"InferenceService {namespace}/{isvc['metadata']['name']}: no runtime named {name!r}")


def predictor_pod(isvc: Obj, runtimes: list[Obj]) -> Obj:
    """The predictor's pod spec as KServe builds it: the runtime's, overridden by the predictor's.

    The runtime container named ``kserve-container`` is merged with the predictor's
    ``model`` container (the predictor wins); pod fields of the runtime are merged with the
    predictor's pod fields the same way.
    """
    predictor: Obj = isvc["spec"]["predictor"]
    if "model" not in predictor:
        return {k: v for k, v in predictor.items() if k not in PREDICTOR_NON_POD_FIELDS}
    runtime = find_runtime(isvc, runtimes)["spec"]
    model = {
        k: v
        for k, v in predictor["model"].items()
        if k not in ("modelFormat", "runtime", "storageUri", "protocolVersion", "storage", "runtimeVersion")
    }
    containers = [
        strategic_merge(c, model) if c["name"] == "kserve-container" else copy.deepcopy(c)
        for c in runtime["containers"]
    ]
    pod = {k: v for k, v in runtime.items() if k not in RUNTIME_NON_POD_FIELDS} | {"containers": containers}
    return strategic_merge(pod, {k: v for k, v in predictor.items() if k not in PREDICTOR_NON_POD_FIELDS})


WORKER_NON_POD_FIELDS = frozenset({"pipelineParallelSize", "tensorParallelSize", "containers"})


def worker_pod(isvc: Obj, runtimes: list[Obj]) -> Obj | None:
    """A multi-node model's worker pod spec as KServe builds it, or None for a single-node model.

    From the runtime's ``workerSpec`` and the predictor's alone, not from the predictor's pod:
    the runtime's ``worker-container`` merged with the predictor's first worker container, the
    runtime's worker pod fields with the predictor's (v0.20.0 components/predictor.go:593-603).
    """
    wanted = isvc["spec"]["predictor"].get("workerSpec")
    if wanted is None:
        return None
    runtime = find_runtime(isvc, runtimes)["spec"]["workerSpec"]
    own = wanted.get("containers") or [{}]
    containers = [
        strategic_merge(c, {k: v for k, v in own[0].items() if k != "name"})
        if c["name"] == "worker-container"
        else copy.deepcopy(c)
        for c in runtime["containers"]
    ]
    pod = {k: v for k, v in runtime.items() if k not in WORKER_NON_POD_FIELDS} | {"containers": containers}
    return strategic_merge(pod, {k: v for k, v in wanted.items() if k not in WORKER_NON_POD_FIELDS})


def inference_service_pods(isvc: Obj, runtimes: list[Obj]) -> dict[str, Obj]:
    """Every pod an InferenceService makes (predictor, its workers, transformer, explainer), by component.

    ModelMesh-mode services make no pods of their own: their models load into the mesh
    runtime's pods, which the runtime check covers.
    """
    annotations = isvc["metadata"].get("annotations", {})
    if annotations.get("serving.kserve.io/deploymentMode") == "ModelMesh":
        return {}
    pods = {"predictor": predictor_pod(isvc, runtimes)}
    worker = worker_pod(isvc, runtimes)
    if worker is not None:
        pods["worker"] = worker
    for component in ("transformer", "explainer"):
        if component in isvc["spec"]:
            spec = isvc["spec"][component]
            pod = {k: v for k, v in spec.items() if k not in PREDICTOR_NON_POD_FIELDS and k != "art"}
            if "art" in spec:
                # KServe builds the ART explainer's container from this spec, named kserve-container,
                # with the image of inferenceservice-config (v1beta1 explainer_art.go GetContainer).
                art = {
                    k: v
                    for k, v in spec["art"].items()
                    if k not in ("type", "config", "runtimeVersion", "storageUri")
                }
                pod["containers"] = [{"name": "kserve-container", "image": "kserve/art-explainer", **art}]
            pods[component] = pod
    return pods


def runtime_pod(runtime: Obj) -> Obj:
    """A serving runtime's pod fields as a pod spec (its containers and volumes)."""
    return {k: v for k, v in runtime["spec"].items() if k not in RUNTIME_NON_POD_FIELDS}


# -- what KServe's pod webhook injects ----------------------------------------------------------

NOT_INITIALIZED = ("pvc://", "oci://", "oci+fetch://", "oci+native://")
"""Sources KServe mounts or runs as a modelcar instead of downloading with the storage-initializer."""


def source_uri(predictor: Obj) -> str | None:
    """The storage-initializer's source URI of a predictor, as KServe's controller annotates it."""
    model = predictor.get("model", predictor)
    storage = model.get("storage")
    if storage is not None and storage.get("path") is not None:
        # Checked against KServe's source in tests/upstream/test_chart_values.py.
        return STORAGE_SPEC_PREFIX + str(storage["path"]).lstrip("/")
    uri = model.get("storageUri")
    return str(uri) if uri is not None else None


def storage_initializer(uri: str | None, storage_containers: list[Obj]) -> Obj | None:
    """The init container KServe's pod webhook adds to download ``uri``, or None when it adds none.

    The bare container of ``inferenceservice-config`` (v0.20.0 pkg/utils/storage.go:311-334: a
    name, an image, resources, no security context), merged with the first enabled
    ClusterStorageContainer whose formats serve the URI, in the API's name order
    (pkg/webhook/admission/pod/storage_initializer_injector.go:123-152 and 625-632).
    """
    if uri is None or uri.startswith(NOT_INITIALIZED):
        return None
    # Only what Pod Security judges: no security context (its image and resources come from
    # inferenceservice-config and do not change the verdict).
    bare: Obj = {"name": "storage-initializer", "image": "kserve/storage-initializer", "args": [uri]}
    for container in sorted(storage_containers, key=lambda c: c["metadata"]["name"]):
        spec = container["spec"]
        if spec.get("workloadType", "initContainer") != "initContainer":
            continue
        for served in spec.get("supportedUriFormats", []):
            prefix, regex = served.get("prefix"), served.get("regex")
            if (prefix and uri.startswith(prefix)) or (regex and re.search(regex, uri)):
                merged: Obj = strategic_merge(bare, spec["container"])
                return merged
    return bare

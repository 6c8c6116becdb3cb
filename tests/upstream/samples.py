"""KServe's own samples, and what each one means, for comparing them with what modelplane renders.

The samples are read from the Go module of the pinned KServe release (``github.com/kserve/kserve``
v0.20.0, found through ``tools/kserve-webhook``'s go.mod), never copied into the project. What a
sample *means* is decided by KServe's own code: ``kserve-webhook -resolve`` runs KServe's
defaulting webhook on it (legacy framework keys become the model spec, protocols get their
defaults) and KServe's runtime selection against the ClusterServingRuntimes the release ships
(``config/runtimes``), with the release's ``inferenceservice-config``. modelplane's render goes
through the same code. ``facts`` then reads both the same way: the runtime's server type, the
model format, protocol and storage, every container and component setting the sample states.

A comparison asks that every fact a sample states holds in modelplane's render. The render may
state more (hardening, resources, probes, placement), and four differences are by design and
normalised here: images are compared by repository, since modelplane pins every tag a sample
leaves at ``latest``; a custom container's name is not compared (KServe uses the first
container); ``STORAGE_URI`` in a custom container is ``storage.uri`` (the storage initializer
serves both); Knative's ``autoscaling.knative.dev/target`` annotation is KServe's typed
``scaleTarget``, which KServe's Knative reconciler writes as that annotation.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from modelplane.kube import Obj
from modelplane.types import parse_quantity
from tests.upstream import gotools

KSERVE_MODULE = "github.com/kserve/kserve"
SAMPLE_KINDS = ("InferenceService", "InferenceGraph", "LLMInferenceService")
SAMPLE_DIRS = ("docs/samples/v1beta1", "docs/samples/graph", "docs/samples/llmisvc")
"""Where the samples the stack file must be able to express live in the module."""


class ModuleMissingError(RuntimeError):
    """KServe's Go module cannot be found or downloaded here."""


@functools.cache
def kserve_module() -> Path:
    """The directory of the pinned KServe module (downloaded by Go into its module cache if needed)."""
    go = shutil.which("go")
    if go is None:
        raise ModuleMissingError("the Go toolchain (go) is not on PATH")
    result = subprocess.run(
        [go, "mod", "download", "-json", KSERVE_MODULE],
        cwd=gotools.ROOT / "tools" / "kserve-webhook",
        env={**os.environ, "GOFLAGS": "-mod=readonly"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise ModuleMissingError(f"go mod download {KSERVE_MODULE} failed: {result.stderr.strip()}")
    directory = Path(json.loads(result.stdout)["Dir"])
    if not directory.is_dir():
        raise ModuleMissingError(f"{directory}: not extracted")
    return directory


def documents(path: Path) -> list[Obj]:
    """The objects of one YAML file.

    Samples write the image of the reader's own build as ``{username}/...``, which is not YAML
    until the reader substitutes it; it is read as ``example/...``.
    """
    text = path.read_text(encoding="utf-8").replace("{username}/", "example/")
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def sample(relative: str) -> list[Obj]:
    """The InferenceServices, InferenceGraphs and LLMInferenceServices of one sample file."""
    return [d for d in documents(kserve_module() / relative) if d.get("kind") in SAMPLE_KINDS]


def sample_files() -> list[str]:
    """Every sample file of the three directories that holds a kind the stack file expresses."""
    root = kserve_module()
    found = []
    for directory in SAMPLE_DIRS:
        for path in sorted((root / directory).rglob("*.yaml")):
            if any(d.get("kind") in SAMPLE_KINDS for d in documents(path)):
                found.append(str(path.relative_to(root)))
    return found


@functools.cache
def upstream_runtimes() -> tuple[Obj, ...]:
    """The ClusterServingRuntimes the pinned release installs.

    Those its ``config/runtimes`` kustomization lists (the Helm chart ``kserve-runtime-configs``
    holds the same fourteen); ``kserve-openvino.yaml`` sits beside them but is not installed.
    """
    directory = kserve_module() / "config" / "runtimes"
    [kustomization] = documents(directory / "kustomization.yaml")
    return tuple(
        d
        for name in kustomization["resources"]
        for d in documents(directory / name)
        if d.get("kind") == "ClusterServingRuntime"
    )


@functools.cache
def inferenceservice_config() -> Obj:
    """The release's ``inferenceservice-config`` ConfigMap."""
    [config] = documents(kserve_module() / "config" / "configmap" / "inferenceservice.yaml")
    return config


def _resolve(binary: Path, payload: dict[str, Any]) -> dict[str, Any]:
    """``kserve-webhook -resolve`` on InferenceServices and LLMInferenceServices."""
    payload = {"objects": [], "llms": [], "runtimes": [], "config": inferenceservice_config()} | payload
    result = subprocess.run(
        [str(binary), "-resolve"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"kserve-webhook -resolve failed (exit {result.returncode}): {result.stderr.strip()}"
        )
    out: dict[str, Any] = json.loads(result.stdout)
    errors = [r["error"] for part in ("objects", "llms") for r in out[part] if r["error"]]
    assert errors == [], errors
    return out


def resolve(binary: Path, isvcs: list[Obj], runtimes: list[Obj] | tuple[Obj, ...]) -> list[dict[str, Any]]:
    """Each InferenceService as KServe defaults it, with the runtime KServe selects and its server type."""
    resolved: list[dict[str, Any]] = _resolve(binary, {"objects": isvcs, "runtimes": list(runtimes)})[
        "objects"
    ]
    return resolved


def convert_llms(binary: Path, llms: list[Obj]) -> list[Obj]:
    """LLMInferenceServices of either served version as KServe's conversion makes them (v1alpha2)."""
    return [r["object"] for r in _resolve(binary, {"llms": llms})["llms"]]


# --- facts ---------------------------------------------------------------------------------------


def repository(image: str) -> str:
    """An image's repository without tag, digest or the implicit Docker Hub host."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return name.removeprefix("docker.io/").removeprefix("library/")


def _quantity(value: Any) -> Decimal:
    return parse_quantity(str(value))


def _container_facts(prefix: str, container: Obj, *, image: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if image and container.get("image"):
        facts[f"{prefix}.image"] = repository(container["image"])
    for key in ("command", "args"):
        if container.get(key):
            facts[f"{prefix}.{key}"] = list(container[key])
    for env in container.get("env") or []:
        if env["name"] == "STORAGE_URI":
            facts[f"{prefix}.storage"] = env["value"]
        else:
            facts[f"{prefix}.env.{env['name']}"] = env.get("value", env.get("valueFrom"))
    for port in container.get("ports") or []:
        facts[f"{prefix}.port"] = port["containerPort"]
        if port.get("name"):
            facts[f"{prefix}.port.name"] = port["name"]
    for kind in ("limits", "requests"):
        for resource, value in ((container.get("resources") or {}).get(kind) or {}).items():
            facts[f"{prefix}.resources.{kind}.{resource}"] = _quantity(value)
    for probe in ("readinessProbe", "livenessProbe"):
        http = (container.get(probe) or {}).get("httpGet")
        if http:
            facts[f"{prefix}.{probe}.path"] = http["path"]
    return facts


_EXTENSIONS = (
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "timeout",
    "containerConcurrency",
    "canaryTrafficPercent",
    "serviceAccountName",
)


def _component_facts(prefix: str, component: Obj) -> dict[str, Any]:
    facts: dict[str, Any] = {f"{prefix}.{k}": component[k] for k in _EXTENSIONS if k in component}
    if "serviceAccount" in component:  # the deprecated alias the API server copies into serviceAccountName
        facts[f"{prefix}.serviceAccountName"] = component["serviceAccount"]
    for key in ("logger", "batcher"):
        for field, value in (component.get(key) or {}).items():
            facts[f"{prefix}.{key}.{field}"] = value
    return facts


def _storage_facts(model: Obj) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if model.get("storageUri"):
        facts["predictor.storage"] = model["storageUri"]
    for field, value in (model.get("storage") or {}).items():
        facts[f"predictor.storage.{field}"] = value
    return facts


def _image_facts(model: Obj, runtime: Obj | None) -> dict[str, Any]:
    """The server image a model states: an explicit image, or a tag (``runtimeVersion``) on its runtime's."""
    image, tag = model.get("image"), model.get("runtimeVersion")
    if image:
        last = image.split("@", 1)[0].rsplit("/", 1)[-1]
        return {"predictor.image": repository(image), "predictor.imageTag": tag or last.partition(":")[2]}
    if tag is None:
        return {}
    facts = {"predictor.imageTag": tag}
    if runtime is not None:
        [container] = [c for c in runtime["spec"]["containers"] if c["name"] == "kserve-container"]
        facts["predictor.image"] = repository(container["image"])
    return facts


def isvc_facts(resolved: dict[str, Any], runtimes: dict[str, Obj]) -> dict[str, Any]:
    """What a defaulted InferenceService states, as flat facts (see the module docstring)."""
    isvc: Obj = resolved["object"]
    meta, spec = isvc["metadata"], isvc["spec"]
    predictor = spec["predictor"]
    annotations = dict(meta.get("annotations") or {})
    facts: dict[str, Any] = {"name": meta["name"]}
    facts["mode"] = annotations.pop("serving.kserve.io/deploymentMode", "Knative")
    target = annotations.pop("autoscaling.knative.dev/target", None)
    annotations.pop("modelFormat", None)  # KServe's defaulting adds it from the model format
    for key, value in annotations.items():
        facts[f"metadata.annotations.{key}"] = value
    for key, value in (meta.get("labels") or {}).items():
        facts[f"metadata.labels.{key}"] = value
    facts |= _component_facts("predictor", predictor)
    if target is not None:
        facts["predictor.scaleTarget"] = int(target)
    model = predictor.get("model")
    containers = predictor.get("containers") or []
    served = next((c for c in containers if c.get("name") != "transformer-container"), None)
    if model is not None:
        facts["predictor.server"] = resolved["serverType"]
        facts["predictor.format"] = model["modelFormat"]["name"].lower()
        facts["predictor.protocol"] = model.get("protocolVersion", "v1")
        facts |= _storage_facts(model)
        runtime = runtimes.get(resolved["selectedRuntime"])
        server_type = (
            (runtime or {}).get("metadata", {}).get("annotations", {}).get("serving.kserve.io/server-type")
        )
        if server_type == "custom":
            # A custom model's image and arguments are its runtime's container, then its own.
            [runtime_container] = [
                c for c in runtime["spec"]["containers"] if c["name"] == "kserve-container"
            ]
            facts |= _container_facts("predictor", runtime_container, image=True)
            own = _container_facts("predictor", model, image=False)
            if "predictor.args" in own:
                own["predictor.args"] = facts.get("predictor.args", []) + own["predictor.args"]
            facts |= own
            facts["predictor.server"] = "custom"
        else:
            facts |= _container_facts("predictor", model, image=False)
            facts |= _image_facts(model, runtime)
    elif served is not None:
        facts["predictor.server"] = "custom"
        facts |= _container_facts("predictor", served, image=True)
    collocated = next((c for c in containers if c.get("name") == "transformer-container"), None)
    if collocated is not None:
        facts |= _container_facts("transformer.collocated", collocated, image=True)
    for part in ("transformer", "explainer"):
        component = spec.get(part)
        if component is None:
            continue
        facts |= _component_facts(part, component)
        for container in component.get("containers") or []:
            facts |= _container_facts(part, container, image=True)
        art = component.get("art")
        if art is not None:
            facts[f"{part}.art.type"] = art["type"]
            for key, value in (art.get("config") or {}).items():
                facts[f"{part}.art.config.{key}"] = value
    return facts


def missing(stated: dict[str, Any], rendered: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Facts a sample states that the render does not hold: {fact: (sample's, render's)}."""
    return {k: (v, rendered.get(k)) for k, v in stated.items() if rendered.get(k) != v}


LEGACY_KEYS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "pmml",
    "lightgbm",
    "paddle",
    "huggingface",
)
"""The framework keys of a predictor that KServe's defaulting turns into its model spec."""


def _resource_facts(prefix: str, container: Obj) -> dict[str, Any]:
    return {k: v for k, v in _container_facts(prefix, container, image=False).items() if ".resources." in k}


def stated_facts(raw: Obj, resolved: dict[str, Any]) -> dict[str, Any]:
    """What a sample states: its defaulted facts, with resources as written.

    KServe's defaulting fills every container's resources from inferenceservice-config, which
    the sample does not state; resources are therefore read from the sample itself.
    """
    facts = {k: v for k, v in isvc_facts(resolved, {}).items() if ".resources." not in k}
    predictor = raw["spec"]["predictor"]
    implementation = next((predictor[k] for k in (*LEGACY_KEYS, "model") if k in predictor), None)
    containers = predictor.get("containers") or []
    if implementation is not None:
        facts |= _resource_facts("predictor", implementation)
    served = next((c for c in containers if c.get("name") != "transformer-container"), None)
    if served is not None and implementation is None:
        facts |= _resource_facts("predictor", served)
    for container in containers:
        if container.get("name") == "transformer-container":
            facts |= _resource_facts("transformer.collocated", container)
    for part in ("transformer", "explainer"):
        for container in (raw["spec"].get(part) or {}).get("containers") or []:
            facts |= _resource_facts(part, container)
    return facts


def graph_facts(graph: Obj, *, placeholders: dict[str, str] | None = None) -> dict[str, Any]:
    """What an InferenceGraph states: each node's router and steps, its replicas and timeouts.

    ``placeholders`` maps text a sample asks the reader to substitute (``{$your-domain}``, its
    ``default`` namespace) to what the stack uses.
    """
    text = json.dumps(graph["spec"])
    for old, new in (placeholders or {}).items():
        text = text.replace(old, new)
    spec = json.loads(text)
    facts: dict[str, Any] = {"name": graph["metadata"]["name"]}
    for name, node in spec["nodes"].items():
        facts[f"nodes.{name}.routerType"] = node["routerType"]
        facts[f"nodes.{name}.steps"] = node.get("steps", [])
    for key in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget", "timeout", "routerTimeouts"):
        if key in spec:
            facts[key] = spec[key]
    return facts


def _flatten(prefix: str, value: Any, facts: dict[str, Any]) -> None:
    """Leaves of a value as facts; lists of named items (containers, env) are keyed by name."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, facts)
    elif isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        for item in value:
            _flatten(f"{prefix}[{item['name']}]", {k: v for k, v in item.items() if k != "name"}, facts)
    elif prefix.endswith(".fieldRef.apiVersion") and value == "v1":
        return  # the API server's default (core/v1 SetDefaults_ObjectFieldSelector)
    elif prefix.split(".")[-1] in ("limits", "requests") or "resources." in prefix:
        facts[prefix] = (
            _quantity(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else value
        )
    else:
        facts[prefix] = value


def llm_facts(llm: Obj) -> dict[str, Any]:
    """What a (converted) LLMInferenceService states: every leaf of its spec, its annotations, and its router's parts.

    A scheduler configuration written as a YAML string is read as the object it holds, and the
    router's parts are a fact of their own, so a service without a scheduler does not match one
    with it.
    """
    spec = json.loads(json.dumps(llm["spec"]))
    router = spec.get("router") or {}
    inline = ((router.get("scheduler") or {}).get("config") or {}).get("inline")
    if isinstance(inline, str):
        router["scheduler"]["config"]["inline"] = yaml.safe_load(inline)
    facts: dict[str, Any] = {"name": llm["metadata"]["name"], "router.parts": sorted(router)}
    for key, value in (llm["metadata"].get("annotations") or {}).items():
        facts[f"metadata.annotations.{key}"] = value
    _flatten("spec", spec, facts)
    return facts

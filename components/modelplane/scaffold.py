"""Starting a stack: ``modelplane init`` scaffolds one, ``modelplane import`` brings InferenceServices in.

``init`` writes a stack file that validates as written (a tier, one tenant, one model, a
canary policy) with the JSON Schema beside it, named on the file's first line for editors with
the YAML language server. It refuses to overwrite anything.

``import`` reads InferenceService YAML (one or many documents, as ``kubectl get -o yaml``
prints them, or a ``List``) and prints the stack entries (tenants and models) that render the
same model. What a stack file cannot express (a logger, a batcher, custom containers, an
annotation modelplane does not set) is left out and named on stderr, one line per field, and
the command then exits 3, so nothing is dropped silently. A model in the middle of a KServe
canary is imported as its predictor's model; the split itself is the lock's business.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from modelplane import console
from modelplane.errors import PlatformError
from modelplane.runtimes import RuntimeSpec, catalog_dir, load_catalog
from modelplane.stack import load_stack
from modelplane.stack_schema import schema_text

EXIT_LEFT_OUT = 3

SCHEMA_DIR = "schema"

TEMPLATE = """\
# yaml-language-server: $schema={schema}
# {name}: a {tier} stack, made by `modelplane init`. Every field is described in the schema named
# above; what is not written here takes its secure default. Check it with `modelplane validate`.
stack:
  name: {name}
  tier: {tier}

controlPlane:
  ingress:
    domain: {domain}

tenants:
  - name: {tenant}

rollout:
  strategy: canary
  steps: [10, 50, 100]
  stepInterval: 10m
  failureLimit: 3
  gates:
    - {{name: latency-p99, metric: latency-p99, max: 0.5}}

models:
  - name: {model}
    tenant: {tenant}
    runtime: {runtime}
    format: {{name: {format_name}{format_version}}}
    storage: {{uri: "{uri}"}}{protocol}
    version: v1
    scaling: {{minReplicas: 1, maxReplicas: 3}}
"""


def cmd_init(ns: argparse.Namespace) -> int:
    """Write a stack file that validates: a tier, one tenant, one model, a canary policy.

    A prod stack validates once modelplane images pin has written its image lock.
    """
    directory = Path(ns.dir)
    path = directory / f"{ns.name}.yaml"
    schema_path = directory / SCHEMA_DIR / "stack.schema.json"
    for existing in (path, schema_path):
        if existing.exists():
            raise PlatformError(f"{existing}: exists; modelplane init writes new files only")
    catalog = load_catalog(catalog_dir())
    if ns.runtime not in catalog:
        raise PlatformError(
            f"--runtime {ns.runtime!r}: not in the runtime catalog ({', '.join(sorted(catalog))})"
        )
    spec = catalog[ns.runtime]
    if not spec.formats or ns.runtime == "custom":
        raise PlatformError(f"--runtime {ns.runtime!r}: pick a runtime that serves a model format")
    served = spec.formats[0]
    # A model speaks V2 unless it says otherwise; a runtime without V2 REST (TF Serving) needs V1.
    protocol = "" if "v2" in spec.protocols else "\n    protocol: {version: v1}"
    text = TEMPLATE.format(
        schema=f"{SCHEMA_DIR}/stack.schema.json",
        name=ns.name,
        tier=ns.tier,
        domain=f"{ns.name}.models.example.com",
        tenant=ns.tenant,
        model=ns.model,
        runtime=ns.runtime,
        format_name=served.name,
        format_version=f', version: "{served.version}"' if served.version else "",
        uri=ns.storage_uri,
        protocol=protocol,
    )
    directory.mkdir(parents=True, exist_ok=True)
    schema_path.parent.mkdir(parents=True, exist_ok=True)
    schema_path.write_text(schema_text(), encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    try:
        load_stack(path)
    except PlatformError:
        path.unlink()
        schema_path.unlink()
        raise
    if ns.tier == "prod":
        # A prod stack pins every image it renders by digest (images.pinning), which needs the
        # registries: the stack is complete, and validates once its image lock is written.
        print(
            f"{path}: written; a prod stack pins its images by digest: run `modelplane images pin {path}` "
            f"(it asks the registries), then `modelplane validate {path}`"
        )
    else:
        print(f"{path}: written; it validates (modelplane validate {path})")
    print(
        f"{schema_path}: the JSON Schema it names (refresh it: modelplane schemas stack --out {schema_path})"
    )
    return 0


# --- import ------------------------------------------------------------------------------

MODES = {
    "Knative": "knative",
    "Serverless": "knative",
    "RawDeployment": "standard",
    "Standard": "standard",
    "ModelMesh": "modelmesh",
}
KSERVE_RUNTIMES = {
    "kserve-sklearnserver": "sklearn",
    "kserve-xgbserver": "xgboost",
    "kserve-lgbserver": "lightgbm",
    "kserve-mlserver": "mlserver",
    "kserve-tritonserver": "triton",
    "kserve-torchserve": "torchserve",
    "kserve-huggingfaceserver": "huggingface",
    "kserve-huggingfaceserver-multinode": "huggingface-multinode",
    "kserve-autogluonserver": "autogluon",
    "kserve-openvino": "openvino",
    "kserve-paddleserver": "paddle",
    "kserve-pmmlserver": "pmml",
    "kserve-predictiveserver": "predictive",
    "kserve-tensorflow-serving": "tensorflow",
    "kserve-vllmserver": "vllm",
}
"""KServe's own ServingRuntimes and the catalog runtime that serves the same models."""

MANAGED_ANNOTATIONS = frozenset({"serving.kserve.io/deploymentMode", "serving.kserve.io/autoscalerClass"})
IGNORED_METADATA = frozenset(
    {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "finalizers", "selfLink"}
)
SCALE_METRICS = {"concurrency": "concurrency", "rps": "rps", "cpu": "cpu", "memory": "memory"}


class _Reader:
    """Takes fields out of an InferenceService; what is never taken is what the stack cannot express."""

    def __init__(self, isvc: dict[str, Any]) -> None:
        self.isvc = isvc
        self.taken: set[tuple[str, ...]] = set()

    def get(self, *path: str) -> Any:
        node: Any = self.isvc
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        self.taken.add(path)
        return node

    def left_out(self) -> list[str]:
        found: list[str] = []

        def walk(node: Any, path: tuple[str, ...]) -> None:
            if any(path[: len(t)] == t for t in self.taken):
                return
            if isinstance(node, dict) and node:
                for key, value in node.items():
                    walk(value, (*path, str(key)))
            else:
                found.append(".".join(path))

        walk(self.isvc.get("spec"), ("spec",))
        meta = self.isvc.get("metadata") or {}
        for key, value in meta.items():
            if key in IGNORED_METADATA or key in ("name", "namespace"):
                continue
            walk(value, ("metadata", key))
        return found


def _runtime(
    reader: _Reader, catalog: dict[str, RuntimeSpec], format_name: str, version: str | None
) -> str | None:
    name = reader.get("spec", "predictor", "model", "runtime")
    if isinstance(name, str):
        own = name.removeprefix("modelplane-").removesuffix("-mesh")
        if name.startswith("modelplane-") and own in catalog:
            return own
        if name in KSERVE_RUNTIMES:
            return KSERVE_RUNTIMES[name]
        return None
    serving = sorted(n for n, spec in catalog.items() if spec.serves(format_name, version))
    if format_name in serving:  # the format's own server (sklearn for sklearn) before a general one
        return format_name
    return serving[0] if serving else None


def _resources(reader: _Reader) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for side, fields in (
        ("requests", {"cpu": "cpu", "memory": "memory"}),
        ("limits", {"cpu": "cpuLimit", "memory": "memoryLimit"}),
    ):
        values = reader.get("spec", "predictor", "model", "resources", side) or {}
        for key, value in values.items():
            if key in fields:
                result[fields[key]] = str(value)
            elif key == "nvidia.com/gpu" or key.startswith("nvidia.com/mig-"):
                result["gpu"] = int(value)
                if key.startswith("nvidia.com/mig-"):
                    result["migProfile"] = key.removeprefix("nvidia.com/mig-")
    return result


def import_isvc(
    isvc: dict[str, Any], catalog: dict[str, RuntimeSpec]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """One InferenceService as a stack's tenant and model entries, and what they leave out."""
    reader = _Reader(isvc)
    name = reader.get("metadata", "name")
    namespace = reader.get("metadata", "namespace") or "default"
    labels = dict(reader.get("metadata", "labels") or {})
    annotations = dict(isvc.get("metadata", {}).get("annotations") or {})
    notes: list[str] = []
    tenant = labels.get("modelplane.dev/tenant") or namespace
    model_format = reader.get("spec", "predictor", "model", "modelFormat") or {}
    format_name, format_version = model_format.get("name"), model_format.get("version")
    runtime = _runtime(reader, catalog, str(format_name), format_version)
    if runtime is None:
        runtime = "custom"
        notes.append(
            f"spec.predictor.model.runtime: no catalog runtime serves {format_name!r}; imported as 'custom', "
            "which needs an image"
        )
    model: dict[str, Any] = {
        "name": name,
        "tenant": tenant,
        "runtime": runtime,
        "format": {"name": format_name} | ({"version": str(format_version)} if format_version else {}),
        "storage": {"uri": reader.get("spec", "predictor", "model", "storageUri")},
        "version": labels.pop("modelplane.dev/version", None) or labels.pop("version", None) or "v1",
    }
    if "version" not in (isvc.get("metadata", {}).get("labels") or {}) and "modelplane.dev/version" not in (
        isvc.get("metadata", {}).get("labels") or {}
    ):
        notes.append("metadata.labels: no version label; imported as version v1 (set the real one)")
    account = reader.get("spec", "predictor", "serviceAccountName")
    if isinstance(account, str):
        if labels.get("app.kubernetes.io/managed-by") == "modelplane" and account.startswith("storage-"):
            model["storage"]["secretName"] = account.removeprefix("storage-")
        else:
            model["storage"]["serviceAccountName"] = account
    secret = annotations.get("serving.kserve.io/secretKey")
    if isinstance(secret, str):  # ModelMesh reads storage credentials by this annotation
        model["storage"]["secretName"] = secret
        reader.get("metadata", "annotations", "serving.kserve.io/secretKey")
    mode = MODES.get(str(annotations.get("serving.kserve.io/deploymentMode")))
    if mode is not None:
        model["deploymentMode"] = mode
        reader.get("metadata", "annotations", "serving.kserve.io/deploymentMode")
    reader.get("metadata", "annotations", "serving.kserve.io/autoscalerClass")
    resources = _resources(reader)
    pool = reader.get("spec", "predictor", "nodeSelector", "modelplane.dev/gpu-pool")
    if pool:
        resources["pool"] = pool
    if resources:
        model["resources"] = resources
    scaling: dict[str, Any] = {}
    for key, field in (
        ("minReplicas", "minReplicas"),
        ("maxReplicas", "maxReplicas"),
        ("scaleTarget", "target"),
    ):
        value = reader.get("spec", "predictor", key)
        if value is not None:
            scaling[field] = int(value)
    metric = reader.get("spec", "predictor", "scaleMetric")
    if metric in SCALE_METRICS:
        scaling["metric"] = SCALE_METRICS[metric]
    reader.get("spec", "predictor", "scaleMetricType")
    if scaling:
        model["scaling"] = scaling
    predictor: dict[str, Any] = {}
    for key in ("containerConcurrency", "timeout"):
        value = reader.get("spec", "predictor", key)
        if value is not None:
            predictor[key] = int(value)
    if predictor:
        model["predictor"] = predictor
    protocol = reader.get("spec", "predictor", "model", "protocolVersion")
    if protocol in ("v1", "v2"):
        model["protocol"] = {"version": protocol}
    # What modelplane renders on its own for every model (and so needs no field).
    for path in (
        ("spec", "predictor", "securityContext"),
        ("spec", "predictor", "labels"),
        ("spec", "predictor", "tolerations"),
        ("spec", "predictor", "name"),
        ("spec", "predictor", "canaryTrafficPercent"),
        ("spec", "canary"),
        ("spec", "predictor", "priorityClassName"),
    ):
        reader.get(*path)
    if isvc.get("spec", {}).get("canary") or isvc.get("spec", {}).get("predictor", {}).get(
        "canaryTrafficPercent"
    ):
        notes.append(
            "a canary is in progress: imported as the predictor's model; the split is for `rollout apply`"
        )
    managed = {k for k in labels if k.startswith(("modelplane.dev/", "app.kubernetes.io/"))}
    for key in managed:
        reader.get("metadata", "labels", key)
    own = {k: v for k, v in labels.items() if k not in managed and k != "version"}
    if "version" in labels:
        reader.get("metadata", "labels", "version")
    if own:
        model["labels"] = own
        for key in own:
            reader.get("metadata", "labels", key)
    tenant_entry = {"name": tenant} | ({"namespace": namespace} if namespace != tenant else {})
    left = [f"{path}: not imported; left out" for path in reader.left_out()]
    return tenant_entry, model, notes + left


def _documents(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PlatformError(f"{path}: cannot read: {err.strerror}") from None
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as err:
        raise PlatformError(f"{path}: not YAML: {str(err).splitlines()[0]}") from None
    index = 0
    for document in documents:
        items = (
            document.get("items", [])
            if isinstance(document, dict) and document.get("kind", "").endswith("List")
            else [document]
        )
        for item in items:
            index += 1
            if isinstance(item, dict):
                yield index, item


def cmd_import(ns: argparse.Namespace) -> int:
    """Print the stack entries (tenants, models) of InferenceService YAML; name what they leave out (exit 3)."""
    catalog = load_catalog(catalog_dir())
    tenants: dict[str, dict[str, Any]] = {}
    models: list[dict[str, Any]] = []
    lines: list[str] = []
    skipped = 0
    for file in ns.files:
        for index, doc in _documents(file):
            where = f"{file}: document {index}"
            if doc.get("kind") != "InferenceService":
                skipped += 1
                continue
            meta = doc.get("metadata") or {}
            if not isinstance(meta.get("name"), str):
                raise PlatformError(f"{where}: metadata.name: missing")
            tenant, model, notes = import_isvc(doc, catalog)
            tenants.setdefault(tenant["name"], tenant)
            models.append(model)
            key = f"{meta.get('namespace', 'default')}/{meta['name']}"
            lines += [f"{where} ({key}): {note}" for note in notes]
    for line in lines:
        print(line, file=sys.stderr)
    header = "# Imported by `modelplane import`; review, then add to a stack file.\n"
    entries = {"tenants": list(tenants.values()), "models": models}
    sys.stdout.write(header + yaml.safe_dump(entries, sort_keys=False, default_flow_style=False, width=1000))
    if skipped:
        console.note(f"modelplane import: {skipped} objects that are not InferenceServices were skipped")
    if lines:
        console.note(f"modelplane import: {len(lines)} notes above; fields left out are not in the entries")
    return EXIT_LEFT_OUT if lines else 0


def add_init_parser(sub: Any) -> None:
    """Add ``modelplane init``."""
    p = sub.add_parser("init", help="scaffold a stack file that validates", description=cmd_init.__doc__)
    p.add_argument("name", metavar="NAME", help="stack name (the file is DIR/NAME.yaml)")
    p.add_argument("--tier", choices=("dev", "staging", "prod"), default="dev", help="tier (default dev)")
    p.add_argument("--dir", default="stacks", metavar="DIR", help="where to write it (default stacks)")
    p.add_argument("--tenant", default="team", metavar="NAME", help="the tenant (default team)")
    p.add_argument("--model", default="example", metavar="NAME", help="the model (default example)")
    p.add_argument("--runtime", default="sklearn", metavar="NAME", help="its runtime (default sklearn)")
    p.add_argument(
        "--storage-uri",
        default="gs://kfserving-examples/models/sklearn/1.0/model",
        metavar="URI",
        help="where the model is stored (default: KServe's public sklearn example)",
    )
    p.set_defaults(func=cmd_init)


def add_import_parser(sub: Any) -> None:
    """Add ``modelplane import``."""
    p = sub.add_parser(
        "import", help="stack entries from InferenceService YAML", description=cmd_import.__doc__
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="InferenceService YAML (- for stdin)")
    p.set_defaults(func=cmd_import)

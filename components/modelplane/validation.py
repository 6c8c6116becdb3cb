"""Validation of rendered objects against the schemas of the versions a stack pins.

Built-in kinds are checked with kubernetes-validate in strict mode (unknown fields are
errors) for the pinned Kubernetes version; custom resources are checked against their
CRD's ``openAPIV3Schema`` with a JSON-schema validator, because kubernetes-validate skips
every kind it has no bundled schema for. CRDs come from a directory (``--schemas DIR``),
laid out as ``<group>/<kind>.yaml``, which ``modelplane schemas fetch`` fills for the pinned
versions.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelplane.errors import PlatformError
from modelplane.kube import Obj, key_of
from modelplane.upstream import Versions

BUILTIN_GROUPS: frozenset[str] = frozenset(
    {
        "",
        "apps",
        "batch",
        "policy",
        "autoscaling",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "apiextensions.k8s.io",
        "admissionregistration.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
    }
)


def group_of(api_version: str) -> str:
    """The API group of an apiVersion (``""`` for the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


@dataclass
class CrdSchemas:
    """openAPIV3Schemas of CRDs, keyed by (apiVersion, kind)."""

    schemas: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dir(cls, directory: Path) -> CrdSchemas:
        """Read every CRD in a directory tree."""
        if not directory.is_dir():
            raise PlatformError(f"{directory}: schema directory not found")
        result = cls()
        for path in sorted(directory.rglob("*.yaml")):
            try:
                documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
            except (yaml.YAMLError, UnicodeDecodeError) as err:
                raise PlatformError(f"{path}: unreadable CRD file: {err}") from err
            for doc in documents:
                if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec.get("versions", []):
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if schema is not None and version.get("served", True):
                        api_version = f"{spec['group']}/{version['name']}"
                        result.schemas[(api_version, spec["names"]["kind"])] = schema
        return result

    def validate(self, obj: Obj) -> list[str]:
        """Schema errors of a custom resource; a missing schema is itself an error."""
        import jsonschema  # noqa: PLC0415 - a dev dependency, needed only with --schemas

        schema = self.schemas.get((obj["apiVersion"], obj["kind"]))
        if schema is None:
            return [f"{key_of(obj)}: no CRD schema for {obj['apiVersion']} {obj['kind']}"]
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        return [
            f"{key_of(obj)}: {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
        ]


def validate_builtin(obj: Obj, kubernetes_version: str) -> list[str]:
    """Strict kubernetes-validate errors of a built-in object."""
    try:
        import kubernetes_validate  # noqa: PLC0415 - a dev dependency, needed only to check schemas
    except ImportError as err:  # pragma: no cover - a dev dependency
        raise PlatformError("kubernetes-validate is not installed: pip install 'modelplane[dev]'") from err
    version = kubernetes_version if kubernetes_version.count(".") == 2 else f"{kubernetes_version}.0"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.caused_by.path) or "<root>"
        return [f"{key_of(obj)}: {path}: {err.caused_by.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{key_of(obj)}: kubernetes-validate has no schema for {obj['apiVersion']} {obj['kind']}"]
    return []


def validate_objects(objects: list[Obj], *, kubernetes_version: str, crds: CrdSchemas | None) -> list[str]:
    """Every schema problem of a set of rendered objects."""
    problems: list[str] = []
    for obj in objects:
        if group_of(obj["apiVersion"]) in BUILTIN_GROUPS:
            problems += validate_builtin(obj, kubernetes_version)
        elif crds is not None:
            problems += crds.validate(obj)
    return problems


def crd_sources(versions: Versions) -> dict[str, str]:
    """Where the CRDs of the pinned versions are published: local path → URL."""
    raw = "https://raw.githubusercontent.com"
    kserve = f"{raw}/kserve/kserve/{versions.kserve}/config/crd/full"
    gateway = f"{raw}/kubernetes-sigs/gateway-api/{versions.gateway_api}/config/crd/standard"
    prom = f"{raw}/prometheus-community/helm-charts/kube-prometheus-stack-{versions.prometheus_stack}/charts/kube-prometheus-stack/charts/crds/crds"
    return {
        "serving.kserve.io/inferenceservice.yaml": f"{kserve}/serving.kserve.io_inferenceservices.yaml",
        "serving.kserve.io/servingruntime.yaml": f"{kserve}/serving.kserve.io_servingruntimes.yaml",
        "serving.kserve.io/clusterservingruntime.yaml": f"{kserve}/serving.kserve.io_clusterservingruntimes.yaml",
        "serving.kserve.io/clusterstoragecontainer.yaml": f"{kserve}/serving.kserve.io_clusterstoragecontainers.yaml",
        "serving.kserve.io/inferencegraph.yaml": f"{kserve}/serving.kserve.io_inferencegraphs.yaml",
        "serving.kserve.io/llminferenceservice.yaml": f"{kserve}/llmisvc/serving.kserve.io_llminferenceservices.yaml",
        "gateway.networking.k8s.io/httproute.yaml": f"{gateway}/gateway.networking.k8s.io_httproutes.yaml",
        "gateway.networking.k8s.io/gateway.yaml": f"{gateway}/gateway.networking.k8s.io_gateways.yaml",
        "monitoring.coreos.com/servicemonitor.yaml": f"{prom}/crd-servicemonitors.yaml",
        "monitoring.coreos.com/podmonitor.yaml": f"{prom}/crd-podmonitors.yaml",
        "monitoring.coreos.com/prometheusrule.yaml": f"{prom}/crd-prometheusrules.yaml",
        "keda.sh/scaledobject.yaml": f"{raw}/kedacore/keda/v{versions.keda}/config/crd/bases/keda.sh_scaledobjects.yaml",
        "helm.toolkit.fluxcd.io/helmrelease.yaml": f"{raw}/fluxcd/helm-controller/v1.6.3/config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml",
        "source.toolkit.fluxcd.io/helmrepository.yaml": f"{raw}/fluxcd/source-controller/v1.9.1/config/crd/bases/source.toolkit.fluxcd.io_helmrepositories.yaml",
        "kustomize.toolkit.fluxcd.io/kustomization.yaml": f"{raw}/fluxcd/kustomize-controller/v1.9.4/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        "argoproj.io/application.yaml": f"{raw}/argoproj/argo-cd/v3.5.1/manifests/crds/application-crd.yaml",
        "gateway.networking.k8s.io/gatewayclass.yaml": f"{gateway}/gateway.networking.k8s.io_gatewayclasses.yaml",
        "operator.knative.dev/knativeserving.yaml": f"{raw}/knative/operator/knative-{versions.knative}/config/crd/bases/operator.knative.dev_knativeservings.yaml",
    }


def fetch_schemas(versions: Versions, out_dir: Path, *, timeout: float = 30.0) -> list[str]:
    """Download the CRDs of the pinned versions into ``out_dir``; returns the files written."""
    written: list[str] = []
    for rel, url in sorted(crd_sources(versions).items()):
        target = out_dir / rel
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                body = response.read()
        except (urllib.error.URLError, TimeoutError) as err:
            raise PlatformError(f"{url}: cannot fetch: {err}") from err
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        written.append(str(target))
    return written

"""Render the real upstream Helm charts with exactly the values modelplane computes.

modelplane installs upstream charts by repository, name and version and authors only their
values. Whether a value means anything, whether a chart renders an object modelplane also
authors, and whether what a chart renders would be admitted are questions about the chart's
own templates, so this module answers them with the real Helm engine (Helm v4's Go code,
bundled by ``helm-python-sdk``), not a reading of the chart.

The charts come from the reference copies beside the project
(``../shared/reference/charts/<chart>/<version>``, byte-identical to upstream's tagged
sources). Some upstream release tooling rewrites files before publishing (a Chart.yaml made
from a template, a values.yaml from ``envsubst``, dependencies fetched into ``charts/``);
``prepare`` applies exactly those steps to a copy, as the reference data's README and
SOURCES.md describe, so what renders is what users install.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes.client as client
import yaml
from helm_python import _native

from modelplane.kube import Obj
from modelplane.upstream import Chart
from modelplane.validation import CrdSchemas, group_of, validate_builtin
from tests.upstream import samples

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT.parent / "shared" / "reference" / "charts"
"""Reference copies of the upstream charts (``<chart>/<version>/``), beside the project."""

PUBLISHED: dict[tuple[str, str], str] = {
    # kedacore/charts keeps the archive it published in git; it was packaged before two PRs
    # merged into the tag's tree (SOURCES.md, "keda 2.18.0"), so the archive is what installs.
    ("keda", "2.18.0"): "_published/keda-2.18.0.tgz",
}
"""Charts whose published archive differs from the tag's tree: the archive, relative to ``CHARTS``."""

HELM_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")
"""How Helm splits a template's output into documents (``releaseutil.SplitManifests``).

``yaml.safe_load_all`` on the whole text is wrong: cert-manager renders ``---# comment``.
"""


def _kserve_module_chart(chart: str, version: str) -> Path | None:
    """KServe's own charts at a version, from its Go module (``charts/<chart>``), when Go can fetch it.

    The reference copies beside the project hold kserve-crd and kserve-resources; the module's
    ``charts/`` holds every chart of the release, byte-identical to those two at v0.20.0. It is
    the source of the charts the reference copies do not have (the LLMInferenceService ones).
    """
    if not chart.startswith("kserve-"):
        return None
    try:
        module = samples.kserve_module()
    except samples.ModuleMissingError:
        return None
    if not module.name.endswith(f"@{version}"):
        return None
    path = module / "charts" / chart
    return path if path.is_dir() else None


def reference_path(chart: str, version: str) -> Path:
    """Where the reference data of one chart version is (a directory or a published archive)."""
    published = PUBLISHED.get((chart, version))
    if published:
        return CHARTS / published
    local = CHARTS / chart / version
    if not local.exists():
        return _kserve_module_chart(chart, version) or local
    return local


def has_reference(chart: str, version: str) -> bool:
    """Whether reference data exists for a chart at a version."""
    return reference_path(chart, version).exists()


# -- preparing a copy as upstream's release tooling does ------------------------------------------


def _stamp(chart_dir: Path, version: str, app_version: str | None = None) -> None:
    """Set Chart.yaml's version and appVersion, re-marshalled as ``helm package --version`` does."""
    path = chart_dir / "Chart.yaml"
    meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    meta["version"] = version
    meta["appVersion"] = app_version or version
    path.write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")


def _prepare_cert_manager(chart_dir: Path, version: str) -> None:
    # make/manifests.mk: Chart.yaml from Chart.template.yaml; templates/crds.yaml = deploy/crds/*.yaml
    # joined by hack/concat-yaml.sh.
    meta = yaml.safe_load((chart_dir / "Chart.template.yaml").read_text(encoding="utf-8"))
    meta["version"] = meta["appVersion"] = version
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    crd_dir = CHARTS / "_release-inputs" / f"cert-manager-{version}" / "deploy" / "crds"
    crds = [p.read_text(encoding="utf-8") for p in sorted(crd_dir.glob("crd-*.yaml"))]
    if not crds:
        raise FileNotFoundError(f"{crd_dir}: no cert-manager CRDs (release input of the chart)")
    (chart_dir / "templates" / "crds.yaml").write_text("\n---\n".join(crds), encoding="utf-8")


def _prepare_gateway_helm(chart_dir: Path, version: str) -> None:
    # tools/make/helm.mk helm-generate: envsubst < values.tmpl.yaml > values.yaml.
    text = (chart_dir / "values.tmpl.yaml").read_text(encoding="utf-8")
    text = text.replace("${GatewayImage}", f"docker.io/envoyproxy/gateway:{version}")
    text = text.replace("${GatewayImagePullPolicy}", "IfNotPresent")
    (chart_dir / "values.yaml").write_text(text, encoding="utf-8")
    _stamp(chart_dir, version)


def _prepare_knative_operator(chart_dir: Path, version: str) -> None:
    # hack/generate-helm.sh: sed placeholders, `{{ version }}` is the tag without `v`.
    for name, placeholder, value in (
        ("Chart.yaml", "{{ version }}", version.lstrip("v")),
        ("values.yaml", "{{ tag }}", version),
    ):
        path = chart_dir / name
        path.write_text(path.read_text(encoding="utf-8").replace(placeholder, value), encoding="utf-8")


def _prepare_istio(chart_dir: Path, version: str) -> None:
    # istio/release-builder stampChartForRelease: version, appVersion, hub and tag.
    _stamp(chart_dir, version)
    values = chart_dir / "values.yaml"
    text = values.read_text(encoding="utf-8")
    text = re.sub(r"hub: gcr\.io/istio-(testing|release)", "hub: docker.io/istio", text)
    text = re.sub(r"(?m)^(\s*)tag: latest\s*$", rf"\g<1>tag: {version}", text)
    values.write_text(text, encoding="utf-8")


def _prepare_gpu_operator(chart_dir: Path, version: str) -> None:
    # release-rc-assets.yaml: helm package --version <tag> --app-version <tag>.
    _stamp(chart_dir, version)


PREPARE: dict[str, Callable[[Path, str], None]] = {
    "cert-manager": _prepare_cert_manager,
    "gateway-helm": _prepare_gateway_helm,
    "knative-operator": _prepare_knative_operator,
    "base": _prepare_istio,
    "istiod": _prepare_istio,
    "gateway": _prepare_istio,
    "gpu-operator": _prepare_gpu_operator,
}
"""Release-time rewrites per chart (SOURCES.md, "What release tooling substitutes")."""


def _vendor_dependencies(chart_dir: Path) -> None:
    """Put the chart's remote dependencies into ``charts/``, as ``helm dependency build`` does."""
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text(encoding="utf-8"))
    for dep in meta.get("dependencies") or []:
        if not dep.get("repository") or (chart_dir / "charts" / dep["name"]).exists():
            continue
        candidates = sorted(
            (p for p in (CHARTS / dep["name"]).glob("*") if fnmatch.fnmatch(p.name, str(dep["version"]))),
            key=lambda p: tuple(int(x) if x.isdigit() else x for x in re.split(r"[.-]", p.name)),
        )
        if not candidates:
            raise FileNotFoundError(
                f"{chart_dir.name}: dependency {dep['name']} {dep['version']} has no reference data "
                f"under {CHARTS / dep['name']}"
            )
        shutil.copytree(candidates[-1], chart_dir / "charts" / dep["name"])


def prepare(chart: str, version: str, workdir: Path) -> Path:
    """A copy of the chart, in ``workdir``, as upstream publishes it; returns its path."""
    source = reference_path(chart, version)
    if not source.exists():
        raise FileNotFoundError(f"no reference data for chart {chart} {version} at {source}")
    if source.is_file():
        return source
    target = workdir / chart / version
    if target.exists():
        return target
    shutil.copytree(source, target)
    if chart in PREPARE:
        PREPARE[chart](target, version)
    _vendor_dependencies(target)
    return target


# -- rendering ------------------------------------------------------------------------------------


def split_manifests(text: str) -> list[Obj]:
    """The objects of one rendered template, split as Helm splits them."""
    docs = (yaml.load(d, Loader=yaml.CSafeLoader) for d in HELM_SEPARATOR.split(text) if d.strip())
    return [d for d in docs if isinstance(d, dict) and "kind" in d]


class _CrdLoader(yaml.CSafeLoader):
    """PyYAML's loader plus YAML 1.1's ``=`` value tag, which prometheus-operator's CRDs use."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Rendered:
    """One upstream release rendered by Helm with modelplane's values."""

    release: Chart
    objects: list[Obj]
    """Objects the templates render (hooks included), each with its namespace filled in."""
    crds: list[Obj]
    """CustomResourceDefinitions in the chart's (and subcharts') ``crds/`` directories."""
    defaults: dict[str, Any]
    """The chart's default values, coalesced with its subcharts' as Helm does."""
    schema: dict[str, Any] | None
    """The chart's ``values.schema.json``, if it has one."""
    subchart_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Schemas of subcharts, by the values key they are configured under."""
    referenced: frozenset[tuple[str, ...]] = frozenset()
    """Value paths the templates read literally (``.Values.a.b``), subcharts' under their key."""

    def workloads(self) -> Iterator[tuple[Obj, Obj]]:
        """Every object that runs pods, with its pod template spec (``(object, pod spec)``)."""
        for obj in self.objects:
            spec = pod_spec(obj)
            if spec is not None:
                yield obj, spec


def pod_spec(obj: Obj) -> Obj | None:
    """The pod spec an object runs (a Pod's spec or a controller's template), else None."""
    kind = obj["kind"]
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return dict(spec)
    if kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"):
        return dict(spec["template"].get("spec") or {})
    if kind == "CronJob":
        return dict(spec["jobTemplate"]["spec"]["template"].get("spec") or {})
    return None


def _native_render(chart_path: Path, values: dict[str, Any], options: dict[str, Any]) -> dict[str, str]:
    """Helm's render with a Kubernetes version (``Chart.render`` has no parameter for it).

    The native entry point is private API of helm-python-sdk; the dev extras pin 0.2.2, whose
    ``helm_render`` takes ``kube_version`` and validates the values against every
    ``values.schema.json`` of the chart and its subcharts before rendering.
    """

    # A fresh handle per render: render() mutates the loaded chart (a subchart disabled by its
    # condition is dropped from the handle for later renders).
    with helm.Chart.load(chart_path) as loaded:
        result: dict[str, str] = json.loads(
            _native.call_string("helm_render", loaded._raw(), json.dumps(values), json.dumps(options))
        )
    return result


VALUES_REFERENCE = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _referenced(chart_path: Path, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Value paths a chart's templates read literally, with its subcharts' under their key."""
    found: set[tuple[str, ...]] = set()
    for template in sorted((chart_path / "templates").rglob("*")):
        if template.is_file():
            for match in VALUES_REFERENCE.finditer(template.read_text(encoding="utf-8", errors="replace")):
                found.add((*prefix, *match.group(1).strip(".").split(".")))
    for sub in sorted((chart_path / "charts").glob("*")):
        if sub.is_dir():
            found |= _referenced(sub, (*prefix, sub.name))
    return found


def _chart_facts(
    chart_path: Path,
) -> tuple[dict[str, Any], dict[str, Any] | None, list[Obj], dict[str, Any], frozenset[tuple[str, ...]]]:

    with helm.Chart.load(chart_path) as loaded:
        defaults = loaded.merge_values(None)
        schema = loaded.schema
        crds = [
            d
            for entry in loaded.crds
            for d in yaml.load_all(entry["data"], Loader=_CrdLoader)
            if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
        ]
        subcharts: dict[str, Any] = {}
        for dep in loaded.metadata.get("dependencies") or []:
            sub = chart_path / "charts" / dep["name"] / "values.schema.json"
            if sub.is_file():
                subcharts[dep.get("alias") or dep["name"]] = json.loads(sub.read_text(encoding="utf-8"))
    referenced = frozenset(_referenced(chart_path)) if chart_path.is_dir() else frozenset()
    return defaults, schema, crds, subcharts, referenced


def kube_version(minor: str) -> str:
    """Helm's ``--kube-version`` for a stack's pinned ``major.minor``."""
    return f"v{minor}.0" if minor.count(".") == 1 else f"v{minor}"


def render(release: Chart, *, kubernetes: str, workdir: Path) -> Rendered:
    """Render one release's chart at its pinned version with exactly its values."""
    path = prepare(release.chart, release.version, workdir)
    manifests = _native_render(
        path,
        copy.deepcopy(release.values),
        {
            "name": release.release,
            "namespace": release.namespace,
            "kube_version": kube_version(kubernetes),
            "is_install": True,
        },
    )
    objects = [
        obj
        for template, text in sorted(manifests.items())
        if not template.endswith("NOTES.txt")
        for obj in split_manifests(text)
    ]
    defaults, schema, crds, subcharts, referenced = _chart_facts(path)
    template_crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if not meta.get("namespace") and namespaced(obj, crds + template_crds):
            meta["namespace"] = release.namespace
    return Rendered(release, objects, crds, defaults, schema, subcharts, referenced)


# -- object scope -----------------------------------------------------------------------------------


@cache
def _builtin_kinds() -> dict[str, bool]:
    """Lower-cased built-in kinds and whether each is namespaced, from the Kubernetes client's API.

    The client is generated from Kubernetes' OpenAPI, where a namespaced kind has a
    ``create_namespaced_<kind>`` operation and a cluster-scoped one a ``create_<kind>``. No
    built-in kind name is namespaced in one group and cluster-scoped in another.
    """

    result: dict[str, bool] = {}
    for name in dir(client):
        api = getattr(client, name)
        if not (name.endswith("Api") and isinstance(api, type)):
            continue
        for attr in dir(api):
            if not attr.startswith("create_") or attr.endswith("_with_http_info"):
                continue
            if attr.startswith("create_namespaced_"):
                result[attr.removeprefix("create_namespaced_").replace("_", "")] = True
            else:
                result.setdefault(attr.removeprefix("create_").replace("_", ""), False)
    return result


@cache
def shared_crds() -> tuple[Obj, ...]:
    """The upstream CRDs beside the project (``../shared/schemas/crds``), for kinds no chart ships."""
    directory = ROOT.parent / "shared" / "schemas" / "crds"
    return tuple(
        d
        for path in sorted(directory.rglob("*.yaml"))
        for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_CrdLoader)
        if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
    )


def namespaced(obj: Obj, crds: list[Obj] | tuple[Obj, ...]) -> bool | None:
    """Whether an object's kind is namespaced: custom kinds from their CRD, built-ins from Kubernetes' API.

    None for a custom kind whose CRD is in neither ``crds`` nor the shared schemas.
    """
    group = group_of(obj["apiVersion"])
    kind = obj["kind"]
    for crd in (*crds, *shared_crds()):
        spec = crd["spec"]
        if spec["group"] == group and spec["names"]["kind"] == kind:
            return bool(spec["scope"] == "Namespaced")
    return _builtin_kinds().get(kind.lower())


# -- values ---------------------------------------------------------------------------------------

FREE_FORM_VALUES: dict[str, str] = {
    "affinity": "a core/v1 Affinity, passed to the pod template as is",
    "securityContext": "a core/v1 PodSecurityContext or SecurityContext, passed to the pod template as is",
    "podSecurityContext": "a core/v1 PodSecurityContext, passed to the pod template as is",
    "seccompProfile": "a core/v1 SeccompProfile, passed to the pod template as is",
    "nodeSelector": "a map of node labels, passed to the pod template as is",
    "podAnnotations": "a map of annotations, passed to the pod template as is",
    "podLabels": "a map of labels, passed to the pod template as is",
    "storageSpec": "kube-prometheus-stack's prometheusSpec.storageSpec: a monitoring.coreos.com/v1 "
    "StorageSpec, passed to the Prometheus resource's spec.storage as is (templates/prometheus/prometheus.yaml)",
}
"""Chart values whose content is a Kubernetes object or a free map, not chart-defined keys.

A value path must name a key the chart defines down to one of these; below it, the keys are
the Kubernetes API's (checked when the rendered objects are validated), not the chart's.
Lists (``tolerations``, ``topologySpreadConstraints``) need no entry: a list is a leaf.
"""


def value_paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf path of a values tree (a list or a scalar is a leaf; so is an empty map)."""
    result: list[tuple[str, ...]] = []
    for key, value in values.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value and key not in FREE_FORM_VALUES:
            result += value_paths(value, path)
        else:
            result.append(path)
    return result


def _resolve(schema: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _schema_child(schema: dict[str, Any], node: Any, key: str) -> Any:
    node = _resolve(schema, node)
    if not isinstance(node, dict):
        return None
    for combinator in ("allOf", "anyOf", "oneOf"):
        for option in node.get(combinator) or []:
            child = _schema_child(schema, option, key)
            if child is not None:
                return child
    return (node.get("properties") or {}).get(key)


ISTIO_DEFAULTS = "_internal_defaults_do_not_set"
"""Where Istio's charts keep their defaults; users set the same keys at the root.

Istio's ``values.yaml`` (lines 1-2) says so, and ``templates/zzz_profile.yaml`` merges the
user's root values over this key's content before any template reads ``.Values``.
"""


def defined(path: tuple[str, ...], rendered: Rendered) -> bool:
    """Whether the chart defines a value path: a key of its default values, its schema, or one its
    templates read (``.Values.<path>``, or a path below it: a key absent from ``values.yaml``
    that a template uses, such as knative-operator's pod ``securityContext``).

    A path ends at a leaf or at a free-form value (``FREE_FORM_VALUES``). Subcharts' defaults
    are part of the chart's (Helm coalesces them under the subchart's key); so are their schemas.
    """
    if any(ref[: len(path)] == path for ref in rendered.referenced):
        return True
    defaults = dict(rendered.defaults)
    defaults |= defaults.pop(ISTIO_DEFAULTS, None) or {}
    node: Any = defaults
    for key in path:
        if not (isinstance(node, dict) and key in node):
            break
        node = node[key]
    else:
        return True
    schema, keys = rendered.schema, path
    if path[0] in rendered.subchart_schemas:
        schema, keys = rendered.subchart_schemas[path[0]], path[1:]
    if schema is None:
        return False
    current: Any = schema
    for key in keys:
        current = _schema_child(schema, current, key)
        if current is None:
            return False
    return True


def unknown_value_paths(rendered: Rendered) -> list[str]:
    """Value paths modelplane sets that the chart does not define, dotted."""
    return [".".join(p) for p in value_paths(rendered.release.values) if not defined(p, rendered)]


# -- schemas ----------------------------------------------------------------------------------------


def crd_schemas(base: CrdSchemas, crds: list[Obj]) -> CrdSchemas:
    """``base`` plus the served versions of more CRDs (a chart's own, which win)."""
    result = CrdSchemas(schemas=dict(base.schemas))
    for crd in crds:
        spec = crd["spec"]
        for version in spec.get("versions", []):
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema is not None and version.get("served", True):
                result.schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return result


def strict_schema_problems(objects: list[Obj], *, schemas: CrdSchemas, kubernetes: str) -> list[str]:
    """Every object against its CRD schema (when ``schemas`` has one) or, strictly, Kubernetes' own."""
    problems: list[str] = []
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in schemas.schemas:
            problems += schemas.validate(obj)
        else:
            problems += validate_builtin(obj, kubernetes)
    return problems

"""GitOps render: a stack's objects and upstream charts as files a GitOps engine applies.

Deterministic by construction: keys sorted, objects in kind order, one file per object
named after its identity, the same bytes for the same input. Upstream charts become Flux
``HelmRelease`` objects with their sources (or Argo CD ``Application`` objects with sync
waves), and the layout keeps upstream installs ahead of the objects that need their CRDs:

    deploy/<stack>/
      kustomization.yaml        what Flux (or ``kubectl apply -k``) points at: sync.yaml
      sync.yaml                 Flux Kustomizations: infrastructure, then platform
      infrastructure/           chart sources and releases (+ kustomization.yaml)
      platform/                 modelplane's own objects (+ kustomization.yaml)

With Argo CD there is no sync.yaml: every object carries an
``argocd.argoproj.io/sync-wave`` and the root kustomization lists both directories.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from components.errors import RenderError
from components.kube import CLUSTER_SCOPED, Obj, key_of, labels, sorted_objects
from components.upstream import Chart, KustomizeRelease

GitOpsEngine = Literal["flux", "argocd"]

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

PLATFORM_WAVE = 10
"""Argo CD sync wave of modelplane's own objects: after every upstream chart."""


def to_yaml(obj: Any) -> str:
    """One object as YAML: sorted keys, block style, no line folding."""
    text: str = yaml.dump(
        obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 20
    )
    return text


def to_yaml_stream(objects: list[Obj]) -> str:
    """Objects as one multi-document YAML stream."""
    return "".join(f"---\n{to_yaml(obj)}" for obj in objects)


def flux_objects(charts: Sequence[Chart | KustomizeRelease], *, stack: str) -> list[Obj]:
    """Flux sources and ``HelmRelease`` objects for upstream charts, with their dependencies."""
    result: list[Obj] = []
    sources: dict[str, Obj] = {}
    for chart in charts:
        if isinstance(chart, KustomizeRelease):
            result += flux_kustomize_objects(chart, stack=stack)
            continue
        common = labels(stack, "upstream")
        source_name = chart.repository_name
        oci = chart.repository.startswith("oci://")
        if source_name not in sources:
            spec: dict[str, Any] = {"interval": "1h", "url": chart.repository}
            if oci:
                spec["type"] = "oci"
            sources[source_name] = {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmRepository",
                "metadata": {"name": source_name, "namespace": "flux-system", "labels": common},
                "spec": spec,
            }
        release: dict[str, Any] = {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": chart.release, "namespace": "flux-system", "labels": common},
            "spec": {
                "interval": "30m",
                "releaseName": chart.release,
                "targetNamespace": chart.namespace,
                "storageNamespace": chart.namespace,
                "chart": {
                    "spec": {
                        "chart": chart.chart,
                        "version": chart.version,
                        "sourceRef": {
                            "kind": "HelmRepository",
                            "name": source_name,
                            "namespace": "flux-system",
                        },
                    }
                },
                "install": {"crds": "CreateReplace", "createNamespace": True, "remediation": {"retries": 3}},
                "upgrade": {"crds": "CreateReplace", "remediation": {"retries": 3}},
                "values": chart.values,
            },
        }
        if chart.depends_on:
            release["spec"]["dependsOn"] = [{"name": d, "namespace": "flux-system"} for d in chart.depends_on]
        if not chart.values:
            del release["spec"]["values"]
        result.append(release)
    return [*sources.values(), *result]


def argocd_objects(charts: Sequence[Chart | KustomizeRelease], *, stack: str) -> list[Obj]:
    """Argo CD ``Application`` objects for upstream charts, ordered by sync waves."""
    result: list[Obj] = []
    for chart in charts:
        if isinstance(chart, KustomizeRelease):
            result += argocd_kustomize_objects(chart, stack=stack)
            continue
        repo = chart.repository.removeprefix("oci://")
        source: dict[str, Any] = {"repoURL": repo, "chart": chart.chart, "targetRevision": chart.version}
        if chart.values:
            source["helm"] = {"releaseName": chart.release, "valuesObject": chart.values}
        else:
            source["helm"] = {"releaseName": chart.release}
        result.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {
                    "name": f"{stack}-{chart.release}",
                    "namespace": "argocd",
                    "labels": labels(stack, "upstream"),
                    "annotations": {"argocd.argoproj.io/sync-wave": str(chart.wave)},
                },
                "spec": {
                    "project": "default",
                    "source": source,
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": chart.namespace},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                        "retry": {"limit": 5},
                    },
                },
            }
        )
    return result


def _release_namespace(release: KustomizeRelease, stack: str) -> Obj:
    """The namespace of a kustomize release: its directories do not create it."""
    ns_labels = labels(stack, "upstream") | dict(release.namespace_labels)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": release.namespace, "labels": dict(sorted(ns_labels.items()))},
    }


def flux_kustomize_objects(release: KustomizeRelease, *, stack: str) -> list[Obj]:
    """A Flux ``GitRepository`` at the release tag and one ``Kustomization`` per path, in order."""
    common = labels(stack, "upstream")
    source = f"{release.release}-source"
    result: list[Obj] = [
        _release_namespace(release, stack),
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": source, "namespace": "flux-system", "labels": common},
            "spec": {
                "interval": "1h",
                "url": release.repository,
                "ref": {"tag": release.ref},
                "ignore": "/*\n" + "".join(f"!/{p.strip('/')}/\n" for p in _roots(release.paths)),
            },
        },
    ]
    previous: str | None = None
    for path in release.paths:
        spec: dict[str, Any] = {
            "interval": "30m",
            "retryInterval": "1m",
            "timeout": "10m",
            "path": f"./{path.strip('/')}",
            "prune": True,
            "wait": True,
            "targetNamespace": release.namespace,
            "sourceRef": {"kind": "GitRepository", "name": source},
        }
        if release.patches:
            spec["patches"] = [{"target": dict(p.target), "patch": p.patch} for p in release.patches]
        if previous is not None:
            spec["dependsOn"] = [{"name": previous}]
        result.append(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": release.path_name(path), "namespace": "flux-system", "labels": common},
                "spec": spec,
            }
        )
        previous = release.path_name(path)
    return result


def _roots(paths: tuple[str, ...]) -> list[str]:
    """Top-level directories of the paths (the only part of the repository Flux fetches)."""
    return sorted({p.strip("/").split("/", 1)[0] for p in paths})


def argocd_kustomize_objects(release: KustomizeRelease, *, stack: str) -> list[Obj]:
    """One Argo CD ``Application`` per path of a kustomize release, at the release's sync wave."""
    result: list[Obj] = []
    for offset, path in enumerate(release.paths):
        kustomize: dict[str, Any] = {"namespace": release.namespace}
        if release.patches:
            kustomize["patches"] = [{"target": dict(p.target), "patch": p.patch} for p in release.patches]
        result.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {
                    "name": f"{stack}-{release.path_name(path)}",
                    "namespace": "argocd",
                    "labels": labels(stack, "upstream"),
                    "annotations": {"argocd.argoproj.io/sync-wave": str(release.wave + offset)},
                },
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": release.repository,
                        "targetRevision": release.ref,
                        "path": path.strip("/"),
                        "kustomize": kustomize,
                    },
                    "destination": {
                        "server": "https://kubernetes.default.svc",
                        "namespace": release.namespace,
                    },
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                        "managedNamespaceMetadata": {
                            "labels": dict(sorted(release.namespace_labels.items()))
                        },
                        "retry": {"limit": 5},
                    },
                },
            }
        )
    return result


def flux_sync(stack: str, path_prefix: str) -> list[Obj]:
    """Flux Kustomizations that apply infrastructure first, then the platform once it is ready."""
    common = labels(stack, "gitops")
    base: dict[str, Any] = {
        "interval": "10m",
        "retryInterval": "1m",
        "timeout": "15m",
        "prune": True,
        "wait": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }
    infra = f"{stack}-infrastructure"
    return [
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": infra, "namespace": "flux-system", "labels": common},
            "spec": base | {"path": f"{path_prefix}/infrastructure"},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": f"{stack}-platform", "namespace": "flux-system", "labels": common},
            "spec": base | {"path": f"{path_prefix}/platform", "dependsOn": [{"name": infra}]},
        },
    ]


def with_wave(obj: Obj, wave: int) -> Obj:
    """A copy of an object carrying an Argo CD sync wave."""
    meta = dict(obj["metadata"])
    meta["annotations"] = dict(
        sorted((meta.get("annotations", {}) | {"argocd.argoproj.io/sync-wave": str(wave)}).items())
    )
    return obj | {"metadata": meta}


def file_name(obj: Obj) -> str:
    """The file an object is written to: ``<namespace|cluster>--<kind>--<name>.yaml``."""
    key = key_of(obj)
    scope = key.namespace or ("cluster" if key.kind in CLUSTER_SCOPED else "default")
    return f"{scope}--{key.kind.lower()}--{key.name}.yaml"


def gitops_tree(
    objects: list[Obj],
    charts: list[Chart],
    *,
    stack: str,
    engine: GitOpsEngine = "flux",
    path_prefix: str | None = None,
) -> dict[str, str]:
    """Relative path → file content for the whole GitOps directory of a stack."""
    prefix = path_prefix or f"./deploy/{stack}"
    if engine == "flux":
        infra = sorted_objects(flux_objects(charts, stack=stack))
        platform = sorted_objects(objects)
    else:
        infra = sorted_objects(argocd_objects(charts, stack=stack))
        platform = sorted_objects([with_wave(o, PLATFORM_WAVE) for o in objects])
    files: dict[str, str] = {}
    for directory, group in (("infrastructure", infra), ("platform", platform)):
        names: list[str] = []
        for obj in group:
            name = file_name(obj)
            if name in names:
                raise RenderError(f"two objects render to {directory}/{name}: {key_of(obj)}")
            names.append(name)
            files[f"{directory}/{name}"] = to_yaml(obj)
        files[f"{directory}/kustomization.yaml"] = to_yaml(
            {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": names}
        )
    if engine == "flux":
        files["sync.yaml"] = to_yaml_stream(flux_sync(stack, prefix))
        root = ["sync.yaml"]
    else:
        root = ["infrastructure", "platform"]
    files["kustomization.yaml"] = to_yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": root}
    )
    return dict(sorted(files.items()))


def stream_objects(
    objects: list[Obj], charts: list[Chart], *, stack: str, engine: GitOpsEngine = "flux"
) -> list[Obj]:
    """Every object of the GitOps output as one sorted list (for ``render -o -``)."""
    if engine == "flux":
        extra = flux_objects(charts, stack=stack) + flux_sync(stack, f"./deploy/{stack}")
        return sorted_objects(extra + objects)
    return sorted_objects(
        argocd_objects(charts, stack=stack) + [with_wave(o, PLATFORM_WAVE) for o in objects]
    )


def write_tree(files: dict[str, str], out_dir: Path) -> None:
    """Replace ``out_dir`` with exactly these files, atomically: a failure leaves the old tree intact."""
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as err:
        raise RenderError(f"{out_dir}: cannot write: {err.strerror}") from err
    try:
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        old = None
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
        staging.rename(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RenderError(f"{out_dir}: cannot write: {err.strerror}") from err

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

When an upstream release carries objects of its own (the ``KnativeServing`` the Knative
operator reconciles), two more stages sit between infrastructure and platform, because a
Flux ``HelmRelease`` can wait for another release but not for a custom resource:

      configuration/            objects of upstream releases (waited for until Ready)
      controllers/              releases that need them (the KServe controller)

Releases that install CRDs are never pruned by the GitOps engine (Flux prune disabled,
Argo CD ``Prune=false`` and no cascading finalizer), so deleting a stack's manifests never
deletes every custom resource with its CRD.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from modelplane import yamlout
from modelplane.errors import RenderError
from modelplane.kube import CLUSTER_SCOPED, Obj, key_of, labels, sorted_objects
from modelplane.upstream import KustomizeRelease, Release

GitOpsEngine = Literal["flux", "argocd"]


PLATFORM_WAVE = 10
"""Argo CD sync wave of modelplane's own objects: after every upstream release and its objects."""

FLUX_PRUNE = "kustomize.toolkit.fluxcd.io/prune"
ARGOCD_WAVE = "argocd.argoproj.io/sync-wave"
ARGOCD_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


def to_yaml(obj: Any) -> str:
    """One object as YAML: sorted keys, block style, no line folding (``modelplane.yamlout``)."""
    return yamlout.dump(obj)


def to_yaml_stream(objects: list[Obj]) -> str:
    """Objects as one multi-document YAML stream."""
    return "".join(f"---\n{to_yaml(obj)}" for obj in objects)


def write_yaml_stream(
    objects: list[Obj], stream: TextIO, *, on_object: Callable[[int], None] | None = None
) -> None:
    """Write ``to_yaml_stream(objects)`` to ``stream`` object by object, never holding the whole text.

    ``on_object`` is told how many objects are written, every ``PROGRESS_EVERY`` objects.
    """
    write = stream.write
    for done, obj in enumerate(objects, 1):
        write("---\n")
        write(to_yaml(obj))
        if on_object is not None and done % PROGRESS_EVERY == 0:
            on_object(done)


PROGRESS_EVERY = 1000
"""Objects or files written between two progress reports."""


def flux_objects(charts: Sequence[Release], *, stack: str) -> list[Obj]:
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
        if chart.crds:
            release["metadata"]["annotations"] = {FLUX_PRUNE: "disabled"}
        if chart.depends_on:
            release["spec"]["dependsOn"] = [{"name": d, "namespace": "flux-system"} for d in chart.depends_on]
        if not chart.values:
            del release["spec"]["values"]
        result.append(release)
    return [*sources.values(), *result]


def argocd_objects(charts: Sequence[Release], *, stack: str) -> list[Obj]:
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
        application: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": f"{stack}-{chart.release}",
                "namespace": "argocd",
                "labels": labels(stack, "upstream"),
                "annotations": {ARGOCD_WAVE: str(chart.wave)},
            },
            "spec": {
                "project": "default",
                "source": source,
                "destination": {"server": "https://kubernetes.default.svc", "namespace": chart.namespace},
                "syncPolicy": {
                    "automated": {"prune": True, "selfHeal": True},
                    # Server-side apply: the InferenceService CRD (~638 KB) is too large for the
                    # last-applied annotation of client-side apply.
                    "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                    "retry": {"limit": 5},
                },
            },
        }
        if chart.crds:
            # Neither the Application nor its CRDs are pruned: no cascading finalizer, no prune.
            application["metadata"]["annotations"][ARGOCD_SYNC_OPTIONS] = "Prune=false,Delete=false"
            application["spec"]["syncPolicy"]["automated"]["prune"] = False
        result.append(application)
    return result


def staged_charts(charts: Sequence[Release]) -> tuple[list[Release], list[Obj], list[Release]]:
    """Split upstream charts into (early charts, objects of charts, charts that need those objects).

    A chart that depends, directly or through other charts, on a chart carrying objects must
    wait for those objects; everything else installs in the first stage.
    """
    by_name = {c.release: c for c in charts}
    late: set[str] = set()

    def needs_objects(name: str, seen: frozenset[str] = frozenset()) -> bool:
        chart = by_name[name]
        for dep in chart.depends_on:
            if (
                dep in by_name
                and dep not in seen
                and (by_name[dep].objects or needs_objects(dep, seen | {name}))
            ):
                return True
        return False

    for chart in charts:
        if needs_objects(chart.release):
            late.add(chart.release)
    early = [c for c in charts if c.release not in late]
    objects = [obj for c in charts for obj in c.objects]
    return early, objects, [c for c in charts if c.release in late]


def chart_objects(charts: Sequence[Release]) -> list[Obj]:
    """Every object carried by upstream charts, each with the sync wave after its chart's."""
    return [with_wave(obj, chart.wave + 1) for chart in charts for obj in chart.objects]


def flux_kustomize_objects(release: KustomizeRelease, *, stack: str) -> list[Obj]:
    """A Flux ``GitRepository`` at the release tag and one ``Kustomization`` per path, in order."""
    common = labels(stack, "upstream")
    source = f"{release.release}-source"
    result: list[Obj] = [
        release.namespace_object,
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
                    "annotations": {ARGOCD_WAVE: str(release.wave + offset)},
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
                            "labels": release.namespace_object["metadata"]["labels"]
                        },
                        "retry": {"limit": 5},
                    },
                },
            }
        )
    return result


def flux_sync(stack: str, path_prefix: str, *, staged: bool = False) -> list[Obj]:
    """Flux Kustomizations that apply infrastructure first, then the platform once it is ready.

    ``staged`` inserts the configuration and controllers stages between them (see the module
    docstring); each stage waits for the one before it to be ready.
    """
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
    stages = (
        ["infrastructure", "configuration", "controllers", "platform"]
        if staged
        else ["infrastructure", "platform"]
    )
    result: list[Obj] = []
    for i, stage in enumerate(stages):
        spec = base | {"path": f"{path_prefix}/{stage}"}
        if i:
            spec["dependsOn"] = [{"name": f"{stack}-{stages[i - 1]}"}]
        result.append(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {
                    "name": f"{stack}-{stage}" if i else infra,
                    "namespace": "flux-system",
                    "labels": common,
                },
                "spec": spec,
            }
        )
    return result


def with_wave(obj: Obj, wave: int) -> Obj:
    """A copy of an object carrying an Argo CD sync wave."""
    meta = dict(obj["metadata"])
    meta["annotations"] = dict(sorted((meta.get("annotations", {}) | {ARGOCD_WAVE: str(wave)}).items()))
    return obj | {"metadata": meta}


def file_name(obj: Obj) -> str:
    """The file an object is written to: ``<namespace|cluster>--<kind>--<name>.yaml``."""
    key = key_of(obj)
    scope = key.namespace or ("cluster" if key.kind in CLUSTER_SCOPED else "default")
    return f"{scope}--{key.kind.lower()}--{key.name}.yaml"


def gitops_tree(
    objects: list[Obj],
    charts: Sequence[Release],
    *,
    stack: str,
    engine: GitOpsEngine = "flux",
    path_prefix: str | None = None,
) -> dict[str, str]:
    """Relative path → file content for the whole GitOps directory of a stack."""
    prefix = path_prefix or f"./deploy/{stack}"
    early, staged, late = staged_charts(charts)
    groups: list[tuple[str, list[Obj]]]
    if engine == "flux":
        groups = [("infrastructure", _flux_sources(charts, stack) + _flux_releases(early, stack))]
        if staged:
            groups += [("configuration", list(staged)), ("controllers", _flux_releases(late, stack))]
        groups.append(("platform", list(objects)))
    else:
        upstream = argocd_objects(charts, stack=stack)
        carried = chart_objects(charts)
        _check_waves(upstream + carried)
        groups = [("infrastructure", upstream)]
        if carried:
            groups.append(("configuration", carried))
        groups.append(("platform", [with_wave(o, PLATFORM_WAVE) for o in objects]))
    files: dict[str, str] = {}
    for directory, unsorted in groups:
        group = sorted_objects(unsorted)
        names: dict[str, None] = {}
        for obj in group:
            name = file_name(obj)
            if name in names:
                raise RenderError(f"two objects render to {directory}/{name}: {key_of(obj)}")
            names[name] = None
            files[f"{directory}/{name}"] = to_yaml(obj)
        files[f"{directory}/kustomization.yaml"] = to_yaml(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": list(names),
            }
        )
    if engine == "flux":
        files["sync.yaml"] = to_yaml_stream(flux_sync(stack, prefix, staged=bool(staged)))
        root = ["sync.yaml"]
    else:
        root = [directory for directory, _ in groups]
    files["kustomization.yaml"] = to_yaml(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": root}
    )
    return dict(sorted(files.items()))


def stream_objects(
    objects: list[Obj], charts: Sequence[Release], *, stack: str, engine: GitOpsEngine = "flux"
) -> list[Obj]:
    """Every object of the GitOps output as one sorted list (for ``render -o -``)."""
    _, staged, _ = staged_charts(charts)
    if engine == "flux":
        extra = flux_objects(charts, stack=stack) + flux_sync(stack, f"./deploy/{stack}", staged=bool(staged))
        return sorted_objects(extra + staged + objects)
    upstream = argocd_objects(charts, stack=stack) + chart_objects(charts)
    _check_waves(upstream)
    return sorted_objects(upstream + [with_wave(o, PLATFORM_WAVE) for o in objects])


def _check_waves(upstream: list[Obj]) -> None:
    """Refuse upstream objects whose Argo CD sync wave is not before the platform's.

    Argo CD applies one wave after another, so an upstream release (or an object it carries)
    at ``PLATFORM_WAVE`` or later would be applied with, or after, the objects that need it.
    """
    late = sorted(
        f"{o['kind']} {o['metadata']['name']} (wave {o['metadata']['annotations'][ARGOCD_WAVE]})"
        for o in upstream
        if int(o["metadata"]["annotations"][ARGOCD_WAVE]) >= PLATFORM_WAVE
    )
    if late:
        raise RenderError(
            f"upstream sync waves must be below the platform wave {PLATFORM_WAVE}: {', '.join(late)}"
        )


FLUX_SOURCE_KINDS = frozenset({"HelmRepository", "GitRepository"})
"""Flux sources: shared by every release, so always in the first stage."""


def _flux_sources(charts: Sequence[Release], stack: str) -> list[Obj]:
    return [o for o in flux_objects(charts, stack=stack) if o["kind"] in FLUX_SOURCE_KINDS]


def _flux_releases(charts: Sequence[Release], stack: str) -> list[Obj]:
    """The releases themselves: ``HelmRelease``, and a kustomize release's Namespace and ``Kustomization``s."""
    return [o for o in flux_objects(charts, stack=stack) if o["kind"] not in FLUX_SOURCE_KINDS]


ROOT_ENTRIES: frozenset[str] = frozenset(
    {"kustomization.yaml", "sync.yaml", "infrastructure", "configuration", "controllers", "platform"}
)
"""What the root of a rendered directory holds; ``write_tree`` replaces only such a directory."""


def write_tree(files: dict[str, str], out_dir: Path, *, on_file: Callable[[int], None] | None = None) -> None:
    """Replace ``out_dir`` with exactly these files, atomically: a failure leaves the old tree intact.

    ``on_file`` is told how many files are written, every ``PROGRESS_EVERY`` files.

    The new tree is written beside the old one and swapped in with two renames; if the
    second rename fails, the old tree is put back. A directory that holds anything but a
    previous render is refused rather than replaced, so a mistyped ``-o`` (``.``, ``~``)
    cannot delete a project.
    """
    out_dir = out_dir.resolve()
    parent = out_dir.parent
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir() or out_dir.is_symlink():
            raise RenderError(f"{out_dir}: exists and is not a directory; choose another output")
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in ROOT_ENTRIES)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RenderError(
                f"{out_dir}: not a modelplane render (it holds {shown}); choose an empty or new directory"
            )
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=parent))
    except OSError as err:
        raise RenderError(f"{out_dir}: cannot write: {err.strerror}") from err
    old = staging.with_name(f"{staging.name}.old")
    try:
        made: set[str] = set()
        for done, (rel, content) in enumerate(files.items(), 1):
            directory, _, _ = rel.rpartition("/")
            if directory not in made:
                (staging / directory).mkdir(parents=True, exist_ok=True)
                made.add(directory)
            with open(staging / rel, "wb") as stream:
                stream.write(content.encode("utf-8"))
            if on_file is not None and done % PROGRESS_EVERY == 0:
                on_file(done)
        if out_dir.exists():
            out_dir.rename(old)
        try:
            staging.rename(out_dir)
        except OSError:
            if old.exists():
                old.rename(out_dir)
            raise
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise RenderError(f"{out_dir}: cannot write: {err.strerror or err}") from err
    shutil.rmtree(old, ignore_errors=True)


def detect_engine(out_dir: Path) -> GitOpsEngine | None:
    """The GitOps engine an existing render in ``out_dir`` was written for, or None when there is none.

    A Flux render has ``sync.yaml`` at its root; an Argo CD render has a root
    ``kustomization.yaml`` and no ``sync.yaml``. Re-rendering keeps the engine, so a command that
    refreshes a tree (``render --check``, ``rollout ... --render``) never switches it silently.
    """
    if (out_dir / "sync.yaml").is_file():
        return "flux"
    if (out_dir / "kustomization.yaml").is_file():
        return "argocd"
    return None


StaleKind = Literal["differs", "missing", "not rendered"]


def stale_files(files: dict[str, str], out_dir: Path) -> list[tuple[str, StaleKind]]:
    """Where ``out_dir`` differs from the files a render would write, sorted by path.

    ``differs``: the file's content is not what renders; ``missing``: it renders but is not
    there; ``not rendered``: it is there but nothing renders it (a render would delete it).
    """
    stale: list[tuple[str, StaleKind]] = []
    present: set[str] = set()
    if out_dir.is_dir():
        for path in out_dir.rglob("*"):
            if path.is_file() or path.is_symlink():
                present.add(path.relative_to(out_dir).as_posix())
    for rel in sorted(present | set(files)):
        if rel not in files:
            stale.append((rel, "not rendered"))
        elif rel not in present:
            stale.append((rel, "missing"))
        else:
            try:
                same = (out_dir / rel).read_bytes() == files[rel].encode("utf-8")
            except OSError:
                same = False
            if not same:
                stale.append((rel, "differs"))
    return stale

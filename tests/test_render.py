"""The GitOps render: deterministic files, Flux and Argo CD layouts, atomic writes, no secrets, Pod Security.

What a pull request commits under ``deploy/<stack>/`` is what Flux or Argo CD applies, so
the tree must be byte-stable, complete (every object one file, every file listed by a
kustomization), ordered (upstream installs before the objects that need their CRDs), valid
against the upstream CRD schemas, free of secret values, and every pod modelplane authors
must pass Pod Security "restricted".
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.build import PlatformObjects, build
from modelplane.errors import RenderError
from modelplane.kube import KIND_ORDER, Obj, key_of
from modelplane.render import (
    PLATFORM_WAVE,
    GitOpsEngine,
    file_name,
    gitops_tree,
    stream_objects,
    to_yaml_stream,
    write_tree,
)
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.upstream import Chart, KustomizeRelease, Release
from modelplane.validation import CrdSchemas
from tests import pss
from tests.conftest import EXAMPLE_STACKS, example_stack_ids, schema_problems

ENGINES: list[GitOpsEngine] = ["flux", "argocd"]
WAVE = "argocd.argoproj.io/sync-wave"


@pytest.fixture(params=EXAMPLE_STACKS, ids=example_stack_ids())
def stack_path(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture
def stack(stack_path: Path) -> ServingPlatformArgs:
    return load_stack(stack_path)


@pytest.fixture
def rendered(stack: ServingPlatformArgs) -> PlatformObjects:
    return build(stack)


def _tree(stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine) -> dict[str, str]:
    return gitops_tree(rendered.objects, rendered.charts, stack=stack.stack.name, engine=engine)


def _fresh_tree(path: Path, engine: GitOpsEngine) -> dict[str, str]:
    """A tree from a stack loaded and built anew, so nothing is shared between two renders."""
    stack = load_stack(path)
    return _tree(stack, build(stack), engine)


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _documents(files: dict[str, str]) -> dict[str, list[Obj]]:
    """Every Kubernetes document per file (kustomize's own kustomization.yaml files left out)."""
    return {
        rel: [d for d in yaml.safe_load_all(content) if d]
        for rel, content in files.items()
        if not rel.endswith("kustomization.yaml")
    }


def _all_documents(files: dict[str, str]) -> list[Obj]:
    return [d for docs in _documents(files).values() for d in docs]


# -- determinism -----------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_rendering_twice_writes_byte_identical_trees(
    stack_path: Path, engine: GitOpsEngine, tmp_path: Path
) -> None:
    write_tree(_fresh_tree(stack_path, engine), tmp_path / "first")
    write_tree(_fresh_tree(stack_path, engine), tmp_path / "second")
    first, second = _read_tree(tmp_path / "first"), _read_tree(tmp_path / "second")
    assert first
    assert first == second


@pytest.mark.parametrize("engine", ENGINES)
def test_the_stream_is_identical_across_runs(stack_path: Path, engine: GitOpsEngine) -> None:
    def stream() -> str:
        stack = load_stack(stack_path)
        result = build(stack)
        return to_yaml_stream(
            stream_objects(result.objects, result.charts, stack=stack.stack.name, engine=engine)
        )

    assert stream() == stream()


@pytest.mark.parametrize("engine", ENGINES)
def test_the_stream_is_sorted_by_kind_order_namespace_and_name(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine
) -> None:
    text = to_yaml_stream(
        stream_objects(rendered.objects, rendered.charts, stack=stack.stack.name, engine=engine)
    )
    keys = [key_of(d) for d in yaml.safe_load_all(text)]
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    order = [(rank.get(k.kind, len(KIND_ORDER)), k.namespace, k.name) for k in keys]
    assert len(keys) > len(rendered.objects)
    assert order == sorted(order)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_stream_holds_exactly_the_objects_of_the_tree(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine
) -> None:
    text = to_yaml_stream(
        stream_objects(rendered.objects, rendered.charts, stack=stack.stack.name, engine=engine)
    )
    streamed = sorted(map(str, map(key_of, yaml.safe_load_all(text))))
    assert streamed == sorted(str(key_of(d)) for d in _all_documents(_tree(stack, rendered, engine)))


# -- layout ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_every_object_is_one_file_named_after_it(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine
) -> None:
    documents = _documents(_tree(stack, rendered, engine))
    for obj in rendered.objects:
        written = documents.pop(f"platform/{file_name(obj)}")
        assert len(written) == 1
        expected = obj
        if engine == "argocd":
            annotations = obj["metadata"].get("annotations", {}) | {WAVE: str(PLATFORM_WAVE)}
            expected = obj | {"metadata": obj["metadata"] | {"annotations": annotations}}
        assert written[0] == expected
    # Everything else is upstream: chart releases and their sources, objects carried by charts
    # (KnativeServing), and the KServe controller that must wait for them.
    assert all(
        rel.startswith(("infrastructure/", "configuration/", "controllers/")) or rel == "sync.yaml"
        for rel in documents
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_kustomizations_list_exactly_the_files_beside_them(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine
) -> None:
    files = _tree(stack, rendered, engine)
    directories = {rel.rpartition("/")[0] for rel in files}
    for directory in directories:
        prefix = f"{directory}/" if directory else ""
        kustomization = yaml.safe_load(files[f"{prefix}kustomization.yaml"])
        beside = {
            rel[len(prefix) :].split("/")[0]
            for rel in files
            if rel.startswith(prefix) and rel != f"{prefix}kustomization.yaml"
        }
        if not directory and engine == "flux":
            # Flux applies the two directories through sync.yaml, each when its turn comes.
            beside = {"sync.yaml"}
        assert kustomization["kind"] == "Kustomization"
        assert sorted(kustomization["resources"]) == sorted(beside), directory or "<root>"
        assert len(kustomization["resources"]) == len(set(kustomization["resources"]))


def test_flux_sync_applies_the_platform_after_the_infrastructure(
    stack: ServingPlatformArgs, rendered: PlatformObjects
) -> None:
    files = _tree(stack, rendered, "flux")
    stages = list(yaml.safe_load_all(files["sync.yaml"]))
    name = stack.stack.name
    expected = ["infrastructure", "platform"]
    if any(chart.objects for chart in rendered.charts):
        expected = ["infrastructure", "configuration", "controllers", "platform"]
    assert [k["kind"] for k in stages] == ["Kustomization"] * len(expected)
    assert [k["spec"]["path"] for k in stages] == [f"./deploy/{name}/{stage}" for stage in expected]
    assert "dependsOn" not in stages[0]["spec"]
    for before, after in itertools.pairwise(stages):
        assert after["spec"]["dependsOn"] == [{"name": before["metadata"]["name"]}]
    assert all(k["spec"]["wait"] is True for k in stages)


def test_flux_has_a_helm_release_per_chart_with_its_source(
    stack: ServingPlatformArgs, rendered: PlatformObjects
) -> None:
    documents = _all_documents(_tree(stack, rendered, "flux"))
    releases = {d["metadata"]["name"]: d for d in documents if d["kind"] == "HelmRelease"}
    sources = {d["metadata"]["name"]: d for d in documents if d["kind"] == "HelmRepository"}
    charts = [c for c in rendered.charts if isinstance(c, Chart)]
    assert charts
    assert sorted(releases) == sorted(c.release for c in charts)
    for chart in charts:
        spec = releases[chart.release]["spec"]
        chart_spec = spec["chart"]["spec"]
        source = sources[chart_spec["sourceRef"]["name"]]
        assert (chart_spec["chart"], chart_spec["version"]) == (chart.chart, chart.version)
        assert (spec["releaseName"], spec["targetNamespace"]) == (chart.release, chart.namespace)
        assert source["spec"]["url"] == chart.repository
        assert source["spec"].get("type") == ("oci" if chart.repository.startswith("oci://") else None)
        assert [d["name"] for d in spec.get("dependsOn", [])] == list(chart.depends_on)


def _kustomize_releases(rendered: PlatformObjects) -> list[KustomizeRelease]:
    return [c for c in rendered.charts if isinstance(c, KustomizeRelease)]


def test_the_prod_stack_installs_a_kustomize_release() -> None:
    rendered = build(load_stack(EXAMPLE_STACKS[[p.stem for p in EXAMPLE_STACKS].index("prod")]))
    assert [c.release for c in _kustomize_releases(rendered)] == ["modelmesh"]


def test_flux_installs_each_kustomize_release_path_by_path_from_its_tag(
    stack: ServingPlatformArgs, rendered: PlatformObjects
) -> None:
    files = _tree(stack, rendered, "flux")
    stages = {d["metadata"]["name"] for d in yaml.safe_load_all(files["sync.yaml"])}
    documents = {
        (d["kind"], d["metadata"]["name"]): (rel.split("/")[0], d)
        for rel, docs in _documents(files).items()
        if rel != "sync.yaml"
        for d in docs
    }
    kustomizations = {name for kind, name in documents if kind == "Kustomization"}
    releases = _kustomize_releases(rendered)
    assert kustomizations == {r.path_name(p) for r in releases for p in r.paths}
    assert not stages & kustomizations
    for release in releases:
        stage, namespace = documents[("Namespace", release.namespace)]
        assert namespace == release.namespace_object
        _, source = documents[("GitRepository", f"{release.release}-source")]
        assert (source["spec"]["url"], source["spec"]["ref"]) == (release.repository, {"tag": release.ref})
        previous = None
        for path in release.paths:
            path_stage, kustomization = documents[("Kustomization", release.path_name(path))]
            spec = kustomization["spec"]
            assert path_stage == stage
            assert (spec["path"], spec["targetNamespace"]) == (f"./{path}", release.namespace)
            assert spec["sourceRef"] == {"kind": "GitRepository", "name": f"{release.release}-source"}
            assert spec["patches"] == [{"target": p.target, "patch": p.patch} for p in release.patches]
            assert spec.get("dependsOn") == (None if previous is None else [{"name": previous}])
            previous = release.path_name(path)
        assert ("HelmRelease", release.release) not in documents
        # A kustomize release installs with the releases it depends on, never with the platform.
        assert stage in ("infrastructure", "controllers")


def test_the_example_stacks_install_from_an_oci_repository(rendered: PlatformObjects) -> None:
    assert any(c.repository.startswith("oci://") for c in rendered.charts)


def test_flux_installs_a_kustomize_release_that_needs_carried_objects_with_the_controllers() -> None:
    stack = load_stack(EXAMPLE_STACKS[[p.stem for p in EXAMPLE_STACKS].index("dev")])
    rendered = build(stack)
    late = KustomizeRelease(
        release="addon",
        namespace="addon-system",
        repository="https://example.com/org/addon",
        ref="v1.0.0",
        paths=("config/default",),
        depends_on=("knative-operator",),
        wave=2,
    )
    files = gitops_tree(rendered.objects, [*rendered.charts, late], stack="dev", engine="flux")
    assert sorted(rel for rel in files if "addon" in rel) == [
        "controllers/cluster--namespace--addon-system.yaml",
        "controllers/flux-system--kustomization--addon-default.yaml",
        "infrastructure/flux-system--gitrepository--addon-source.yaml",
    ]


def _applications(stack: ServingPlatformArgs, release: Release) -> list[tuple[str, int]]:
    """Argo CD Applications a release becomes, with their waves: one per chart, one per kustomize path."""
    if isinstance(release, KustomizeRelease):
        return [
            (f"{stack.stack.name}-{release.path_name(path)}", release.wave + i)
            for i, path in enumerate(release.paths)
        ]
    return [(f"{stack.stack.name}-{release.release}", release.wave)]


def test_argocd_installs_charts_by_wave_and_the_platform_after_them(
    stack: ServingPlatformArgs, rendered: PlatformObjects
) -> None:
    files = _tree(stack, rendered, "argocd")
    assert "sync.yaml" not in files
    documents = _all_documents(files)
    applications = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Application"}
    expected = {name: wave for c in rendered.charts for name, wave in _applications(stack, c)}
    assert sorted(applications) == sorted(expected)
    assert {n: int(a["metadata"]["annotations"][WAVE]) for n, a in applications.items()} == expected
    for chart in rendered.charts:
        for name, _ in _applications(stack, chart):
            source = applications[name]["spec"]["source"]
            assert source["targetRevision"] == chart.version
        for dependency in chart.depends_on:
            dependency_waves = [
                w for c in rendered.charts if c.release == dependency for _, w in _applications(stack, c)
            ]
            assert max(dependency_waves) < chart.wave, (chart.release, dependency)
    platform = [
        yaml.safe_load(text)
        for rel, text in files.items()
        if rel.startswith("platform/") and not rel.endswith("kustomization.yaml")
    ]
    assert platform
    assert {d["metadata"]["annotations"][WAVE] for d in platform} == {str(PLATFORM_WAVE)}
    assert max(c.wave for c in rendered.charts) + 1 < PLATFORM_WAVE
    carried = [d for d in documents if d["kind"] != "Application" and d not in platform]
    for obj in carried:
        owner = next(
            c
            for c in rendered.charts
            if any(o["metadata"]["name"] == obj["metadata"]["name"] for o in c.objects)
        )
        assert obj["metadata"]["annotations"][WAVE] == str(owner.wave + 1)
    # Every release, and every object one carries, is applied before the platform.
    upstream_waves = [int(d["metadata"]["annotations"][WAVE]) for d in documents if d not in platform]
    assert max(upstream_waves) < PLATFORM_WAVE
    assert len(carried) == sum(len(c.objects) for c in rendered.charts)


def test_argocd_applies_a_kustomize_release_path_by_path_into_its_labelled_namespace() -> None:
    stack = load_stack(EXAMPLE_STACKS[[p.stem for p in EXAMPLE_STACKS].index("prod")])
    rendered = build(stack)
    documents = {d["metadata"]["name"]: d for d in _all_documents(_tree(stack, rendered, "argocd"))}
    (release,) = _kustomize_releases(rendered)
    for path in release.paths:
        spec = documents[f"prod-{release.path_name(path)}"]["spec"]
        assert spec["source"] == {
            "repoURL": release.repository,
            "targetRevision": release.ref,
            "path": path,
            "kustomize": {
                "namespace": release.namespace,
                "patches": [{"target": p.target, "patch": p.patch} for p in release.patches],
            },
        }
        assert spec["destination"]["namespace"] == release.namespace
        assert spec["syncPolicy"]["managedNamespaceMetadata"] == {
            "labels": release.namespace_object["metadata"]["labels"]
        }


def test_argocd_refuses_an_upstream_wave_at_or_after_the_platform() -> None:
    stack = load_stack(EXAMPLE_STACKS[[p.stem for p in EXAMPLE_STACKS].index("prod")])
    rendered = build(stack)
    late = [
        c.model_copy(update={"wave": PLATFORM_WAVE - 1}) if c.release == "modelmesh" else c
        for c in rendered.charts
    ]
    with pytest.raises(RenderError) as raised:
        gitops_tree(rendered.objects, late, stack="prod", engine="argocd")
    assert str(raised.value) == (
        f"upstream sync waves must be below the platform wave {PLATFORM_WAVE}: "
        f"Application prod-modelmesh-default (wave {PLATFORM_WAVE})"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_gitops_output_passes_the_schemas(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine, crd_schemas: CrdSchemas
) -> None:
    documents = _all_documents(_tree(stack, rendered, engine))
    groups = {d["apiVersion"].split("/")[0] for d in documents}
    expected = (
        {"helm.toolkit.fluxcd.io", "source.toolkit.fluxcd.io", "kustomize.toolkit.fluxcd.io"}
        if engine == "flux"
        else {"argoproj.io"}
    )
    assert expected <= groups
    assert schema_problems(documents, stack, crd_schemas) == []


# -- writing ---------------------------------------------------------------------------------------


def _old_render(out: Path) -> dict[str, bytes]:
    write_tree({"kustomization.yaml": "old\n", "platform/stale.yaml": "stale\n"}, out)
    return _read_tree(out)


def test_write_tree_replaces_the_directory_with_exactly_the_files(tmp_path: Path) -> None:
    out = tmp_path / "deploy" / "dev"
    _old_render(out)
    write_tree({"kustomization.yaml": "new\n", "platform/a.yaml": "a\n"}, out)
    assert _read_tree(out) == {"kustomization.yaml": b"new\n", "platform/a.yaml": b"a\n"}
    assert sorted(p.name for p in out.parent.iterdir()) == ["dev"]


def test_a_failed_write_leaves_the_old_tree_intact(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    before = _old_render(out)
    # "platform" as a file and as a directory: the second write fails half-way.
    with pytest.raises(RenderError, match=r"dev: cannot write: "):
        write_tree({"platform": "a file\n", "platform/a.yaml": "a\n"}, out)
    assert _read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]


def test_a_failed_swap_puts_the_old_tree_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "dev"
    before = _old_render(out)
    rename = Path.rename

    def failing_rename(self: Path, target: Any) -> Path:
        if Path(target) == out.resolve() and self.name.startswith(".dev.") and not self.name.endswith(".old"):
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(RenderError, match=r"dev: cannot write: No space left on device$"):
        write_tree({"kustomization.yaml": "new\n"}, out)
    assert _read_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev"]


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ("README.md", r"not a modelplane render \(it holds README\.md\); choose an empty or new directory$"),
        ("file", r"exists and is not a directory; choose another output$"),
    ],
)
def test_write_tree_refuses_to_replace_what_is_not_a_render(
    tmp_path: Path, existing: str, message: str
) -> None:
    out = tmp_path / "out"
    if existing == "file":
        out.write_text("keep me\n", encoding="utf-8")
    else:
        out.mkdir()
        (out / existing).write_text("keep me\n", encoding="utf-8")
    with pytest.raises(RenderError, match=message):
        write_tree({"kustomization.yaml": "new\n"}, out)
    kept = out if existing == "file" else out / existing
    assert kept.read_text(encoding="utf-8") == "keep me\n"


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_no_secret_is_rendered(
    stack: ServingPlatformArgs, rendered: PlatformObjects, engine: GitOpsEngine
) -> None:
    documents = _all_documents(_tree(stack, rendered, engine))
    assert [key_of(d) for d in documents if d["kind"] == "Secret"] == []
    assert [
        key_of(d) for d in documents if {"data", "stringData"} & d.keys() and d["kind"] != "ConfigMap"
    ] == []


def test_storage_credentials_are_referenced_by_name(
    stack: ServingPlatformArgs, rendered: PlatformObjects
) -> None:
    names = {m.storage.secret_name for m in stack.models if m.storage is not None and m.storage.secret_name}
    accounts = [o for o in rendered.objects if o["kind"] == "ServiceAccount"]
    assert {s["name"] for a in accounts for s in a.get("secrets", [])} == names
    assert all(set(s) == {"name"} for a in accounts for s in a.get("secrets", []))


# -- KServe's pod merge (Pod Security itself: tests/upstream/test_pod_security.py) ----------------


def test_the_predictor_pod_merges_the_runtime_container_with_the_predictor() -> None:
    runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": "rt"},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn"}],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": "server:1",
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"limits": {"cpu": "1"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 1000},
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }
    isvc = {
        "metadata": {"name": "m", "namespace": "team"},
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "model": {
                    "runtime": "rt",
                    "modelFormat": {"name": "sklearn"},
                    "storageUri": "gs://b/m",
                    "env": [{"name": "B", "value": "2"}],
                    "resources": {"limits": {"cpu": "2"}},
                },
                "securityContext": {"runAsNonRoot": True},
                "nodeSelector": {"pool": "gpu"},
            }
        },
    }
    assert pss.predictor_pod(isvc, [runtime]) == {
        "containers": [
            {
                "name": "kserve-container",
                "image": "server:1",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "resources": {"limits": {"cpu": "2"}},
                "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 1000},
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "securityContext": {"runAsNonRoot": True},
        "nodeSelector": {"pool": "gpu"},
    }


def test_a_namespaced_runtime_wins_over_a_cluster_runtime_of_the_same_name() -> None:
    def runtime(kind: str, namespace: str | None) -> Obj:
        meta = {"name": "rt"} | ({"namespace": namespace} if namespace else {})
        return {"kind": kind, "metadata": meta, "spec": {"containers": []}}

    isvc = {
        "metadata": {"name": "m", "namespace": "team"},
        "spec": {"predictor": {"model": {"runtime": "rt"}}},
    }
    found = pss.find_runtime(
        isvc,
        [
            runtime("ClusterServingRuntime", None),
            runtime("ServingRuntime", "other"),
            runtime("ServingRuntime", "team"),
        ],
    )
    assert (found["kind"], found["metadata"].get("namespace")) == ("ServingRuntime", "team")

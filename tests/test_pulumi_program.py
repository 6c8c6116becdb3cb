"""The Pulumi program under recording mocks: what ``pulumi up -s <stack>`` would register.

Each example stack runs through the real ``platform/__main__.py``. The recording must
hold every rendered object exactly once, with its type token, under the component that
owns it, waiting for the releases that install its CRD and for its Namespace, with the
rendered object as its inputs; upstream releases must keep their order and their
protection.
"""

from __future__ import annotations

import json
import re
import runpy
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from modelplane.build import PlatformObjects, build
from modelplane.kube import LABEL_COMPONENT, Obj, key_of, resource_name, type_token
from modelplane.model import objects
from modelplane.render import gitops_tree, to_yaml
from modelplane.resources import mesh as mesh_resources
from modelplane.resources import model as model_resources
from modelplane.resources import platform as platform_resources
from modelplane.resources._register import KEPT_KINDS, KubeObject, provider_version
from modelplane.rollout.lock import lock_path, read_lock
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.upstream import KustomizeRelease, Release
from modelplane.validation import group_of
from tests.conftest import EXAMPLE_STACKS, STACKS, example_stack_ids
from tests.pulumi_mocks import PROGRAM, Recording, Registration, run, run_program

PLATFORM = "modelplane:index:ServingPlatform"
RELEASE_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")
KUSTOMIZE_DIRECTORY = "kubernetes:kustomize/v2:Directory"
"""A kustomize release's path: a component whose children the provider registers, not the program."""


def carried(release: Release) -> list[Obj]:
    """Objects registered with a release: a kustomize release's Namespace first, a chart's objects after it."""
    if isinstance(release, KustomizeRelease):
        return [release.namespace_object]
    return list(release.objects)


@dataclass
class Run:
    """One example stack: its args, what it renders, and what the program registered."""

    args: ServingPlatformArgs
    rendered: PlatformObjects
    recording: Recording

    def registration(self, obj: Obj) -> Registration:
        found = [
            r for r in self.recording.of_type(type_token(obj)) if r.name == resource_name(obj) and r.custom
        ]
        assert len(found) == 1, f"{key_of(obj)} registered {len(found)} times"
        return found[0]

    def releases(self, chart: Release) -> list[Registration]:
        """What installs a release: its Helm release, or one ``Directory`` per kustomize path in order."""
        if isinstance(chart, KustomizeRelease):
            paths = []
            for path in chart.paths:
                found = [
                    r
                    for r in self.recording.of_type(KUSTOMIZE_DIRECTORY)
                    if r.name.endswith(f"-{chart.path_name(path)}")
                ]
                assert len(found) == 1, f"path {path} of {chart.release} registered {len(found)} times"
                paths += found
            return paths
        found = [
            r
            for token in RELEASE_TYPES
            for r in self.recording.of_type(token)
            if r.inputs.get("name") == chart.release
        ]
        assert len(found) == 1, f"release {chart.release} registered {len(found)} times"
        return found

    def release(self, chart: Release) -> Registration:
        """The registration that is ready once the release is installed (a kustomize release's last path)."""
        return self.releases(chart)[-1]

    def carried_registration(self, chart: Release, obj: Obj) -> Registration:
        name = f"{chart.release}-{resource_name(obj)}"
        found = [r for r in self.recording.of_type(type_token(obj)) if r.name == name and r.custom]
        assert len(found) == 1, f"{key_of(obj)} of {chart.release} registered {len(found)} times"
        return found[0]

    def namespace_urns(self) -> dict[str, str]:
        """Namespaces modelplane creates: rendered ones and those registered with a release."""
        urns = {
            o["metadata"]["name"]: self.registration(o).urn
            for o in self.rendered.objects
            if o["kind"] == "Namespace"
        }
        for chart in self.rendered.charts:
            for obj in carried(chart):
                if obj["kind"] == "Namespace":
                    urns[obj["metadata"]["name"]] = self.carried_registration(chart, obj).urn
        return urns


_RUNS: dict[Path, Run] = {}


@pytest.fixture(params=EXAMPLE_STACKS, ids=example_stack_ids())
def program_run(request: pytest.FixtureRequest) -> Run:
    """The program's recording of one example stack (run once per stack per session)."""
    path: Path = request.param
    if path not in _RUNS:
        args = load_stack(path)
        # The program renders under the committed lock, as the GitOps render does.
        lock = read_lock(lock_path(path), stack=args.stack.name)
        _RUNS[path] = Run(args, build(args, lock=lock), run_program(args.stack.name))
    return _RUNS[path]


def strictly_equal(rendered: Any, recorded: Any, path: str = "") -> list[str]:
    """Differences between a rendered value and what Pulumi recorded, types included.

    Pulumi's wire format has one number type, so an int arrives as a float of the same
    value; everything else (bools, strings, nesting) must match exactly. ``==`` alone would
    accept ``True`` for ``1`` and ``2.5`` for ``2.5`` where the object held a string.
    """
    if isinstance(rendered, bool) or isinstance(recorded, bool):
        same = type(rendered) is type(recorded) and rendered == recorded
        return [] if same else [f"{path or '<root>'}: {rendered!r} != {recorded!r}"]
    if isinstance(rendered, int) and isinstance(recorded, int | float):
        return [] if float(rendered) == recorded else [f"{path}: {rendered!r} != {recorded!r}"]
    if isinstance(rendered, dict) and isinstance(recorded, dict):
        problems = [f"{path}.{k}: missing" for k in rendered.keys() - recorded.keys()]
        problems += [f"{path}.{k}: unexpected" for k in recorded.keys() - rendered.keys()]
        for key in sorted(rendered.keys() & recorded.keys()):
            problems += strictly_equal(rendered[key], recorded[key], f"{path}.{key}")
        return problems
    if isinstance(rendered, list) and isinstance(recorded, list):
        if len(rendered) != len(recorded):
            return [f"{path}: {len(rendered)} items != {len(recorded)}"]
        return [
            p
            for i, (a, b) in enumerate(zip(rendered, recorded, strict=True))
            for p in strictly_equal(a, b, f"{path}[{i}]")
        ]
    same = type(rendered) is type(recorded) and rendered == recorded
    return [] if same else [f"{path or '<root>'}: {rendered!r} != {recorded!r}"]


def _owner(label: str) -> type[pulumi.ComponentResource]:
    owners: dict[str, type[pulumi.ComponentResource]] = {
        "tenant": platform_resources.Tenants,
        "runtime": platform_resources.RuntimeCatalog,
        "model": platform_resources.ModelCatalog,
        "modelmesh": mesh_resources.ModelMesh,
        "gpu-pool": mesh_resources.GpuRuntimePool,
        "monitoring": platform_resources.Monitoring,
    }
    return owners.get(label, platform_resources.PlatformConfig)


# -- objects ---------------------------------------------------------------------------------------


def test_every_rendered_object_is_registered_exactly_once_with_its_type_token(program_run: Run) -> None:
    for obj in program_run.rendered.objects:
        registration = program_run.registration(obj)
        assert registration.type == type_token(obj)
        assert registration.custom


def test_no_kubernetes_object_is_registered_that_the_render_lacks(program_run: Run) -> None:
    rendered = {(type_token(o), resource_name(o)) for o in program_run.rendered.objects}
    # Objects carried by upstream releases (KnativeServing, a kustomize release's Namespace) are
    # registered by the ControlPlane.
    rendered |= {
        (type_token(o), f"{chart.release}-{resource_name(o)}")
        for chart in program_run.rendered.charts
        for o in carried(chart)
    }
    registered = [
        (r.type, r.name)
        for r in program_run.recording.custom()
        if r.type.startswith("kubernetes:") and r.type not in RELEASE_TYPES
    ]
    assert sorted(registered) == sorted(rendered)


def test_recorded_inputs_equal_the_rendered_object(program_run: Run) -> None:
    for obj in program_run.rendered.objects:
        assert strictly_equal(obj, program_run.registration(obj).inputs) == [], key_of(obj)


def test_strict_comparison_accepts_int_as_float_and_nothing_looser() -> None:
    assert strictly_equal({"minReplicas": 2}, {"minReplicas": 2.0}) == []
    assert strictly_equal({"minReplicas": 2}, {"minReplicas": 2.5}) == [".minReplicas: 2 != 2.5"]
    assert strictly_equal({"enabled": True}, {"enabled": 1.0}) == [".enabled: True != 1.0"]
    assert strictly_equal({"port": "8080"}, {"port": 8080.0}) == [".port: '8080' != 8080.0"]
    assert strictly_equal({"a": [1]}, {"a": [1.0, 2.0]}) == [".a: 1 items != 2"]


# -- component tree --------------------------------------------------------------------------------


def test_the_program_registers_one_serving_platform_under_the_stack(program_run: Run) -> None:
    platform = program_run.recording.one(PLATFORM)
    assert platform.name == program_run.args.stack.name
    assert program_run.recording.ancestry(platform) == ["pulumi:pulumi:Stack"]


def test_each_object_is_parented_under_the_component_that_owns_its_label(program_run: Run) -> None:
    for obj in program_run.rendered.objects:
        label = obj["metadata"].get("labels", {}).get(LABEL_COMPONENT, "config")
        registration = program_run.registration(obj)
        parent = program_run.recording.parent_of(registration)
        assert parent is not None, key_of(obj)
        assert parent.type == f"modelplane:index:{_owner(label).__name__}", key_of(obj)
        assert program_run.recording.ancestry(parent) == [PLATFORM, "pulumi:pulumi:Stack"], key_of(obj)


def test_objects_of_one_component_share_one_parent_and_components_do_not(program_run: Run) -> None:
    parents: dict[str, set[str]] = {}
    for obj in program_run.rendered.objects:
        label = obj["metadata"].get("labels", {}).get(LABEL_COMPONENT, "config")
        parents.setdefault(label, set()).add(program_run.registration(obj).parent)
    assert all(len(urns) == 1 for urns in parents.values()), parents
    assert len({next(iter(urns)) for urns in parents.values()}) == len(parents)


def test_releases_are_parented_under_the_control_plane(program_run: Run) -> None:
    for chart in program_run.rendered.charts:
        for release in program_run.releases(chart):
            assert program_run.recording.ancestry(release) == [
                "modelplane:index:ControlPlane",
                PLATFORM,
                "pulumi:pulumi:Stack",
            ], chart.release


def test_objects_carried_by_releases_are_parented_under_the_control_plane(program_run: Run) -> None:
    checked = 0
    for chart in program_run.rendered.charts:
        for obj in carried(chart):
            registration = program_run.carried_registration(chart, obj)
            assert strictly_equal(obj, registration.inputs) == [], key_of(obj)
            assert program_run.recording.ancestry(registration)[:2] == [
                "modelplane:index:ControlPlane",
                PLATFORM,
            ], key_of(obj)
            checked += 1
    # dev carries the KnativeServing and its Namespace; prod the ModelMesh Namespace.
    assert checked or program_run.args.stack.name == "staging"


def _components(program_run: Run) -> list[Registration]:
    """modelplane's own components (upstream kustomize paths are components of the provider)."""
    return [r for r in program_run.recording if not r.custom and r.type.startswith("modelplane:")]


def test_the_only_other_components_are_the_paths_of_kustomize_releases(program_run: Run) -> None:
    others = [
        r
        for r in program_run.recording
        if not r.custom and r.type != "pulumi:pulumi:Stack" and not r.type.startswith("modelplane:")
    ]
    paths = [
        r
        for c in program_run.rendered.charts
        if isinstance(c, KustomizeRelease)
        for r in program_run.releases(c)
    ]
    assert sorted(r.urn for r in others) == sorted(r.urn for r in paths)
    assert {r.type for r in others} <= {KUSTOMIZE_DIRECTORY}


def test_component_type_tokens_name_their_class(program_run: Run) -> None:
    components = _components(program_run)
    assert components
    for registration in components:
        prefix, _, class_name = registration.type.rpartition(":")
        assert prefix == "modelplane:index", registration.type
        cls = next(
            (
                getattr(module, class_name)
                for module in (platform_resources, model_resources, mesh_resources)
                if hasattr(module, class_name)
            ),
            None,
        )
        assert isinstance(cls, type) and issubclass(cls, pulumi.ComponentResource), registration.type


def test_every_component_registers_its_outputs(program_run: Run) -> None:
    components = [r.urn for r in _components(program_run)]
    assert components
    assert sorted(u for u in components if u in program_run.recording.outputs) == sorted(components)


# -- dependencies and options ----------------------------------------------------------------------


def test_custom_resources_depend_on_the_releases_that_install_their_crds(program_run: Run) -> None:
    installers: dict[str, list[str]] = {}
    for chart in program_run.rendered.charts:
        for group in chart.needed_by_groups:
            installers.setdefault(group, []).append(program_run.release(chart).urn)
    checked = 0
    for obj in program_run.rendered.objects:
        needed = installers.get(group_of(obj["apiVersion"]), [])
        missing = set(needed) - set(program_run.registration(obj).dependencies)
        assert not missing, f"{key_of(obj)} does not wait for {sorted(missing)}"
        checked += bool(needed)
    assert checked, "every example stack has custom resources (InferenceServices)"


def test_namespaced_objects_depend_on_the_namespace_modelplane_creates(program_run: Run) -> None:
    namespaces = program_run.namespace_urns()
    assert namespaces
    for obj in program_run.rendered.objects:
        namespace = obj["metadata"].get("namespace")
        if namespace in namespaces:
            assert namespaces[namespace] in program_run.registration(obj).dependencies, key_of(obj)


def test_charts_depend_on_the_releases_they_name(program_run: Run) -> None:
    by_name = {c.release: c for c in program_run.rendered.charts}
    for chart in program_run.rendered.charts:
        wanted = {program_run.release(by_name[d]).urn for d in chart.depends_on}
        for release in program_run.releases(chart):
            assert wanted <= set(release.dependencies), release.name


def test_kustomize_paths_apply_in_order_after_their_namespace(program_run: Run) -> None:
    releases = [c for c in program_run.rendered.charts if isinstance(c, KustomizeRelease)]
    for release in releases:
        namespace = program_run.carried_registration(release, release.namespace_object)
        previous = namespace.urn
        for path in program_run.releases(release):
            assert previous in path.dependencies, path.name
            previous = path.urn
    assert releases or program_run.args.stack.name != "prod"


def test_objects_in_a_namespace_an_upstream_release_creates_wait_for_that_release(program_run: Run) -> None:
    creators: dict[str, set[str]] = {}
    for chart in program_run.rendered.charts:
        if not isinstance(chart, KustomizeRelease):
            creators.setdefault(chart.namespace, set()).add(program_run.release(chart).urn)
    own = program_run.namespace_urns()
    checked = 0
    for obj in program_run.rendered.objects:
        namespace = obj["metadata"].get("namespace")
        if namespace in creators and namespace not in own:
            assert creators[namespace] & set(program_run.registration(obj).dependencies), key_of(obj)
            checked += 1
    assert checked, "every example stack has a Gateway in the namespace the KServe releases create"


def test_releases_that_install_crds_are_retained_and_protected_outside_dev(program_run: Run) -> None:
    protected = program_run.args.stack.tier != "dev"
    crd_charts = [c for c in program_run.rendered.charts if c.crds]
    assert crd_charts
    for chart in crd_charts:
        release = program_run.release(chart)
        assert (release.retain_on_delete, bool(release.protect)) == (True, protected), chart.release


def test_releases_without_crds_are_neither_retained_nor_protected(program_run: Run) -> None:
    others = [r for c in program_run.rendered.charts if not c.crds for r in program_run.releases(c)]
    assert others
    for release in others:
        assert (bool(release.retain_on_delete), bool(release.protect)) == (False, False), release.name


def test_authored_objects_are_protected_only_where_they_hold_data_or_serve(program_run: Run) -> None:
    """Outside dev: namespaces, CRDs, volumes, StatefulSets and InferenceServices (tests/test_pulumi_protection.py)."""
    protected = {
        r.type.rsplit(":", 1)[1]
        for r in program_run.recording.custom()
        if r.protect and r.type not in RELEASE_TYPES
    }
    assert protected <= (KEPT_KINDS if program_run.args.stack.tier != "dev" else set())


# -- exports and failures --------------------------------------------------------------------------


def test_the_program_exports_stack_tier_models_and_charts(program_run: Run) -> None:
    args = program_run.args
    exports = program_run.recording.exports
    assert (exports["stack"], exports["tier"]) == (args.stack.name, args.stack.tier)
    assert sorted(exports["models"]) == sorted(
        f"{args.tenant(m.tenant).namespace_name}/{m.name}" for m in args.models
    )
    assert exports["charts"] == {c.release: f"{c.chart}@{c.version}" for c in program_run.rendered.charts}


def test_a_stack_file_of_another_environment_fails_the_program() -> None:
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", stack_file=STACKS / "prod.yaml")
    assert str(raised.value) == (
        f"{STACKS / 'prod.yaml'}: stack.name: is 'prod' but the Pulumi stack is 'dev'; "
        "a stack file must not be applied to another environment"
    )


def test_an_invalid_stack_file_fails_the_program_listing_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "dev.yaml"
    bad.write_text("stack: {name: dev, tier: qa}\nmodels: 3\n", encoding="utf-8")
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", stack_file=bad)
    lines = str(raised.value).splitlines()
    assert lines[0] == "invalid stack file:"
    assert [line.split(": ")[1] for line in lines[1:]] == ["stack.tier", "models"]
    assert all(line.startswith(f"{bad}: ") for line in lines[1:])


def test_a_corrupt_lock_fails_the_program_instead_of_rendering_without_it(tmp_path: Path) -> None:
    stack = tmp_path / "dev.yaml"
    stack.write_text((STACKS / "dev.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "dev.lock.yaml").write_text("{not json", encoding="utf-8")
    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", stack_file=stack)
    assert str(raised.value).startswith("invalid lock file:\n")
    assert "dev.lock.yaml" in str(raised.value)


def test_a_missing_stack_file_fails_the_program() -> None:
    with pytest.raises(pulumi.RunError, match=r"qa\.yaml: <root>: no such file$"):
        run_program("qa")


# -- the render keeps integers ---------------------------------------------------------------------


def _ints_as_floats(rendered: Any, written: Any, path: str = "") -> list[str]:
    """Places where the written YAML holds a float (or anything else) for an int of the object."""
    if isinstance(rendered, dict):
        return [p for k in rendered for p in _ints_as_floats(rendered[k], written.get(k), f"{path}.{k}")]
    if isinstance(rendered, list):
        return [p for i, v in enumerate(rendered) for p in _ints_as_floats(v, written[i], f"{path}[{i}]")]
    if isinstance(rendered, int) and not isinstance(rendered, bool) and type(written) is not int:
        return [f"{path}: {written!r}"]
    return []


def _count_ints(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_count_ints(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_ints(v) for v in value)
    return int(isinstance(value, int) and not isinstance(value, bool))


def test_to_yaml_writes_integers_as_integers() -> None:
    assert to_yaml({"spec": {"minReplicas": 2, "target": 0.5}}) == "spec:\n  minReplicas: 2\n  target: 0.5\n"


@pytest.mark.parametrize("engine", ["flux", "argocd"])
def test_the_render_never_writes_a_float_for_an_integer(program_run: Run, engine: str) -> None:
    rendered = program_run.rendered
    files = gitops_tree(rendered.objects, rendered.charts, stack=program_run.args.stack.name, engine=engine)  # type: ignore[arg-type]
    written = {
        key_of(doc): doc
        for content in files.values()
        for doc in yaml.safe_load_all(content)
        if isinstance(doc, dict) and "metadata" in doc
    }
    for obj in rendered.objects:
        assert _ints_as_floats(obj, written[key_of(obj)]) == [], key_of(obj)
    assert sum(_count_ints(o) for o in rendered.objects), "the example stacks hold integer fields"


# -- the Model component ---------------------------------------------------------------------------


@dataclass
class ModelRun:
    objects: list[Obj]
    recording: Recording
    component: Registration
    prerequisite: Registration


@pytest.fixture(scope="module")
def model_run() -> ModelRun:
    """One model of the staging stack (it has a storage ServiceAccount) as a ``Model`` component."""

    args = load_stack(STACKS / "staging.yaml")
    model = next(m for m in args.models if m.storage.secret_name)
    namespace = args.tenant(model.tenant).namespace_name
    runtime = load_catalog(catalog_dir())[model.runtime]
    mode = args.mode(model)
    pool = args.pool(model.resources.pool)

    def program() -> None:
        prerequisite = KubeObject(
            "prerequisite", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
        model_resources.Model(
            model.name,
            model,
            stack="staging",
            namespace=namespace,
            mode=mode,
            runtime=runtime,
            pool=pool,
            depends_on=[prerequisite],
        )

    recording = run(program, stack="staging")
    rendered = objects(model, stack="staging", namespace=namespace, mode=mode, runtime=runtime, pool=pool)
    return ModelRun(
        rendered,
        recording,
        recording.one("modelplane:index:Model"),
        next(r for r in recording if r.name == "prerequisite"),
    )


def test_model_component_registers_its_objects_as_children(model_run: ModelRun) -> None:
    children = sorted((r.type, r.name) for r in model_run.recording if r.parent == model_run.component.urn)
    assert children == sorted((type_token(o), resource_name(o)) for o in model_run.objects)
    assert {o["kind"] for o in model_run.objects} == {"InferenceService", "ServiceAccount"}


def test_model_component_inputs_equal_its_rendered_objects(model_run: ModelRun) -> None:
    by_name = {r.name: r for r in model_run.recording if r.parent == model_run.component.urn}
    for obj in model_run.objects:
        assert strictly_equal(obj, by_name[resource_name(obj)].inputs) == [], key_of(obj)


def test_model_component_children_wait_for_what_it_depends_on(model_run: ModelRun) -> None:
    children = [r for r in model_run.recording if r.parent == model_run.component.urn]
    assert children
    for child in children:
        assert model_run.prerequisite.urn in child.dependencies, child.name


def test_model_component_sits_under_the_stack_and_reports_its_version(model_run: ModelRun) -> None:
    service = next(o for o in model_run.objects if o["kind"] == "InferenceService")["metadata"]
    assert model_run.recording.ancestry(model_run.component) == ["pulumi:pulumi:Stack"]
    assert model_run.recording.outputs[model_run.component.urn] == {
        "name": service["labels"]["modelplane.dev/model"],
        "namespace": service["namespace"],
        "version": service["labels"]["modelplane.dev/version"],
    }


def test_render_warnings_are_logged_against_the_platform(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    args = load_stack(STACKS / "dev.yaml")
    rendered = build(args)
    rendered.warnings.append("models[0].scaling: scale to zero on a GPU pool that takes 10m to provision")
    monkeypatch.setattr(platform_resources, "build", lambda _args, lock=None, images=None: rendered)
    with caplog.at_level("WARNING"):
        run(lambda: platform_resources.ServingPlatform("dev", args), stack="dev")
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "models[0].scaling: scale to zero on a GPU pool that takes 10m to provision"
    ]


# -- the provider version ---------------------------------------------------------------------------


def test_the_provider_version_is_the_installed_sdks_in_semver() -> None:
    installed = re.match(r"(\d+)\.(\d+)\.(\d+)", metadata.version("pulumi_kubernetes"))
    assert installed is not None
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", provider_version())
    assert provider_version().split("-")[0] == ".".join(installed.groups())


# -- upstream releases installed by someone else ---------------------------------------------------


def _run_with_external(stack: str, external: object) -> Recording:
    return run(
        lambda: runpy.run_path(str(PROGRAM), run_name="__main__"),
        stack=stack,
        config={"modelplane:externalReleases": json.dumps(external)},
    )


def test_external_releases_are_not_installed_but_what_modelplane_authors_for_them_is() -> None:
    releases = sorted(c.release for c in build(load_stack(STACKS / "dev.yaml")).charts)
    recording = _run_with_external("dev", releases)
    assert recording.of_type("kubernetes:helm.sh/v3:Release") == []
    knative_serving = recording.one("kubernetes:operator.knative.dev/v1beta1:KnativeServing")
    namespace = next(
        r for r in recording.of_type("kubernetes:core/v1:Namespace") if r.name.startswith("knative-operator-")
    )
    assert knative_serving.dependencies == (namespace.urn,)
    isvcs = recording.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert len(isvcs) == 3 and all(r.dependencies for r in isvcs)


def test_one_external_release_leaves_the_others_installed() -> None:
    recording = _run_with_external("dev", ["cert-manager"])
    names = sorted(r.inputs["name"] for r in recording.of_type("kubernetes:helm.sh/v3:Release"))
    assert names == ["envoy-gateway", "knative-operator", "kserve", "kserve-crd", "kube-prometheus-stack"]


@pytest.mark.parametrize(
    ("external", "message"),
    [
        (
            ["kserve", "nope"],
            "modelplane:externalReleases: external releases ['nope'] are not releases of stack 'dev' "
            "(it has ['cert-manager', 'envoy-gateway', 'knative-operator', 'kserve', 'kserve-crd', "
            "'kube-prometheus-stack'])",
        ),
        ("kserve", "modelplane:externalReleases: must be a list of release names (got 'kserve')"),
    ],
)
def test_bad_external_releases_fail_the_program_naming_the_setting(external: object, message: str) -> None:
    with pytest.raises(pulumi.RunError) as raised:
        _run_with_external("dev", external)
    assert str(raised.value) == message

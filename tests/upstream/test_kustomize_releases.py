"""Every kustomize release, rendered by the real kustomize exactly as modelplane declares it.

ModelMesh Serving installs from kustomize directories of its tag, which its Go module carries
(``tests/upstream/kustomize.py``). The checks are the chart harness's: modelplane's patches take
effect (kustomize fails on a patch whose target is missing, and the patched fields must come
out as the patch says); no object is rendered both by the release and by modelplane or a
chart; every object passes strict Kubernetes and CRD schema validation; every pod the release
runs meets Pod Security "restricted" by Kubernetes' own evaluator; and the ``model-serving-config``
modelplane writes is read by ModelMesh's own configuration code without an unknown key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.kube import Obj
from modelplane.model_mesh import BUNDLED_KSERVE_CRDS, CONFIG_MAP, CONTROLLER, controller_replicas
from modelplane.upstream import Chart, KustomizeRelease
from modelplane.validation import CrdSchemas
from tests.upstream import helm, kustomize, psa
from tests.upstream.conftest import kustomize_cases, platform, release_of, stack
from tests.upstream.mmconfig import read_config

RenderKustomize = Callable[[str, str, str], kustomize.Rendered]
Render = Callable[[str, str], helm.Rendered]
CASES = kustomize_cases()
IDS = [f"{case}-{name}-{path.replace('/', '_')}" for case, name, path in CASES]
MESH_CASES = sorted({case for case, _, _ in CASES})


def _key(obj: Obj) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["kind"], meta.get("namespace") or "", meta["name"])


@pytest.mark.parametrize(("case", "name", "path"), CASES, ids=IDS)
def test_each_path_renders_into_the_release_namespace(
    case: str, name: str, path: str, render_kustomize: RenderKustomize
) -> None:
    rendered = render_kustomize(case, name, path)
    release = release_of(case, name)
    assert rendered.objects
    crds = [o for o in rendered.objects if o["kind"] == "CustomResourceDefinition"]
    scopes = {_key(o): helm.namespaced(o, crds) for o in rendered.objects}
    assert [k for k, namespaced in scopes.items() if namespaced is None] == []
    namespaced = [o for o in rendered.objects if scopes[_key(o)]]
    assert namespaced
    assert {o["metadata"].get("namespace") for o in namespaced} == {release.namespace}
    # modelplane deletes the CRDs KServe's own release owns; ModelMesh keeps only its own.
    assert not {o["metadata"]["name"] for o in crds} & set(BUNDLED_KSERVE_CRDS)


@pytest.mark.parametrize("case", MESH_CASES)
def test_the_controller_carries_modelplanes_patch(case: str, render_kustomize: RenderKustomize) -> None:
    release = _mesh_release(case)
    (controller,) = [
        o
        for path in release.paths
        for o in render_kustomize(case, release.release, path).objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == CONTROLLER
    ]
    (patch,) = [yaml.safe_load(p.patch) for p in release.patches if p.target.get("kind") == "Deployment"]
    wanted = patch["spec"]
    args = stack(case)
    assert (
        controller["spec"]["replicas"]
        == wanted["replicas"]
        == controller_replicas(args.model_mesh, args.stack.tier)
    )
    pod = controller["spec"]["template"]["spec"]
    assert pod["securityContext"] == wanted["template"]["spec"]["securityContext"]
    (manager,) = [c for c in pod["containers"] if c["name"] == "manager"]
    (patched,) = wanted["template"]["spec"]["containers"]
    assert manager["securityContext"] == patched["securityContext"]
    env = {e["name"]: e.get("value") for e in manager["env"]}
    assert env["ETCD_SECRET_NAME"] == args.model_mesh.etcd.secret_name


def _mesh_release(case: str) -> KustomizeRelease:
    (release,) = [r for r in platform(case).charts if isinstance(r, KustomizeRelease)]
    return release


@pytest.mark.parametrize("case", MESH_CASES)
def test_no_release_object_has_another_owner(
    case: str, render_kustomize: RenderKustomize, render_release: Render
) -> None:
    built = platform(case)
    owners: dict[tuple[str, str, str], list[str]] = {}
    for obj in built.objects:
        owners.setdefault(_key(obj), []).append("modelplane")
    for release in built.charts:
        if isinstance(release, Chart):
            rendered = render_release(case, release.release)
            for obj in [*rendered.objects, *rendered.crds, *release.objects]:
                owners.setdefault(_key(obj), []).append(f"chart {release.chart}")
        else:
            owners.setdefault(_key(release.namespace_object), []).append("modelplane")
            for path in release.paths:
                for obj in render_kustomize(case, release.release, path).objects:
                    owners.setdefault(_key(obj), []).append(f"{release.release} {path}")
    charts = {r.chart: r for r in built.charts if isinstance(r, Chart)}
    for (kind, name), (guarded, owner) in LOOKUP_GUARDED.items():
        key = (kind, "", name)
        if guarded in charts and owner in charts and key in owners:
            # The guard is upstream's: the chart's own template looks the object up and skips it
            # when another release owns it.
            templates = helm.reference_path(guarded, charts[guarded].version).glob("templates/*.yaml")
            lookup = f'lookup "apiextensions.k8s.io/v1" "{kind}" "" "{name}"'
            assert any(
                lookup in t.read_text() and "meta.helm.sh/release-name" in t.read_text() for t in templates
            )
            # The guarded chart must install after the owner, or its lookup finds nothing.
            assert owner in charts[guarded].depends_on, f"{guarded} must depend on {owner}"
            owners[key] = [o for o in owners[key] if o != f"chart {guarded}"]
    doubly_owned = {k: v for k, v in owners.items() if len(v) > 1}
    assert doubly_owned == {}


LOOKUP_GUARDED: dict[tuple[str, str], tuple[str, str]] = {
    # kserve-llmisvc-crd v0.20.0 templates/serving.kserve.io_clusterstoragecontainers.yaml:1-8 renders
    # the CRD only when a Helm lookup finds it absent or owned by its own release; the offline render
    # here has no cluster to look up, so it always renders it.
    ("CustomResourceDefinition", "clusterstoragecontainers.serving.kserve.io"): (
        "kserve-llmisvc-crd",
        "kserve-crd",
    ),
}
"""Objects a chart skips when a Helm lookup finds another release owns them: (kind, name) -> (chart, owner)."""


@pytest.mark.parametrize(("case", "name", "path"), CASES, ids=IDS)
def test_release_objects_pass_strict_schema_validation(
    case: str, name: str, path: str, render_kustomize: RenderKustomize, crd_schemas: CrdSchemas
) -> None:
    rendered = render_kustomize(case, name, path)
    own_crds = [o for o in rendered.objects if o["kind"] == "CustomResourceDefinition"]
    schemas = helm.crd_schemas(crd_schemas, own_crds)
    kubernetes = stack(case).versions.kubernetes
    assert helm.strict_schema_problems(rendered.objects, schemas=schemas, kubernetes=kubernetes) == []


@pytest.mark.parametrize(("case", "name", "path"), CASES, ids=IDS)
def test_release_pods_meet_restricted(
    case: str, name: str, path: str, render_kustomize: RenderKustomize, psa_binary: Path
) -> None:
    rendered = render_kustomize(case, name, path)
    pods = [
        (f"{o['kind']} {o['metadata']['name']}", psa.pod_metadata(o), spec)
        for o, spec in rendered.workloads()
    ]
    verdicts = psa.evaluate(psa_binary, pods, kubernetes=stack(case).versions.kubernetes)
    assert {v.id: v.restricted for v in verdicts if not v.allowed("restricted")} == {}
    if path == "config/default":
        assert [v.id for v in verdicts] == [f"Deployment {CONTROLLER}"]


def _user_config(case: str) -> tuple[Obj, dict[str, Any]]:
    (config_map,) = [
        o for o in platform(case).objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == CONFIG_MAP
    ]
    data: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return config_map, data


@pytest.mark.parametrize("case", MESH_CASES)
def test_modelmesh_reads_the_user_config_modelplane_writes(
    case: str, render_kustomize: RenderKustomize
) -> None:
    release = _mesh_release(case)
    main = (kustomize.source_dir(release) / "main.go").read_text(encoding="utf-8")
    assert re.search(rf'UserConfigMapName\s*=\s*"{CONFIG_MAP}"', main), "ModelMesh reads another ConfigMap"
    config_map, _ = _user_config(case)
    assert config_map["metadata"]["namespace"] == release.namespace


@pytest.mark.parametrize("case", MESH_CASES)
def test_every_user_config_key_is_one_modelmesh_reads(case: str, mmconfig_binary: Path) -> None:
    config_map, data = _user_config(case)
    result = read_config(mmconfig_binary, config_map["data"]["config.yaml"])
    assert (result.error, result.unknown) == ("", [])
    merged = result.config
    # What modelplane sets is what ModelMesh then runs with (keys are case-insensitive there).
    assert merged["PodsPerRuntime"] == data["podsPerRuntime"]
    assert merged["RESTProxy"]["Enabled"] == data["restProxy"]["enabled"]
    assert merged["ScaleToZero"] == {
        "Enabled": data["scaleToZero"]["enabled"],
        "GracePeriodSeconds": data["scaleToZero"]["gracePeriodSeconds"],
    }
    assert merged["Metrics"]["Scheme"] == data["metrics"]["scheme"]
    assert merged["Metrics"]["DisablePrometheusOperatorSupport"] is True
    assert merged["HeadlessService"] == data["headlessService"]


@pytest.mark.parametrize(
    ("config", "unknown"),
    [
        ("podsPerRuntime: 2\nrestProxy: {enabled: true, replicas: 3}\n", ["RESTProxy.replicas"]),
        (
            "podsPerRuntime: 2\nmetrics: {enabled: true, disablePrometheusOperator: true}\n",
            ["Metrics.disableprometheusoperator"],
        ),
        ("podPerRuntime: 2\n", ["podperruntime"]),
    ],
)
def test_a_key_modelmesh_would_ignore_is_reported(
    config: str, unknown: list[str], mmconfig_binary: Path
) -> None:
    result = read_config(mmconfig_binary, config)
    assert result.unknown == unknown

"""Every upstream release, rendered by the real Helm engine with exactly modelplane's values.

The checks a reviewer would make by reading each chart, made by the chart itself: every value
modelplane sets is one the chart defines; no object is rendered both by a chart and by
modelplane (two owners overwrite each other on every sync); every object a chart renders passes
strict Kubernetes and CRD schema validation at the stack's Kubernetes version; and every pinned
chart version has reference data to render, so no pin goes unchecked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import helm_python
import pytest

from modelplane.kube import Obj
from modelplane.upstream import Chart, Versions
from modelplane.validation import CrdSchemas
from tests.upstream import helm
from tests.upstream.conftest import STACK_CASES, chart_cases, platform, release_of, stack

Render = Callable[[str, str], helm.Rendered]
CHART_CASES = chart_cases()
CHART_IDS = [f"{case}-{name}" for case, name in CHART_CASES]


@pytest.mark.parametrize(("case", "name"), CHART_CASES, ids=CHART_IDS)
def test_every_pinned_chart_version_has_reference_data(case: str, name: str) -> None:
    if not helm.CHARTS.is_dir():
        pytest.skip(f"upstream chart reference data not found at {helm.CHARTS}")
    release = release_of(case, name)
    assert helm.has_reference(release.chart, release.version), (
        f"{case}: {name} pins chart {release.chart} {release.version}, which has no reference data "
        f"at {helm.reference_path(release.chart, release.version)}"
    )


@pytest.mark.parametrize(("case", "name"), CHART_CASES, ids=CHART_IDS)
def test_every_value_is_one_the_chart_defines(case: str, name: str, render_release: Render) -> None:
    rendered = render_release(case, name)
    assert helm.unknown_value_paths(rendered) == []


def _owners(case: str, render_release: Render) -> dict[tuple[str, str, str], list[str]]:
    built = platform(case)
    owners: dict[tuple[str, str, str], list[str]] = {}

    def own(obj: Obj, owner: str) -> None:
        meta = obj.get("metadata") or {}
        owners.setdefault((obj["kind"], meta.get("namespace") or "", meta["name"]), []).append(owner)

    for obj in built.objects:
        own(obj, "modelplane")
    for release in built.charts:
        for obj in release.objects:
            own(obj, "modelplane")
        if isinstance(release, Chart):
            rendered = render_release(case, release.release)
            for obj in [*rendered.objects, *rendered.crds]:
                own(obj, f"chart {release.chart} (release {release.release})")
    return owners


SHARED_BY_LOOKUP: dict[tuple[str, str, str], tuple[str, str]] = {
    # Both KServe CRD charts carry the ClusterStorageContainer CRD and render it only when no
    # other release owns it (a Helm `lookup` of the CRD's meta.helm.sh/release-name:
    # kserve-crd and kserve-llmisvc-crd v0.20.0 templates/serving.kserve.io_clusterstoragecontainers.yaml:1-8);
    # kserve-llmisvc-crd installs after kserve-crd, so in a cluster the second one skips it.
    # Offline, `lookup` finds nothing and both render it.
    ("CustomResourceDefinition", "", "clusterstoragecontainers.serving.kserve.io"): (
        "kserve-crd",
        "kserve-llmisvc-crd",
    ),
}
"""Objects two charts render offline but only one installs, each with the releases involved."""


@pytest.mark.parametrize("case", list(STACK_CASES))
def test_no_object_has_two_owners(case: str, render_release: Render) -> None:
    doubly_owned = {k: v for k, v in _owners(case, render_release).items() if len(v) > 1}
    releases = {c.release: c for c in platform(case).charts}
    for key, (first, second) in SHARED_BY_LOOKUP.items():
        if key in doubly_owned and second in releases:
            # The second release must install after the first for its lookup to see the CRD.
            assert first in releases[second].depends_on
            del doubly_owned[key]
    assert doubly_owned == {}


@pytest.mark.parametrize("case", list(STACK_CASES))
def test_every_chart_object_knows_its_scope(case: str, render_release: Render) -> None:
    unknown = []
    for release in platform(case).charts:
        if isinstance(release, Chart):
            rendered = render_release(case, release.release)
            crds = _stack_crds(case, render_release)
            unknown += [
                f"{release.release}: {o['apiVersion']} {o['kind']}"
                for o in rendered.objects
                if helm.namespaced(o, crds) is None
            ]
    assert unknown == []


def _stack_crds(case: str, render_release: Render) -> list[Obj]:
    """Every CRD a stack's charts install (``crds/`` directories and CRDs rendered by templates)."""
    result: list[Obj] = []
    for release in platform(case).charts:
        if isinstance(release, Chart):
            rendered = render_release(case, release.release)
            result += rendered.crds
            result += [o for o in rendered.objects if o["kind"] == "CustomResourceDefinition"]
    return result


@pytest.mark.parametrize(("case", "name"), CHART_CASES, ids=CHART_IDS)
def test_chart_objects_pass_strict_schema_validation(
    case: str, name: str, render_release: Render, crd_schemas: CrdSchemas
) -> None:
    rendered = render_release(case, name)
    schemas = helm.crd_schemas(crd_schemas, _stack_crds(case, render_release))
    kubernetes = stack(case).versions.kubernetes
    assert helm.strict_schema_problems(rendered.objects, schemas=schemas, kubernetes=kubernetes) == []


def test_helm_refuses_a_value_the_chart_schema_does_not_allow(charts_workdir: Any) -> None:
    """The harness renders with Helm's values.schema.json validation on (cert-manager's forbids unknown keys)."""

    release = Chart(
        release="cert-manager",
        namespace="cert-manager",
        repository="https://charts.jetstack.io",
        chart="cert-manager",
        version="v1.17.0",
        values={"replicaCount": 1, "replicaCuont": 2},
    )
    with pytest.raises(helm_python.HelmValuesError, match="replicaCuont"):
        helm.render(release, kubernetes="1.33", workdir=charts_workdir)


def test_an_undefined_value_path_is_reported(render_release: Render) -> None:
    """The value-path check catches a key the chart never reads (here a chart without a schema)."""
    rendered = render_release("prod", "kserve")
    values = {"kserve": {"controller": {"deploymentMode": "Standard"}, "logger": {"defaultUrl": "http://x"}}}
    probe = dataclasses.replace(rendered, release=rendered.release.model_copy(update={"values": values}))
    assert helm.unknown_value_paths(probe) == ["kserve.logger.defaultUrl"]


def test_the_gateway_api_pin_is_what_envoy_gateway_installs() -> None:
    """The Gateway API CRDs come from Envoy Gateway's chart: their bundle version is the pin, and their
    channel is the one the pin's description names."""
    versions = Versions()
    crds_file = (
        helm.reference_path("gateway-helm", versions.envoy_gateway) / "charts/crds/crds/gatewayapi-crds.yaml"
    )
    if not crds_file.is_file():
        pytest.skip(f"upstream chart reference data not found at {crds_file}")
    annotations = [
        o["metadata"]["annotations"]
        for o in helm.split_manifests(crds_file.read_text(encoding="utf-8"))
        if o.get("kind") == "CustomResourceDefinition"
    ]
    assert annotations
    assert {a["gateway.networking.k8s.io/bundle-version"] for a in annotations} == {versions.gateway_api}
    (channel,) = {a["gateway.networking.k8s.io/channel"] for a in annotations}
    assert channel == "experimental"
    assert f"{channel} channel" in (Versions.model_fields["gateway_api"].description or "")

"""What modelplane's chart values do, judged by what the real charts render with them.

Each test here pins one fact a chart's templates decide (not modelplane's reading of them): which
objects a value turns off, which labels a pod selector must match, which storage URIs KServe's
own storage container serves, and which settings have no chart value at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from modelplane import control_plane
from modelplane.errors import StackError
from modelplane.kube import Obj
from modelplane.model_mesh import CONFIG_MAP
from modelplane.stack import parse_stack
from modelplane.upstream import Chart, Versions
from tests.upstream import helm
from tests.upstream.conftest import STACK_CASES, chart_cases, platform, release_of

Render = Callable[[str, str], helm.Rendered]
KSERVE_CASES = [c for c in chart_cases() if c[1] == "kserve"]


def _kinds_and_names(objects: list[Obj]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


@pytest.mark.parametrize(("case", "name"), KSERVE_CASES, ids=[c for c, _ in KSERVE_CASES])
def test_the_kserve_chart_leaves_the_storage_container_to_modelplane(
    case: str, name: str, render_release: Render
) -> None:
    rendered = _kinds_and_names(render_release(case, name).objects)
    assert ("ClusterStorageContainer", "default") not in rendered
    # What createSharedResources also gates stays on: KServe needs its configuration and certificate.
    assert {
        ("ConfigMap", "inferenceservice-config"),
        ("Issuer", "selfsigned-issuer"),
        ("Certificate", "serving-cert"),
    } <= rendered


def _default_storage_container(charts_workdir: Path) -> Obj:
    """The ClusterStorageContainer KServe's chart renders with its default values."""
    version = Versions().kserve
    release = Chart(
        release="kserve",
        namespace="kserve",
        repository="oci://ghcr.io/kserve/charts",
        chart="kserve-resources",
        version=version,
    )
    rendered = helm.render(release, kubernetes=Versions().kubernetes, workdir=charts_workdir)
    return next(o for o in rendered.objects if o["kind"] == "ClusterStorageContainer")


def test_modelplane_storage_container_serves_the_uris_kserve_serves(charts_workdir: Path) -> None:
    upstream = _default_storage_container(charts_workdir)
    ours = control_plane.storage_container(control_plane.ControlPlaneArgs(), Versions(), stack="s")
    assert ours["metadata"]["name"] == upstream["metadata"]["name"]
    assert ours["spec"]["supportedUriFormats"] == upstream["spec"]["supportedUriFormats"]
    for field in ("workloadType", "supportsMultiModelDownload"):
        assert ours["spec"][field] == upstream["spec"][field]
    assert ours["spec"]["container"]["name"] == upstream["spec"]["container"]["name"]


def _selectors(pod: Obj) -> list[tuple[str, dict[str, str]]]:
    """The matchLabels of a pod's anti-affinity and topology spread terms (meant to select its peers)."""
    found: list[tuple[str, dict[str, str]]] = []
    anti = (pod.get("affinity") or {}).get("podAntiAffinity") or {}
    for term in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
        found.append(("podAntiAffinity", (term.get("labelSelector") or {}).get("matchLabels") or {}))
    for weighted in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        term = weighted["podAffinityTerm"]
        found.append(("podAntiAffinity", (term.get("labelSelector") or {}).get("matchLabels") or {}))
    for spread in pod.get("topologySpreadConstraints") or []:
        found.append(
            ("topologySpreadConstraints", (spread.get("labelSelector") or {}).get("matchLabels") or {})
        )
    return found


def _spread_cases() -> list[tuple[str, str]]:
    return [
        c
        for c in chart_cases()
        if "ffinity" in str(release_of(*c).values) or "topologySpread" in str(release_of(*c).values)
    ]


@pytest.mark.parametrize(("case", "name"), _spread_cases(), ids=[f"{c}-{n}" for c, n in _spread_cases()])
def test_spreading_terms_select_the_pods_that_carry_them(
    case: str, name: str, render_release: Render
) -> None:
    """A spreading term whose selector matches no replica of its own workload spreads nothing."""
    checked = 0
    mismatched = []
    for obj, pod in render_release(case, name).workloads():
        labels = ((obj["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        for where, match in _selectors(pod):
            checked += 1
            if not match or any(labels.get(k) != v for k, v in match.items()):
                mismatched.append(
                    f"{obj['kind']} {obj['metadata']['name']}: {where} selects {match}, pods carry {labels}"
                )
    assert checked, f"{name}: modelplane sets spreading values, but no rendered workload carries them"
    assert mismatched == []


def test_a_cluster_wide_logger_url_is_refused() -> None:
    data = yaml.safe_load((Path(helm.ROOT) / "stacks" / "dev.yaml").read_text(encoding="utf-8"))
    data.setdefault("controlPlane", {})["loggerUrl"] = "http://sink.logging.svc"
    with pytest.raises(StackError) as err:
        parse_stack(data, "dev.yaml")
    assert err.value.problems == [
        f'dev.yaml: controlPlane.loggerUrl: {control_plane.LOGGER_URL_REFUSED} (got "http://sink.logging.svc")'
    ]


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in STACK_CASES
        if platform(c).charts and any(r.release == "modelmesh" for r in platform(c).charts)
    ],
)
def test_modelmesh_leaves_service_monitors_to_modelplane(case: str) -> None:
    configs = [
        o for o in platform(case).objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == CONFIG_MAP
    ]
    assert configs
    for config in configs:
        metrics = yaml.safe_load(config["data"]["config.yaml"])["metrics"]
        assert metrics["enabled"] is True
        assert metrics["disablePrometheusOperatorSupport"] is True

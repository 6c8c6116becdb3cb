"""What modelplane's chart values do, judged by what the real charts render with them.

Each test here pins one fact a chart's templates decide (not modelplane's reading of them): which
objects a value turns off, which labels a pod selector must match, which storage URIs KServe's
own storage container serves, and which settings have no chart value at all.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import control_plane, dashboards, gpu_rules
from modelplane.errors import StackError
from modelplane.kube import Obj
from modelplane.model_mesh import CONFIG_MAP
from modelplane.stack import parse_stack
from modelplane.upstream import Chart, Versions
from tests.upstream import gotools, helm
from tests.upstream.conftest import STACK_CASES, chart_cases, platform, release_of, stack

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
    # KServe's formats in its order, then the placeholder of storage-config models (see
    # control_plane.STORAGE_SPEC_PREFIX), which upstream's default does not harden.
    assert ours["spec"]["supportedUriFormats"] == [
        *upstream["spec"]["supportedUriFormats"],
        {"prefix": control_plane.STORAGE_SPEC_PREFIX},
    ]
    for field in ("workloadType", "supportsMultiModelDownload"):
        assert ours["spec"][field] == upstream["spec"][field]
    assert ours["spec"]["container"]["name"] == upstream["spec"]["container"]["name"]


def test_the_storage_spec_prefix_is_the_source_uri_kserve_gives_a_storage_config_model() -> None:
    # KServe annotates such a pod's source URI as "<placeholder>://<path>" and matches
    # ClusterStorageContainers against it; read both from KServe's own source.
    try:
        source = gotools.module_dir("github.com/kserve/kserve", Versions().kserve)
    except (gotools.GoMissingError, gotools.GoDownloadError) as err:
        pytest.skip(f"KServe's source is not readable from the Go module cache: {err}")
    credentials = (source / "pkg" / "credentials" / "service_account_credentials.go").read_text()
    found = re.search(r'UriSchemePlaceholder\s*=\s*"([^"]+)"', credentials)
    assert found is not None
    component = source / "pkg" / "controller" / "v1beta1" / "inferenceservice" / "components" / "component.go"
    assert 'fmt.Sprintf("%s://%s", credentials.UriSchemePlaceholder,' in component.read_text()
    assert f"{found.group(1)}://" == control_plane.STORAGE_SPEC_PREFIX


def _storage_initializer(objects: list[Obj]) -> dict[str, Any]:
    config = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "inferenceservice-config"
    )
    result: dict[str, Any] = json.loads(config["data"]["storageInitializer"])
    return result


@pytest.mark.parametrize(("case", "name"), KSERVE_CASES, ids=[c for c, _ in KSERVE_CASES])
def test_kserve_materialises_oci_as_a_modelcar_and_mounts_oci_native(
    case: str, name: str, render_release: Render, charts_workdir: Path
) -> None:
    config = _storage_initializer(render_release(case, name).objects)
    # The OCI switch is on, which registers the webhook step that mounts oci+native:// as an
    # ImageVolume (v0.20.0 pkg/webhook/admission/pod/mutator.go:141-143); no ociModelMode is
    # rendered, so a bare oci:// stays a modelcar (pkg/types/config.go:48-56), whose pods the
    # stack rules refuse under Pod Security "restricted".
    assert config["enableModelcar"] is True
    assert "ociModelMode" not in config
    # The value modelplane pins is the one the chart reads: turned off, the switch goes off.
    release = release_of(case, name)
    assert isinstance(release, Chart)
    values = copy.deepcopy(release.values)
    values["kserve"]["storage"]["enableModelcar"] = False
    off = helm.render(
        release.model_copy(update={"values": values}),
        kubernetes=stack(case).versions.kubernetes,
        workdir=charts_workdir,
    )
    assert _storage_initializer(off.objects)["enableModelcar"] is False


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


DELIBERATE_DEFAULTS: dict[str, str] = {
    "cert-manager: crds.keep": "keeps cert-manager's CRDs (and every Certificate) if the release is ever "
    "removed; pinned so a changed default cannot turn that off",
    "kube-prometheus-stack: prometheus.prometheusSpec.enableAdminAPI": "the admin API can delete series; "
    "pinned off whatever the default",
    "kserve: kserve.controller.gateway.ingressGateway.createGateway": "modelplane authors the Gateway; pinned "
    "so a changed default cannot add a second one",
    "kserve: kserve.controller.gateway.ingressGateway.kserveGateway": "computed from controlPlane.ingress; "
    "equal to the chart's default only while those settings are",
    "kserve: kserve.storagecontainer.enabled": "states the intent; createSharedResources=false is what "
    "takes the chart's ClusterStorageContainer away",
    "kserve: kserve.storage.enableModelcar": "KServe's pod webhook mounts oci+native:// models only while "
    "an OCI mode is on; pinned so a changed default cannot silently stop ImageVolume models",
    "gpu-operator: devicePlugin.config.create": "the device-plugin ConfigMap is modelplane's; pinned so the "
    "chart never renders one of the same name",
    "gpu-operator: migManager.config.create": "the mig-parted ConfigMap is modelplane's; pinned so the chart "
    "never renders one of the same name",
    "gpu-operator: migManager.config.default": "MIG off on nodes without a pool's label; pinned with the "
    "ConfigMap that defines it",
    "gpu-operator: daemonsets.priorityClassName": "node agents must not be evicted before models; pinned",
    "gpu-operator: dcgmExporter.serviceMonitor.enabled": "the GPU pool rules read what it scrapes; pinned so a "
    "changed default cannot stop it",
}
"""Values that render the same as the chart's default in every stack, kept on purpose."""


def _without(values: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``values`` without one leaf (and without maps that leaf leaves empty)."""
    result = copy.deepcopy(values)
    parents = [result]
    for key in path[:-1]:
        parents.append(parents[-1][key])
    del parents[-1][path[-1]]
    for parent, key in zip(reversed(parents[:-1]), reversed(path[:-1]), strict=True):
        if parent[key] == {}:
            del parent[key]
    return result


def _normalised(objects: list[Obj]) -> list[str]:
    """Rendered objects comparable across renders: Grafana's random admin password and its checksum out."""
    result = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        if obj["kind"] == "Secret":
            obj["data"] = sorted(obj.get("data") or {})
        for meta in (
            obj.get("metadata") or {},
            ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {},
        ):
            annotations = meta.get("annotations") or {}
            for key in [k for k in annotations if k.startswith("checksum/")]:
                del annotations[key]
        result.append(json.dumps(obj, sort_keys=True))
    return sorted(result)


def test_every_value_changes_what_a_chart_renders(render_release: Render, charts_workdir: Path) -> None:
    """A value that renders the same as leaving it out does nothing: a misread key or a repeated default.

    The check that caught ``storagecontainer.enabled: false`` and Grafana's sidecar values.
    """
    effective: set[tuple[str, str]] = set()
    seen: set[tuple[str, str, str]] = set()
    for case, name in chart_cases():
        release = release_of(case, name)
        assert isinstance(release, Chart)
        rendered = None
        for path in helm.value_paths(release.values):
            dotted = ".".join(path)
            key = (release.release, dotted, json.dumps(release.values, sort_keys=True))
            if (release.release, dotted) in effective or key in seen:
                continue
            seen.add(key)
            rendered = rendered or _normalised(render_release(case, name).objects)
            probe = release.model_copy(update={"values": _without(release.values, path)})
            kubernetes = stack(case).versions.kubernetes
            if (
                _normalised(helm.render(probe, kubernetes=kubernetes, workdir=charts_workdir).objects)
                != rendered
            ):
                effective.add((release.release, dotted))
    probed = {f"{r}: {p}" for r, p, _ in seen}
    no_effect = probed - {f"{r}: {p}" for r, p in effective}
    assert sorted(no_effect - set(DELIBERATE_DEFAULTS)) == [], "\n".join(
        sorted(no_effect - set(DELIBERATE_DEFAULTS))
    )
    # An entry for a value that now has an effect, or that modelplane no longer sets, is stale.
    assert sorted(set(DELIBERATE_DEFAULTS) - no_effect) == []


PROMETHEUS_CASES = [c for c in chart_cases() if c[1] == "kube-prometheus-stack"]


@pytest.mark.parametrize(("case", "name"), PROMETHEUS_CASES, ids=[c for c, _ in PROMETHEUS_CASES])
def test_prometheus_keeps_its_history_on_a_volume_with_the_stacks_retention(
    case: str, name: str, render_release: Render
) -> None:
    """The Prometheus resource the chart renders: a volume claim per replica, time and size retention."""
    monitoring = stack(case).monitoring
    (prometheus,) = [o for o in render_release(case, name).objects if o["kind"] == "Prometheus"]
    spec = prometheus["spec"]
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == monitoring.storage
    assert claim["accessModes"] == ["ReadWriteOnce"]
    ha = stack(case).stack.tier != "dev"
    assert spec["retention"] == f"{monitoring.retention_days or (15 if ha else 2)}d"
    assert spec["retentionSize"] == "43520MB"  # 85% of the default 50Gi, in Prometheus's MB (2^20 bytes)


def _grafana_admin_sources(objects: list[Obj]) -> set[str]:
    (grafana,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("grafana")
    ]
    containers = grafana["spec"]["template"]["spec"]["containers"]
    return {
        env["valueFrom"]["secretKeyRef"]["name"]
        for c in containers
        for env in c.get("env", [])
        if env["name"].startswith("GF_SECURITY_ADMIN_") and "secretKeyRef" in env.get("valueFrom", {})
    }


def test_grafana_reads_its_admin_credentials_from_the_secret_the_stack_names(render_release: Render) -> None:
    """prod names monitoring.grafanaAdminSecret: the chart renders no admin Secret of its own."""
    objects = render_release("prod", "kube-prometheus-stack").objects
    assert stack("prod").monitoring.grafana_admin_secret == "grafana-admin"
    assert _grafana_admin_sources(objects) == {"grafana-admin"}
    assert not [o for o in objects if o["kind"] == "Secret" and "admin-password" in (o.get("data") or {})]


def test_without_a_secret_grafana_keeps_a_generated_password_in_its_own_secret(
    render_release: Render,
) -> None:
    objects = render_release("dev", "kube-prometheus-stack").objects
    (secret,) = [o for o in objects if o["kind"] == "Secret" and "admin-password" in (o.get("data") or {})]
    assert _grafana_admin_sources(objects) == {secret["metadata"]["name"]}


# --- GPU observability: what the charts make of the DCGM and kube-state-metrics values ---------


def test_the_gpu_operator_scrapes_dcgm_with_the_node_as_a_label(render_release: Render) -> None:
    rendered = render_release("prod", "gpu-operator")
    (policy,) = [o for o in rendered.objects if o["kind"] == "ClusterPolicy"]
    ours = release_of("prod", "gpu-operator").values["dcgmExporter"]["serviceMonitor"]
    # The chart hands the values to the ClusterPolicy, from which the operator builds the ServiceMonitor.
    monitor = policy["spec"]["dcgmExporter"]["serviceMonitor"]
    assert {key: monitor[key] for key in ours} == ours
    # The chart's default timeout stays, within the interval.
    assert monitor["scrapeTimeout"] == "10s"
    assert policy["spec"]["dcgmExporter"]["enabled"] is True
    assert ours["relabelings"] == [
        {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}
    ]


def _kube_state_metrics_args(render_release: Render, case: str) -> list[str]:
    rendered = render_release(case, "kube-prometheus-stack")
    (deployment,) = [
        o
        for o in rendered.objects
        if o["kind"] == "Deployment" and "kube-state-metrics" in o["metadata"]["name"]
    ]
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_kube_state_metrics_exports_the_model_and_gpu_pool_labels(render_release: Render) -> None:
    args = _kube_state_metrics_args(render_release, "prod")
    keys = gpu_rules.node_label_keys(list(stack("prod").gpu_pools))
    assert keys
    pods = "pods=[modelplane.dev/model,modelplane.dev/version]"
    assert f"--metric-labels-allowlist={pods},nodes=[{','.join(keys)}]" in args


def test_without_gpu_pools_kube_state_metrics_exports_the_model_labels_only(render_release: Render) -> None:
    args = _kube_state_metrics_args(render_release, "dev")
    assert "--metric-labels-allowlist=pods=[modelplane.dev/model,modelplane.dev/version]" in args


def test_grafanas_sidecar_loads_the_dashboard_config_maps(render_release: Render) -> None:
    rendered = render_release("prod", "kube-prometheus-stack")
    (grafana,) = [
        o for o in rendered.objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("grafana")
    ]
    (sidecar,) = [
        c for c in grafana["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana-sc-dashboard"
    ]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    # The sidecar watches ConfigMaps with this label and value in every namespace.
    assert (env["LABEL"], env["LABEL_VALUE"], env["NAMESPACE"]) == (
        dashboards.SIDECAR_LABEL,
        dashboards.SIDECAR_LABEL_VALUE,
        "ALL",
    )
    assert env["RESOURCE"] in ("configmap", "both")
    ours = [
        o for o in platform("prod").objects if dashboards.SIDECAR_LABEL in o["metadata"].get("labels", {})
    ]
    assert ours and all(o["kind"] == "ConfigMap" for o in ours)
    assert all(o["metadata"]["labels"][dashboards.SIDECAR_LABEL] == env["LABEL_VALUE"] for o in ours)

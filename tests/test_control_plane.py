"""The control plane: upstream releases, their order and options, authored objects and guards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi.resource as resource_module
import pytest
import yaml

from modelplane import control_plane
from modelplane.build import build
from modelplane.control_plane import ControlPlaneArgs, charts
from modelplane.kube import LABEL_COMPONENT
from modelplane.render import (
    argocd_objects,
    chart_objects,
    flux_objects,
    flux_sync,
    gitops_tree,
    staged_charts,
)
from modelplane.resources.platform import ControlPlane
from modelplane.resources.upstream import ServerSideApplyDisabledError
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.upstream import Chart, Versions
from modelplane.validation import CrdSchemas, validate_objects
from tests.conftest import CRD_DIR, STACKS, schema_problems

KNATIVE_SERVING_CRD = CRD_DIR / "operator.knative.dev" / "knativeserving.yaml"


def _stack(**overrides: Any) -> ServingPlatformArgs:
    base: dict[str, Any] = yaml.safe_load((STACKS / "dev.yaml").read_text())
    # dev's graph calls dev's models; a test that replaces the models leaves it out.
    base.pop("graphs", None)
    base.update(overrides)
    return ServingPlatformArgs.model_validate(base)


def _charts(stack: ServingPlatformArgs) -> dict[str, Chart]:
    return {c.release: c for c in build(stack).charts}


# --- releases, order, values --------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "releases"),
    [
        (
            "dev",
            [
                "cert-manager",
                "envoy-gateway",
                "knative-operator",
                "kserve",
                "kserve-crd",
                "kube-prometheus-stack",
            ],
        ),
        (
            "staging",
            [
                "cert-manager",
                "envoy-gateway",
                "gpu-operator",
                "keda",
                "kserve",
                "kserve-crd",
                "kube-prometheus-stack",
            ],
        ),
        (
            "prod",
            [
                "cert-manager",
                "envoy-gateway",
                "gpu-operator",
                "keda",
                "kserve",
                "kserve-crd",
                "kserve-llmisvc",
                "kserve-llmisvc-configs",
                "kserve-llmisvc-crd",
                "kube-prometheus-stack",
                "modelmesh",
            ],
        ),
    ],
)
def test_example_stack_releases(stack: str, releases: list[str]) -> None:
    assert sorted(_charts(load_stack(STACKS / f"{stack}.yaml"))) == releases


def test_versions_come_from_the_stack_pins() -> None:
    pins = Versions(kserve="v0.19.1", cert_manager="v1.16.2", envoy_gateway="v1.7.0", knative="v1.20.0")
    got = {
        c.release: c.version for c in charts(ControlPlaneArgs(), pins, tier="dev", knative=True, keda=False)
    }
    assert got == {
        "cert-manager": "v1.16.2",
        "envoy-gateway": "v1.7.0",
        "knative-operator": "v1.20.0",
        "kserve": "v0.19.1",
        "kserve-crd": "v0.19.1",
    }


def test_kserve_controller_installs_last_after_every_dependency() -> None:
    result = charts(ControlPlaneArgs(), Versions(), tier="prod", knative=True, keda=True)
    kserve = next(c for c in result if c.release == "kserve")
    assert set(kserve.depends_on) == {
        "cert-manager",
        "kserve-crd",
        "envoy-gateway",
        "keda",
        "knative-operator",
    }
    assert result[-1].release == "kserve"
    waves = {c.release: c.wave for c in result}
    for dep in kserve.depends_on:
        assert waves[dep] < waves["kserve"]


def test_waves_leave_room_for_objects_of_a_release() -> None:
    waves = {
        c.release: c.wave
        for c in charts(ControlPlaneArgs(), Versions(), tier="dev", knative=True, keda=False)
    }
    assert waves == {
        "cert-manager": 0,
        "envoy-gateway": 0,
        "knative-operator": 0,
        "kserve-crd": 1,
        "kserve": 2,
    }


def test_istio_network_layer_installs_istio_before_the_knative_operator() -> None:
    args = ControlPlaneArgs(network_layer="istio")
    by_name = {c.release: c for c in charts(args, Versions(), tier="dev", knative=True, keda=False)}
    assert by_name["istiod"].depends_on == ("istio-base",)
    assert by_name["istio-ingressgateway"].depends_on == ("istiod",)
    assert by_name["knative-operator"].depends_on == ("istio-ingressgateway",)
    serving = by_name["knative-operator"].objects[1]
    assert serving["spec"]["ingress"] == {"istio": {"enabled": True}}
    assert serving["spec"]["config"]["network"] == {"ingress-class": "istio.ingress.networking.knative.dev"}
    assert "disableIstioVirtualHost" not in by_name["kserve"].values["kserve"]["controller"]["gateway"]


def test_kourier_is_the_default_network_layer_and_disables_istio_virtual_hosts() -> None:
    by_name = {
        c.release: c for c in charts(ControlPlaneArgs(), Versions(), tier="dev", knative=True, keda=False)
    }
    assert "istio-base" not in by_name
    assert by_name["knative-operator"].objects[1]["spec"]["ingress"] == {"kourier": {"enabled": True}}
    assert by_name["kserve"].values["kserve"]["controller"]["gateway"]["disableIstioVirtualHost"] is True


def test_no_knative_when_no_model_uses_it() -> None:
    assert "knative-operator" not in _charts(load_stack(STACKS / "staging.yaml"))


@pytest.mark.parametrize("release", ["cert-manager", "kserve-crd", "envoy-gateway", "knative-operator"])
def test_crd_releases_are_marked(release: str) -> None:
    assert _charts(load_stack(STACKS / "dev.yaml"))[release].crds


def test_kserve_values_are_computed_from_typed_args() -> None:
    args = ControlPlaneArgs.model_validate(
        {
            "defaultDeploymentMode": "knative",
            "ingress": {
                "domain": "m.example.org",
                "urlScheme": "http",
                "gatewayNamespace": "edge",
                "gatewayName": "gw",
            },
        }
    )
    kserve = next(
        c for c in charts(args, Versions(), tier="dev", knative=True, keda=False) if c.release == "kserve"
    )
    values = kserve.values["kserve"]
    assert values["controller"]["deploymentMode"] == "Knative"
    assert values["controller"]["gateway"]["domain"] == "m.example.org"
    assert values["controller"]["gateway"]["urlScheme"] == "http"
    assert values["controller"]["gateway"]["ingressGateway"]["kserveGateway"] == "edge/gw"
    # The chart's own ClusterStorageContainer is off (modelplane authors `default`); what else
    # createSharedResources gates is back on. tests/upstream renders the chart to prove it.
    assert values["createSharedResources"] is False
    assert values["storagecontainer"] == {"enabled": False}
    assert values["inferenceServiceConfig"] == values["certManager"] == {"enabled": True}


@pytest.mark.parametrize(("tier", "replicas"), [("dev", 1), ("staging", 2), ("prod", 2)])
def test_ha_defaults_by_tier(tier: str, replicas: int) -> None:
    by_name = {
        c.release: c for c in charts(ControlPlaneArgs(), Versions(), tier=tier, knative=False, keda=True)
    }
    cert = by_name["cert-manager"].values
    assert (
        cert["replicaCount"]
        == cert["webhook"]["replicaCount"]
        == cert["cainjector"]["replicaCount"]
        == replicas
    )
    assert cert["podDisruptionBudget"]["enabled"] is (replicas > 1)
    assert by_name["envoy-gateway"].values["deployment"]["replicas"] == replicas
    assert ("affinity" in by_name["kserve"].values["kserve"]["controller"]) is (replicas > 1)


@pytest.mark.parametrize(("tier", "count"), [("dev", 0), ("staging", 2), ("prod", 2)])
def test_controller_pdb_and_replica_floor_outside_dev(tier: str, count: int) -> None:
    objects = control_plane.availability_objects(ControlPlaneArgs(), stack="s", tier=tier)
    assert len(objects) == count
    if objects:
        pdb, hpa = objects
        assert pdb["spec"]["minAvailable"] == 1
        assert pdb["spec"]["selector"] == {"matchLabels": {"control-plane": "kserve-controller-manager"}}
        assert hpa["spec"]["minReplicas"] == hpa["spec"]["maxReplicas"] == 2


def test_controller_replicas_override_sizes_the_floor() -> None:
    hpa = control_plane.availability_objects(ControlPlaneArgs(controller_replicas=3), stack="s", tier="prod")[
        1
    ]
    assert hpa["spec"]["minReplicas"] == 3


# --- Knative configuration ----------------------------------------------------------------


def test_autoscaler_settings_go_into_knative_serving_spec_config() -> None:
    stack = _stack(autoscaler={"stableWindow": "2m", "scaleToZeroGracePeriod": "45s"})
    serving = _charts(stack)["knative-operator"].objects[1]
    assert serving["kind"] == "KnativeServing"
    assert serving["spec"]["config"]["autoscaler"] == {
        "scale-to-zero-grace-period": "45s",
        "stable-window": "2m",
    }
    assert serving["spec"]["version"] == "1.21.1"


def test_gpu_pools_turn_on_knative_node_selection_features() -> None:
    stack = _stack(gpuPools=[{"name": "t4", "product": "Tesla-T4", "minNodes": 1}])
    features = _charts(stack)["knative-operator"].objects[1]["spec"]["config"]["features"]
    assert features == {
        "kubernetes.podspec-affinity": "enabled",
        "kubernetes.podspec-nodeselector": "enabled",
        "kubernetes.podspec-priorityclassname": "enabled",
        "kubernetes.podspec-securitycontext": "enabled",
        "kubernetes.podspec-tolerations": "enabled",
    }


def test_knative_admits_the_pod_security_context_without_gpu_pools() -> None:
    # Knative's field mask refuses a pod securityContext unless this flag is on (tests/cluster).
    config = _charts(_stack())["knative-operator"].objects[1]["spec"]["config"]
    assert config["features"] == {"kubernetes.podspec-securitycontext": "enabled"}


# --- guards -------------------------------------------------------------------------------

GPU_MODEL = {
    "name": "gen",
    "tenant": "fraud",
    "runtime": "huggingface",
    "format": {"name": "huggingface", "version": "1"},
    "storage": {"uri": "hf://org/model"},
    "version": "v1",
    "deploymentMode": "knative",
    "resources": {"gpu": 1, "pool": "a10"},
    "scaling": {"minReplicas": 0, "maxReplicas": 2, "progressDeadline": "5m"},
}
# A static node group that grows from zero: a cold start may wait for a new node.
POOLS = [{"name": "a10", "product": "NVIDIA-A10G", "nodeProvisioningTime": "12m", "maxNodes": 2}]


def test_gpu_scale_to_zero_guard_warns_in_dev() -> None:
    rendered = build(_stack(gpuPools=POOLS, models=[GPU_MODEL]))
    assert len(rendered.warnings) == 1
    assert rendered.warnings[0].startswith("models[0].scaling.minReplicas: GPU model may scale to zero")


def test_gpu_knative_model_gets_a_progress_deadline_sized_from_its_pool() -> None:
    model = GPU_MODEL | {"scaling": {"minReplicas": 1, "maxReplicas": 2}}
    isvc = next(
        o for o in build(_stack(gpuPools=POOLS, models=[model])).objects if o["kind"] == "InferenceService"
    )
    assert isvc["spec"]["predictor"]["annotations"] == {"serving.knative.dev/progress-deadline": "22m"}


# --- authored objects pass both schema checks ---------------------------------------------


def _control_plane_objects(stack: ServingPlatformArgs) -> list[dict[str, Any]]:
    return [
        o
        for o in build(stack).objects
        if o["metadata"].get("labels", {}).get(LABEL_COMPONENT) == "control-plane"
    ]


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_control_plane_objects_pass_schemas(name: str, crd_schemas: CrdSchemas) -> None:
    stack = load_stack(STACKS / f"{name}.yaml")
    objects = _control_plane_objects(stack)
    kinds = sorted({o["kind"] for o in objects})
    expected = ["ClusterStorageContainer", "Gateway", "GatewayClass"]
    if stack.stack.tier != "dev":
        expected += ["HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert kinds == sorted(expected)
    assert schema_problems(objects, stack, crd_schemas) == []


def test_storage_container_meets_pod_security_restricted() -> None:
    container = control_plane.storage_container(ControlPlaneArgs(), Versions(), stack="s")["spec"][
        "container"
    ]
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(container["resources"]) == {"requests", "limits"}


def test_knative_serving_namespace_passes_kubernetes_validate() -> None:
    namespace = _charts(load_stack(STACKS / "dev.yaml"))["knative-operator"].objects[0]
    assert validate_objects([namespace], kubernetes_version="1.33", crds=None) == []


def test_knative_serving_passes_its_crd_schema() -> None:
    if not KNATIVE_SERVING_CRD.is_file():
        pytest.skip(
            f"KnativeServing CRD schema not found at {KNATIVE_SERVING_CRD} "
            "(run `modelplane schemas fetch` to download it)"
        )
    serving = _charts(load_stack(STACKS / "dev.yaml"))["knative-operator"].objects[1]
    assert CrdSchemas.from_dir(KNATIVE_SERVING_CRD.parent).validate(serving) == []


# --- GitOps output ------------------------------------------------------------------------


def test_flux_stages_knative_serving_between_infrastructure_and_the_kserve_controller() -> None:
    rendered = build(load_stack(STACKS / "dev.yaml"))
    early, staged, late = staged_charts(rendered.charts)
    assert "kserve" not in [c.release for c in early]
    assert [c.release for c in late] == ["kserve"]
    assert [o["kind"] for o in staged] == ["Namespace", "KnativeServing"]
    sync = flux_sync("dev", "./deploy/dev", staged=True)
    assert [(k["metadata"]["name"], k["spec"].get("dependsOn")) for k in sync] == [
        ("dev-infrastructure", None),
        ("dev-configuration", [{"name": "dev-infrastructure"}]),
        ("dev-controllers", [{"name": "dev-configuration"}]),
        ("dev-platform", [{"name": "dev-controllers"}]),
    ]
    files = gitops_tree(rendered.objects, rendered.charts, stack="dev")
    assert "controllers/flux-system--helmrelease--kserve.yaml" in files
    assert "infrastructure/flux-system--helmrelease--kserve.yaml" not in files


def test_without_knative_the_layout_keeps_two_stages() -> None:
    rendered = build(load_stack(STACKS / "prod.yaml"))
    files = gitops_tree(rendered.objects, rendered.charts, stack="prod")
    assert not any(f.startswith(("configuration/", "controllers/")) for f in files)


def test_crd_releases_are_never_pruned() -> None:
    rendered = build(load_stack(STACKS / "dev.yaml"))
    flux = {
        o["metadata"]["name"]: o
        for o in flux_objects(rendered.charts, stack="dev")
        if o["kind"] == "HelmRelease"
    }
    assert flux["kserve-crd"]["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/prune": "disabled"}
    assert "annotations" not in flux["kserve"]["metadata"]
    argo = {o["metadata"]["name"]: o for o in argocd_objects(rendered.charts, stack="dev")}
    crd_app = argo["dev-kserve-crd"]
    assert crd_app["metadata"]["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
    assert crd_app["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert "ServerSideApply=true" in crd_app["spec"]["syncPolicy"]["syncOptions"]


def test_argocd_waves_put_knative_serving_between_operator_and_kserve() -> None:
    rendered = build(load_stack(STACKS / "dev.yaml"))
    waves = {
        o["metadata"]["name"]: int(o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for o in argocd_objects(rendered.charts, stack="dev") + chart_objects(rendered.charts)
    }
    assert waves["dev-knative-operator"] < waves["knative-serving"] < waves["dev-kserve"]


@pytest.mark.parametrize("name", ["dev", "staging", "prod"])
def test_gitops_upstream_objects_pass_schemas(name: str, crd_schemas: CrdSchemas) -> None:
    stack = load_stack(STACKS / f"{name}.yaml")
    rendered = build(stack)
    _, staged, _ = staged_charts(rendered.charts)
    objects = (
        flux_objects(rendered.charts, stack=name)
        + flux_sync(name, "./deploy/x", staged=bool(staged))
        + argocd_objects(rendered.charts, stack=name)
    )
    assert schema_problems(objects, stack, crd_schemas) == []


# --- Pulumi: component tree, options, order -----------------------------------------------


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registered resource's type, name and inputs."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources[args.name] = {"type": args.typ, "inputs": args.inputs}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class Registration:
    def __init__(self, ty: str, name: str, opts: pulumi.ResourceOptions | None, res: pulumi.Resource) -> None:
        self.type, self.name, self.opts, self.resource = ty, name, opts or pulumi.ResourceOptions(), res


@pytest.fixture
def registrations(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Registration]]:
    recorded: dict[str, Registration] = {}
    original = resource_module.register_resource

    def record(res: pulumi.Resource, ty: str, name: str, *args: Any, **kwargs: Any) -> None:
        opts = args[4] if len(args) > 4 else kwargs.get("opts")
        recorded[name] = Registration(ty, name, opts, res)
        original(res, ty, name, *args, **kwargs)

    monkeypatch.setattr(resource_module, "register_resource", record)
    pulumi.runtime.set_mocks(RecordingMocks(), project="modelplane", stack="test", preview=False)
    yield recorded


def _control_plane(stack_file: Path, protect: bool) -> Any:
    rendered = build(load_stack(stack_file))
    return ControlPlane("cp", rendered.charts, protect_crds=protect)


def _names(resources: list[pulumi.Resource] | None, registrations: dict[str, Registration]) -> set[str]:
    by_id = {id(r.resource): name for name, r in registrations.items()}
    return {by_id[id(r)] for r in resources or []}


def test_component_tree(registrations: dict[str, Registration]) -> None:
    _control_plane(STACKS / "dev.yaml", protect=False)
    assert registrations["cp"].type == "modelplane:index:ControlPlane"
    children = {n: r.type for n, r in registrations.items() if r.type.startswith("kubernetes:")}
    assert children == {
        "cp-cert-manager": "kubernetes:helm.sh/v3:Release",
        "cp-envoy-gateway": "kubernetes:helm.sh/v3:Release",
        "cp-knative-operator": "kubernetes:helm.sh/v3:Release",
        "cp-kserve-crd": "kubernetes:helm.sh/v3:Release",
        "cp-kserve": "kubernetes:helm.sh/v3:Release",
        "cp-kube-prometheus-stack": "kubernetes:helm.sh/v3:Release",
        "knative-operator-namespace:knative-serving": "kubernetes:core/v1:Namespace",
        "knative-operator-knativeserving:knative-serving/knative-serving": "kubernetes:operator.knative.dev/v1beta1:KnativeServing",
    }
    cp = registrations["cp"].resource
    assert all(r.opts.parent is cp for r in registrations.values() if r.type.startswith("kubernetes:"))


@pytest.mark.parametrize("protect", [True, False])
def test_crd_releases_are_retained_and_protected(
    registrations: dict[str, Registration], protect: bool
) -> None:
    _control_plane(STACKS / "dev.yaml", protect=protect)
    for name in ("cp-cert-manager", "cp-kserve-crd", "cp-envoy-gateway", "cp-knative-operator"):
        assert registrations[name].opts.retain_on_delete is True, name
        assert bool(registrations[name].opts.protect) is protect, name
    assert not registrations["cp-kserve"].opts.retain_on_delete
    assert not registrations["cp-kserve"].opts.protect


def test_kserve_waits_for_its_dependencies_and_the_knative_serving(
    registrations: dict[str, Registration],
) -> None:
    _control_plane(STACKS / "dev.yaml", protect=False)
    assert _names(registrations["cp-kserve"].opts.depends_on, registrations) == {
        "cp-cert-manager",
        "cp-kserve-crd",
        "cp-envoy-gateway",
        "cp-knative-operator",
        "knative-operator-namespace:knative-serving",
        "knative-operator-knativeserving:knative-serving/knative-serving",
    }
    serving = registrations["knative-operator-knativeserving:knative-serving/knative-serving"]
    assert _names(serving.opts.depends_on, registrations) == {"knative-operator-namespace:knative-serving"}
    assert _names(registrations["cp-kserve-crd"].opts.depends_on, registrations) == {"cp-cert-manager"}


def test_releases_register_in_install_order(registrations: dict[str, Registration]) -> None:
    _control_plane(STACKS / "dev.yaml", protect=False)
    order = [n for n in registrations if n.startswith("cp-")]
    assert order.index("cp-cert-manager") < order.index("cp-kserve-crd") < order.index("cp-kserve")


def test_knative_serving_waits_for_ready(registrations: dict[str, Registration]) -> None:
    cp = _control_plane(STACKS / "dev.yaml", protect=False)
    serving = cp.chart_objects["knative-operator"][1]
    assert (
        serving is registrations["knative-operator-knativeserving:knative-serving/knative-serving"].resource
    )
    obj = _charts(load_stack(STACKS / "dev.yaml"))["knative-operator"].objects[1]
    assert obj["metadata"]["annotations"] == {"pulumi.com/waitFor": "condition=Ready"}


def test_group_dependencies_include_chart_objects(registrations: dict[str, Registration]) -> None:
    rendered = build(load_stack(STACKS / "dev.yaml"))

    cp = ControlPlane("cp", rendered.charts, protect_crds=False)
    deps = cp.group_dependencies(rendered.charts)
    assert _names(deps["serving.kserve.io"], registrations) == {"cp-kserve-crd", "cp-kserve"}
    assert _names(deps["operator.knative.dev"], registrations) == {
        "cp-knative-operator",
        "knative-operator-namespace:knative-serving",
        "knative-operator-knativeserving:knative-serving/knative-serving",
    }


def test_client_side_apply_is_refused(registrations: dict[str, Registration]) -> None:
    pulumi.runtime.set_config("kubernetes:enableServerSideApply", "false")
    try:
        with pytest.raises(ServerSideApplyDisabledError, match="InferenceService CRD is ~638 KB"):
            _control_plane(STACKS / "prod.yaml", protect=True)
    finally:
        pulumi.runtime.set_config("kubernetes:enableServerSideApply", "true")

"""GPU runtime pools: resources, node contract, consistency checks, GPU operator config, NodePools, quotas."""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest
import yaml

from modelplane import gpu_operator
from modelplane.build import build
from modelplane.errors import StackError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.resources.mesh import GpuRuntimePool
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack
from modelplane.tenant import TenantArgs, gpu_quota_problems, quota_resources
from modelplane.validation import CrdSchemas
from tests.conftest import schema_problems
from tests.pulumi_mocks import ResourceRecorder as _Recorder
from tests.pulumi_mocks import install_recorder

EXCLUSIVE = {"name": "h100", "product": "NVIDIA-H100", "gpusPerNode": 8, "maxNodes": 4}
MIG = {
    "name": "a100-mig",
    "product": "NVIDIA-A100",
    "gpusPerNode": 8,
    "sharing": {"mode": "mig", "strategy": "mixed", "profiles": {"1g.10gb": 4, "3g.40gb": 1}},
    "minNodes": 1,
    "maxNodes": 2,
}
SHARED = {
    "name": "l4",
    "product": "NVIDIA-L4",
    "gpusPerNode": 4,
    "sharing": {"mode": "time-slicing", "replicas": 4},
    "minNodes": 1,
    "maxNodes": 3,
}


def _model(name: str, **resources: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "team",
        "runtime": "triton",
        "format": {"name": "onnx", "version": "1"},
        "storage": {"uri": f"s3://b/{name}"},
        "version": "v1",
        "resources": resources,
    }


def _stack(
    pools: list[dict[str, Any]], models: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "stack": {"name": "t", "tier": "prod"},
        "gpuPools": copy.deepcopy(pools),
        "tenants": [{"name": "team"}],
        "models": models or [],
        **extra,
    }


def _errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(StackError) as err:
        parse_stack(data, "s.yaml")
    return err.value.problems


@pytest.mark.parametrize(
    ("pool", "profile", "resource", "capacity"),
    [
        (EXCLUSIVE, None, "nvidia.com/gpu", {"nvidia.com/gpu": 8}),
        (SHARED, None, "nvidia.com/gpu.shared", {"nvidia.com/gpu.shared": 16}),
        (
            MIG,
            "3g.40gb",
            "nvidia.com/mig-3g.40gb",
            {"nvidia.com/mig-1g.10gb": 32, "nvidia.com/mig-3g.40gb": 8},
        ),
        (
            MIG | {"sharing": {"mode": "mig", "strategy": "single", "profiles": {"1g.10gb": 7}}},
            None,
            "nvidia.com/gpu",
            {"nvidia.com/gpu": 56},
        ),
    ],
    ids=["exclusive", "time-slicing", "mig-mixed", "mig-single"],
)
def test_resource_name_and_node_capacity(
    pool: dict[str, Any], profile: str | None, resource: str, capacity: dict[str, int]
) -> None:
    args = GpuPoolArgs.model_validate(pool)
    assert args.resource_name(profile) == resource
    assert args.node_capacity() == capacity


def test_node_contract_carries_selector_device_plugin_and_mig_labels() -> None:
    contract = GpuPoolArgs.model_validate(MIG).node_contract()
    assert contract["labels"] == {
        "modelplane.dev/gpu-pool": "a100-mig",
        "nvidia.com/device-plugin.config": "a100-mig",
        "nvidia.com/mig.config": "modelplane-a100-mig",
    }
    assert contract["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


@pytest.mark.parametrize(
    ("pools", "models", "expected"),
    [
        (
            [EXCLUSIVE | {"provisioner": "karpenter", "maxNodes": None}],
            [],
            "s.yaml: gpuPools[0].maxNodes: pool 'h100' is provisioned by Karpenter but has no maxNodes: its NodePool "
            "would have no limit and Karpenter could add GPU nodes without bound; set maxNodes",
        ),
        (
            [EXCLUSIVE | {"maxNodes": None}],
            [],
            "s.yaml: gpuPools[0].maxNodes: static pool 'h100' has no nodes (minNodes 0, no maxNodes); set the node "
            "group's size in minNodes/maxNodes, or use provisioner karpenter",
        ),
        (
            [MIG],
            [_model("a", gpu=1, pool="a100-mig", migProfile="2g.20gb")],
            "s.yaml: models[0].resources.migProfile: pool 'a100-mig' does not offer MIG profile '2g.20gb' "
            '(it offers 1g.10gb, 3g.40gb) (got "2g.20gb")',
        ),
        (
            [MIG | {"sharing": {"mode": "mig", "strategy": "single", "profiles": {"1g.10gb": 7}}}],
            [_model("a", gpu=1, pool="a100-mig", migProfile="1g.10gb")],
            "s.yaml: models[0].resources.migProfile: pool 'a100-mig' uses MIG strategy 'single': its 1g.10gb "
            "devices are advertised as nvidia.com/gpu and cannot be requested by profile; remove migProfile, or "
            "use a 'mixed' pool (got \"1g.10gb\")",
        ),
        (
            [SHARED],
            [_model("a", gpu=1, pool="l4", exclusiveGpuMemory=True)],
            "s.yaml: models[0].resources.exclusiveGpuMemory: pool 'l4' is time-sliced (no memory isolation); "
            "use an exclusive or MIG pool (got true)",
        ),
        (
            [SHARED],
            [_model("a", gpu=2, pool="l4")],
            "s.yaml: models[0].resources.gpu: asks for 2 shares of time-sliced pool 'l4', which refuses more than "
            "one per pod (more shares of one GPU add no compute or memory); ask for 1, or use an exclusive or MIG "
            "pool (got 2)",
        ),
        (
            [EXCLUSIVE],
            [_model("a", gpu=9, pool="h100")],
            "s.yaml: models[0].resources.gpu: asks for 9 GPUs but a node of pool 'h100' has 8 (got 9)",
        ),
        (
            [EXCLUSIVE],
            [_model("a", gpu=1, pool="nope")],
            's.yaml: models[0].resources.pool: unknown GPU pool (gpuPools: h100) (got "nope")',
        ),
    ],
    ids=[
        "karpenter-no-limit",
        "static-no-nodes",
        "mig-profile-not-offered",
        "mig-single-names-profile",
        "exclusive-memory-time-sliced",
        "time-sliced-more-than-one",
        "more-gpus-than-a-node",
        "unknown-pool",
    ],
)
def test_inconsistency_is_an_error_naming_both_sides(
    pools: list[dict[str, Any]], models: list[dict[str, Any]], expected: str
) -> None:
    assert expected in _errors(_stack(pools, models))


def test_karpenter_shared_pool_without_min_nodes_is_refused() -> None:
    pool = SHARED | {"provisioner": "karpenter", "minNodes": 0}
    lines = _errors(_stack([pool]))
    assert any(
        line.startswith("s.yaml: gpuPools[0].minNodes: Karpenter cannot grow time-slicing pool 'l4'")
        for line in lines
    )


def test_pools_with_the_same_selector_are_refused() -> None:
    second = EXCLUSIVE | {"name": "other", "nodeLabels": {"modelplane.dev/gpu-pool": "h100"}}
    lines = _errors(_stack([EXCLUSIVE, second]))
    assert any(
        "selects its nodes with the same labels as pool 'h100' (gpuPools[0])" in line for line in lines
    )


def test_mig_pools_with_different_strategies_are_refused() -> None:
    single = MIG | {
        "name": "other",
        "sharing": {"mode": "mig", "strategy": "single", "profiles": {"1g.10gb": 7}},
    }
    lines = _errors(_stack([MIG, single]))
    assert any(
        "MIG pool 'other' uses strategy 'single' but pool 'a100-mig' (gpuPools[0]) uses 'mixed'" in line
        for line in lines
    )


@pytest.mark.parametrize(
    ("quota", "message"),
    [
        ({"pool": "gone", "limit": 1}, "unknown GPU pool (gpuPools: a100-mig, l4)"),
        ({"pool": "l4", "limit": 1, "migProfile": "1g.10gb"}, "pool 'l4' is not a mixed-strategy MIG pool"),
        ({"pool": "a100-mig", "limit": 1, "migProfile": "7g.80gb"}, "does not offer MIG profile '7g.80gb'"),
    ],
)
def test_quota_naming_a_pool_or_profile_that_does_not_exist_is_refused(
    quota: dict[str, Any], message: str
) -> None:
    data = _stack([MIG, SHARED])
    data["tenants"] = [{"name": "team", "gpuQuotas": [quota]}]
    assert any(message in line for line in _errors(data))


def test_device_plugin_config_of_time_sliced_pool() -> None:
    config = gpu_operator.device_plugin_config(GpuPoolArgs.model_validate(SHARED))
    assert config == {
        "version": "v1",
        "flags": {"migStrategy": "none", "failOnInitError": True},
        "sharing": {
            "timeSlicing": {
                "renameByDefault": True,
                "failRequestsGreaterThanOne": True,
                "resources": [{"name": "nvidia.com/gpu", "replicas": 4}],
            }
        },
    }


def test_mig_parted_config_has_a_layout_per_mig_pool_and_mig_off() -> None:
    config = gpu_operator.mig_parted_config(
        [GpuPoolArgs.model_validate(MIG), GpuPoolArgs.model_validate(SHARED)]
    )
    assert config == {
        "version": "v1",
        "mig-configs": {
            "all-disabled": [{"devices": "all", "mig-enabled": False}],
            "modelplane-a100-mig": [
                {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 4, "3g.40gb": 1}}
            ],
        },
    }


def test_chart_points_the_operator_at_modelplane_configmaps() -> None:
    args = parse_stack(_stack([MIG, SHARED | {"taints": [{"key": "pool", "value": "l4"}]}]), "s")
    chart = gpu_operator.chart(list(args.gpu_pools), args.versions)
    assert chart.values["devicePlugin"]["config"] == {
        "create": False,
        "name": "modelplane-device-plugin-config",
        "default": "default",
    }
    assert chart.values["migManager"]["config"]["name"] == "modelplane-mig-parted-config"
    assert chart.values["mig"] == {"strategy": "mixed"}
    assert {"key": "pool", "operator": "Exists", "effect": "NoSchedule"} in chart.values["daemonsets"][
        "tolerations"
    ]


def test_configmaps_hold_one_named_config_per_pool() -> None:
    args = parse_stack(_stack([MIG, SHARED]), "s")
    objects = {o["metadata"]["name"]: o for o in gpu_operator.objects(list(args.gpu_pools), stack="t")}
    device = objects["modelplane-device-plugin-config"]["data"]
    assert sorted(device) == ["a100-mig", "default", "l4"]
    assert yaml.safe_load(device["a100-mig"])["flags"]["migStrategy"] == "mixed"
    mig = yaml.safe_load(objects["modelplane-mig-parted-config"]["data"]["config.yaml"])
    assert sorted(mig["mig-configs"]) == ["all-disabled", "modelplane-a100-mig"]


def test_karpenter_exclusive_pool_gets_a_dynamic_nodepool_with_gpu_and_node_limits() -> None:
    pool = GpuPoolArgs.model_validate(
        EXCLUSIVE | {"provisioner": "karpenter", "karpenter": {"instanceTypes": ["p5.48xlarge"]}}
    )
    node_pool = next(o for o in gpu_operator.objects([pool], stack="t") if o["kind"] == "NodePool")
    assert node_pool["spec"]["limits"] == {"nvidia.com/gpu": "32", "nodes": "4"}
    assert "replicas" not in node_pool["spec"]
    assert node_pool["spec"]["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    ]
    assert {
        "key": "node.kubernetes.io/instance-type",
        "operator": "In",
        "values": ["p5.48xlarge"],
    } in node_pool["spec"]["template"]["spec"]["requirements"]


def test_karpenter_shared_pool_gets_a_static_nodepool_of_min_nodes() -> None:
    pool = GpuPoolArgs.model_validate(MIG | {"provisioner": "karpenter"})
    node_pool = next(o for o in gpu_operator.objects([pool], stack="t") if o["kind"] == "NodePool")
    assert node_pool["spec"]["replicas"] == 1
    assert node_pool["spec"]["limits"] == {"nodes": "2"}
    assert pool.node_limit == 1


def test_pool_objects_pass_both_schema_checks(crd_schemas: CrdSchemas) -> None:
    args = parse_stack(
        _stack(
            [
                MIG | {"provisioner": "karpenter"},
                SHARED,
                EXCLUSIVE | {"name": "h", "provisioner": "karpenter"},
            ],
            [_model("a", gpu=1, pool="l4")],
        ),
        "s",
    )
    assert schema_problems(build(args).objects, args, crd_schemas) == []


def test_models_on_a_pool_run_with_its_priority_class_and_placement() -> None:
    args = parse_stack(_stack([SHARED], [_model("a", gpu=1, pool="l4")]), "s")
    isvc = next(o for o in build(args).objects if o["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["priorityClassName"] == "modelplane-gpu-l4"
    assert predictor["nodeSelector"] == {"modelplane.dev/gpu-pool": "l4"}
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu.shared"] == "1"


def test_quota_per_profile_and_per_pool() -> None:
    pools = [GpuPoolArgs.model_validate(MIG), GpuPoolArgs.model_validate(EXCLUSIVE)]
    tenant = TenantArgs.model_validate(
        {"name": "team", "gpuQuotas": [{"pool": "a100-mig", "limit": 3}, {"pool": "h100", "limit": 2}]}
    )
    assert gpu_quota_problems(tenant, pools, path=("tenants", 0)) == []
    assert quota_resources(tenant, pools) == {
        "nvidia.com/gpu": 2,
        "nvidia.com/mig-1g.10gb": 3,
        "nvidia.com/mig-3g.40gb": 3,
    }


SHARED_RESOURCE = (
    "pool 'h100' advertises nvidia.com/gpu, as pool 'h2' does, and a ResourceQuota counts requests per resource "
    "name, not per pool: {consequence}; give the pools different resources (time-slicing renames to "
    "nvidia.com/gpu.shared, MIG to nvidia.com/mig-<profile>) or drop the quota"
)


@pytest.mark.parametrize(
    ("quotas", "consequences"),
    [
        # Both quoted: one requests.nvidia.com/gpu of 7 the tenant could spend on either pool.
        (
            [{"pool": "h100", "limit": 2}, {"pool": "h2", "limit": 5}],
            {
                0: "its limit and the tenant's quota on 'h2' would add up to one limit the tenant may spend on either",
                1: "",
            },
        ),
        # One quoted: its limit of 2 would also bound the tenant on h2, which it meant to leave open.
        ([{"pool": "h100", "limit": 2}], {0: "it would also cap the tenant's use of pool 'h2'"}),
    ],
)
def test_quota_on_a_resource_two_pools_advertise_is_refused(
    quotas: list[dict[str, Any]], consequences: dict[int, str]
) -> None:
    pools = [GpuPoolArgs.model_validate(EXCLUSIVE), GpuPoolArgs.model_validate(EXCLUSIVE | {"name": "h2"})]
    tenant = TenantArgs.model_validate({"name": "team", "gpuQuotas": quotas})
    found = {p.path[3]: p for p in gpu_quota_problems(tenant, pools, path=("tenants", 0))}
    assert sorted(found) == sorted(consequences)
    first = found[0]
    assert first.path == ("tenants", 0, "gpuQuotas", 0, "pool")
    assert first.message == SHARED_RESOURCE.format(consequence=consequences[0])
    assert first.value == "h100"


def test_tenant_with_gpu_quota_gets_a_resource_quota() -> None:
    data = _stack([SHARED])
    data["tenants"] = [{"name": "team", "gpuQuotas": [{"pool": "l4", "limit": 6}]}]
    objects = build(ServingPlatformArgs.model_validate(data)).objects
    quota = next(o for o in objects if o["kind"] == "ResourceQuota")
    assert quota["metadata"]["namespace"] == "team"
    assert quota["spec"] == {"hard": {"requests.nvidia.com/gpu.shared": "6"}}


@pytest.fixture
def recorder() -> _Recorder:
    return install_recorder()


@pulumi.runtime.test
def test_gpu_runtime_pool_registers_each_object_under_its_kubernetes_type(recorder: _Recorder) -> Any:
    pools = [GpuPoolArgs.model_validate(MIG | {"provisioner": "karpenter"})]
    objects = gpu_operator.objects(pools, stack="t")
    component = GpuRuntimePool("gpu", objects)

    def check(_: Any) -> None:
        types = sorted(r.typ for r in recorder.resources if r.typ.startswith("kubernetes:"))
        assert types == sorted(
            [
                "kubernetes:core/v1:Namespace",
                "kubernetes:core/v1:ConfigMap",
                "kubernetes:core/v1:ConfigMap",
                "kubernetes:scheduling.k8s.io/v1:PriorityClass",
                "kubernetes:karpenter.sh/v1:NodePool",
            ]
        )
        assert "modelplane:index:GpuRuntimePool" in {r.typ for r in recorder.resources}
        node_pool = next(r for r in recorder.resources if r.typ.endswith(":NodePool"))
        assert node_pool.inputs["spec"]["replicas"] == 1

    return pulumi.Output.all(*(o.urn for o in component.objects.values())).apply(check)

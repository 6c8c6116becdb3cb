"""The capacity plan on small hand-checked cases, and the `modelplane plan` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import capacity
from modelplane.cli import main
from modelplane.errors import CapacityError
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from tests.conftest import STACKS

GPU = "nvidia.com/gpu"


def _model(name: str, *, tenant: str = "team", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": tenant,
        "runtime": "triton",
        "format": {"name": "onnx", "version": "1"},
        "storage": {"uri": f"s3://b/{name}"},
        "version": "v1",
    } | extra


def _stack(
    max_nodes: int = 4, models: list[dict[str, Any]] | None = None, **extra: Any
) -> ServingPlatformArgs:
    data: dict[str, Any] = {
        "stack": {"name": "t", "tier": "prod"},
        "images": {"pinning": "tag"},
        "gpuPools": [{"name": "h100", "product": "NVIDIA-H100", "gpusPerNode": 8, "maxNodes": max_nodes}],
        "tenants": [{"name": "team"}],
        "models": models
        if models is not None
        else [
            _model("big", resources={"gpu": 5, "pool": "h100"}, scaling={"minReplicas": 2, "maxReplicas": 4}),
            _model(
                "small", resources={"gpu": 3, "pool": "h100"}, scaling={"minReplicas": 2, "maxReplicas": 3}
            ),
        ],
    } | extra
    return ServingPlatformArgs.model_validate(data)


def test_plan_places_models_at_min_and_max_replicas() -> None:
    pool = capacity.plan(_stack()).pools[0]
    # min: 5+3 twice = 2 nodes; max: four 5s each with a 3 on three of them = 4 nodes
    assert (pool.levels["min"].nodes, pool.levels["min"].gpus, pool.levels["min"].units) == (2, 16, {GPU: 16})
    assert (pool.levels["max"].nodes, pool.levels["max"].gpus, pool.levels["max"].units) == (4, 32, {GPU: 29})
    assert pool.levels["max"].lower_bound_nodes == 4


def test_stack_that_does_not_fit_at_min_is_refused_with_what_is_short() -> None:
    result = capacity.plan(_stack(max_nodes=1))
    with pytest.raises(CapacityError) as err:
        capacity.check(result, "s.yaml")
    assert str(err.value).splitlines()[0] == (
        "s.yaml: gpuPools[0]: pool 'h100' needs 2 nodes (16 GPUs) at minimum replicas for 16 nvidia.com/gpu, "
        "but its node group (maxNodes) is 1: short 1 node(s), 8 GPUs"
    )


def test_stack_that_does_not_fit_at_max_gets_a_warning_only() -> None:
    result = capacity.plan(_stack(max_nodes=3))
    capacity.check(result, "s.yaml")
    assert result.warnings == [
        "gpuPools[0]: pool 'h100' needs 4 nodes (32 GPUs) at maximum replicas for 29 nvidia.com/gpu, but its node "
        "group (maxNodes) is 3: short 1 node(s), 8 GPUs"
    ]
    assert capacity.to_dict(result)["fits"] == {"min": True, "max": False}


def test_quota_use_per_tenant_is_reported_and_enforced_at_min() -> None:
    args = _stack(tenants=[{"name": "team", "gpuQuotas": [{"pool": "h100", "limit": 10}]}])
    result = capacity.plan(args)
    assert [(q.tenant, q.resource, q.limit, q.used) for q in result.quotas] == [
        ("team", GPU, 10, {"min": 16, "max": 29})
    ]
    assert result.errors == [
        "tenants[0].gpuQuotas: tenant 'team' requests 16 nvidia.com/gpu at minimum replicas but its quota is 10"
    ]


def _mesh_stack(models: int, size: str, pods: int = 2) -> ServingPlatformArgs:
    items = [
        _model(
            f"m{i}",
            runtime="mlserver",
            deploymentMode="modelmesh",
            format={"name": "sklearn", "version": "1"},
            resources={"memory": size},
        )
        for i in range(models)
    ]
    return ServingPlatformArgs.model_validate(
        {
            "stack": {"name": "t", "tier": "prod"},
            "images": {"pinning": "tag"},
            "modelMesh": {
                "enabled": True,
                "memoryBuffer": "1Gi",
                "runtimes": {"mlserver": {"memory": "5Gi", "pods": pods}},
            },
            "tenants": [{"name": "team"}],
            "models": items,
        }
    )


def test_mesh_models_fill_runtime_pods_one_copy_at_min_two_at_max() -> None:
    # a pod holds 5Gi - 1Gi = 4Gi: sixteen 1Gi models need 4 pods for one copy, 8 for two
    mesh = capacity.plan(_mesh_stack(16, "1Gi", pods=4)).mesh[0]
    assert (mesh.namespace, mesh.runtime, mesh.models) == ("team", "mlserver", 16)
    assert (mesh.model_bytes, mesh.pod_capacity_bytes) == (16 * 2**30, 4 * 2**30)
    assert mesh.pods_needed == {"min": 4, "max": 8}


def test_two_copies_need_two_pods_even_for_one_small_model() -> None:
    assert capacity.plan(_mesh_stack(1, "1Mi")).mesh[0].pods_needed == {"min": 1, "max": 2}


def test_mesh_that_cannot_hold_its_models_warns_about_eviction() -> None:
    result = capacity.plan(_mesh_stack(16, "1Gi", pods=2))
    assert result.errors == []
    assert result.warnings[0].startswith(
        "modelMesh: runtime 'mlserver' in namespace 'team' needs 4 pods to keep one copy of every model loaded"
    )


def test_mesh_savings_against_one_inference_service_per_model() -> None:
    savings = capacity.plan(_mesh_stack(100, "16Mi", pods=2)).savings
    assert savings["isvcPods"] == 100
    assert savings["isvcOverheadCpu"] == 50.0
    assert savings["meshPods"] == 2
    assert savings["savedPods"] == 98
    assert savings["savedCpu"] == pytest.approx(50.0 - 2 * 0.4)
    assert savings["savedMemoryBytes"] == 100 * 500_000_000 - 2 * 640 * 2**20


def test_pods_count_models_mesh_and_etcd_against_the_pod_limit() -> None:
    pods = capacity.plan(_mesh_stack(10, "16Mi", pods=2)).pods
    # 2 mesh runtime pods + 3 etcd members + 2 controllers
    assert (pods["min"], pods["max"], pods["meshRuntime"], pods["etcd"]) == (7, 7, 2, 3)
    assert pods["nodesByPodLimit"] == 1


def test_pod_ip_budget_is_checked_when_given() -> None:
    result = capacity.plan(_stack(), pod_ip_budget=3)
    assert result.errors == ["pods: 4 pods at minimum replicas need more pod IPs than the 3 available"]


def test_summary_has_the_documented_keys() -> None:
    summary = capacity.summary(_stack())
    assert sorted(summary) == [
        "errors",
        "fits",
        "mesh",
        "meshSavings",
        "pods",
        "pools",
        "quotas",
        "stack",
        "warnings",
    ]
    assert sorted(summary["pools"][0]) == [
        "gpusPerNode",
        "max",
        "maxPodsPerNode",
        "min",
        "minNodes",
        "name",
        "nodeCapacity",
        "nodeLimit",
        "product",
        "provisioner",
        "sharing",
    ]


def test_prod_example_fits_at_min_and_max() -> None:
    result = capacity.plan(load_stack(STACKS / "prod.yaml"))
    assert result.errors == [] and result.fits_max
    assert sum(m.models for m in result.mesh) >= 400


def _write(tmp_path: Path, args: ServingPlatformArgs) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(args.model_dump(by_alias=True, exclude_defaults=True)), encoding="utf-8")
    return str(path)


def test_cli_plan_exits_0_and_prints_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", _write(tmp_path, _stack())]) == 0
    out = capsys.readouterr().out
    assert out.startswith("capacity plan: stack t\n")
    assert "h100" in out


def test_cli_plan_refuses_a_stack_short_at_min_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _stack(max_nodes=1))
    assert main(["plan", path, "--format", "json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["fits"] == {"min": False, "max": False}
    assert captured.err.startswith(f"{path}: gpuPools[0]: pool 'h100' needs 2 nodes")


def test_cli_plan_json_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _stack())
    main(["plan", path, "--format", "json"])
    first = capsys.readouterr().out
    main(["plan", path, "--format", "json"])
    assert capsys.readouterr().out == first

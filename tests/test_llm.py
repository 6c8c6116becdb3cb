"""LLM services: KServe's LLMInferenceService, their scaling on vLLM's metrics, GPUs in the plan.

What KServe's own webhook and defaulting make of the rendered services is checked in
``tests/upstream/test_kserve_webhooks.py`` and ``tests/upstream/test_kserve_samples.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from modelplane import capacity, rules
from modelplane.base import Problem
from modelplane.build import build
from modelplane.llm import LlmArgs, gpu_pods
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.validation import CrdSchemas

CATALOG = load_catalog(catalog_dir())
GPU = "nvidia.com/gpu"
CHAT: dict[str, Any] = {
    "name": "chat",
    "tenant": "team",
    "version": "v1",
    "model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct", "name": "Qwen/Qwen2.5-7B-Instruct"},
    "resources": {"gpu": 1, "pool": "h100"},
}


def _stack(*llms: dict[str, Any], **control_plane: Any) -> ServingPlatformArgs:
    return ServingPlatformArgs.model_validate(
        {
            "stack": {"name": "t", "tier": "prod"},
            "controlPlane": {"defaultDeploymentMode": "standard"} | control_plane,
            "gpuPools": [{"name": "h100", "product": "NVIDIA-H100", "gpusPerNode": 8, "maxNodes": 4}],
            "tenants": [{"name": "team"}],
            "llms": list(llms),
        }
    )


def _objects(*llms: dict[str, Any], **control_plane: Any) -> list[dict[str, Any]]:
    return build(_stack(*llms, **control_plane)).objects


def _service(objects: list[dict[str, Any]], name: str = "chat") -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "LLMInferenceService" and o["metadata"]["name"] == name)


def test_a_service_renders_an_llminferenceservice_on_its_gpu_pool(crd_schemas: CrdSchemas) -> None:
    service = _service(_objects(CHAT))
    assert service["apiVersion"] == "serving.kserve.io/v1alpha2"
    spec = service["spec"]
    assert spec["model"] == {"uri": "hf://Qwen/Qwen2.5-7B-Instruct", "name": "Qwen/Qwen2.5-7B-Instruct"}
    assert spec["replicas"] == 1
    (container,) = spec["template"]["containers"]
    # The presets' vLLM container is named `main`; the service's settings merge into it by name.
    assert container["name"] == "main"
    assert container["resources"]["requests"][GPU] == container["resources"]["limits"][GPU] == "1"
    assert spec["template"]["nodeSelector"] == {"modelplane.dev/gpu-pool": "h100"}
    assert spec["template"]["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # llm-d's endpoint picker, the HTTPRoute and the platform's gateway, as KServe defaults them.
    assert spec["router"] == {"scheduler": {}, "route": {}, "gateway": {}}
    if ("serving.kserve.io/v1alpha2", "LLMInferenceService") not in crd_schemas.schemas:
        pytest.skip("the LLMInferenceService CRD needs KServe's Go module (Go missing or offline)")
    assert crd_schemas.validate(service) == []


def test_a_scaling_intent_becomes_a_keda_scaler_on_vllms_kv_cache() -> None:
    objects = _objects(
        CHAT | {"scaling": {"minReplicas": 2, "maxReplicas": 6, "metric": "kv-cache", "target": 70}}
    )
    # With no replicas in the service, the controller leaves them to KEDA
    # (pkg/controller/v1alpha2/llmisvc/workload.go:215-236).
    assert "replicas" not in _service(objects)["spec"]
    scaler = next(o for o in objects if o["kind"] == "ScaledObject")
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "chat-kserve",
    }
    assert (scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"]) == (2, 6)
    (trigger,) = scaler["spec"]["triggers"]
    assert (
        trigger["metadata"]["query"]
        == 'avg(vllm:kv_cache_usage_perc{namespace="team",llm_service="chat"}) * 100'
    )
    assert trigger["metadata"]["threshold"] == "70"
    # KEDA comes with the platform once a service scales through it.
    assert any(c.release == "keda" for c in build(_stack(CHAT | {"scaling": {}})).charts)


@pytest.mark.parametrize(
    ("metric", "query"),
    [
        ("queue-depth", 'sum(vllm:num_requests_waiting{namespace="team",llm_service="chat"})'),
        ("concurrency", 'sum(vllm:num_requests_running{namespace="team",llm_service="chat"})'),
        (
            "tokens-per-second",
            'sum(rate(vllm:generation_tokens_total{namespace="team",llm_service="chat"}[1m]))',
        ),
    ],
)
def test_each_scaling_metric_reads_vllms_own_series(metric: str, query: str) -> None:
    objects = _objects(CHAT | {"scaling": {"metric": metric}})
    scaler = next(o for o in objects if o["kind"] == "ScaledObject")
    assert scaler["spec"]["triggers"][0]["metadata"]["query"] == query


def test_the_vllm_pods_are_scraped_with_the_service_as_a_label() -> None:
    monitors = [
        o for o in _objects(CHAT) if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "modelplane-llm"
    ]
    assert [m["metadata"]["namespace"] for m in monitors] == ["team"]
    endpoint = monitors[0]["spec"]["podMetricsEndpoints"][0]
    assert endpoint["portNumber"] == 8000
    assert {r["targetLabel"] for r in endpoint["relabelings"]} == {"llm_service", "llm_role"}


def test_a_multi_node_service_has_workers_and_a_leaderworkerset_scaler() -> None:
    multi = CHAT | {
        "parallelism": {"data": 16, "dataLocal": 8, "expert": True},
        "resources": {"gpu": 8, "pool": "h100"},
        "scaling": {"maxReplicas": 2},
    }
    objects = _objects(multi, leaderWorkerSet=True)
    spec = _service(objects)["spec"]
    assert spec["parallelism"] == {"data": 16, "dataLocal": 8, "expert": True}
    assert spec["worker"]["containers"][0]["resources"]["limits"][GPU] == "8"
    scaler = next(o for o in objects if o["kind"] == "ScaledObject")
    assert scaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "name": "chat-kserve-mn",
    }


def test_a_multi_node_service_needs_leaderworkerset() -> None:
    multi = CHAT | {"parallelism": {"pipeline": 2}}
    assert rules.problems(_stack(multi), catalog=CATALOG) == [
        Problem(
            ("llms", 0, "parallelism"),
            "spans several pods per replica, which KServe runs as a LeaderWorkerSet (llmisvc workload_multi_node.go); "
            "install LeaderWorkerSet (KServe pins v0.8.0) and set controlPlane.leaderWorkerSet: true, or keep a "
            "replica on one pod",
            2,
        )
    ]
    assert rules.problems(_stack(multi, leaderWorkerSet=True), catalog=CATALOG) == []


def test_an_llm_services_modelcar_is_refused_and_its_image_volume_needs_the_cluster() -> None:
    # KServe's LLMInferenceService controller runs oci:// as a modelcar too (llmisvc workload_storage.go).
    modelcar = CHAT | {"model": {"uri": "oci://ghcr.io/example/qwen:1"}}
    (problem,) = rules.problems(_stack(modelcar), catalog=CATALOG)
    assert (problem.path, problem.value) == (("llms", 0, "model", "uri"), "oci://ghcr.io/example/qwen:1")
    assert "modelcar" in problem.message and "use oci+native://" in problem.message
    native = CHAT | {"model": {"uri": "oci+native://ghcr.io/example/qwen:1"}}
    assert [p.path for p in rules.problems(_stack(native), catalog=CATALOG)] == [("llms", 0, "model", "uri")]
    assert rules.problems(_stack(native, imageVolume=True), catalog=CATALOG) == []


def test_the_llm_charts_come_with_the_first_service() -> None:
    releases = {c.release for c in build(_stack(CHAT)).charts}
    assert {"kserve-llmisvc-crd", "kserve-llmisvc", "kserve-llmisvc-configs"} <= releases
    assert not {"kserve-llmisvc-crd", "kserve-llmisvc"} & {c.release for c in build(_stack()).charts}


@pytest.mark.parametrize(
    ("service", "problem"),
    [
        (
            CHAT | {"resources": {"gpu": 9, "pool": "h100"}},
            Problem(
                ("llms", 0, "resources", "gpu"),
                "asks for 9 GPUs but a node of pool 'h100' has 8",
                9,
            ),
        ),
        (
            CHAT | {"resources": {"gpu": 1, "pool": "a100"}},
            Problem(("llms", 0, "resources", "pool"), "unknown GPU pool (gpuPools: h100)", "a100"),
        ),
        (
            CHAT | {"tenant": "nobody"},
            Problem(("llms", 0, "tenant"), "unknown tenant (tenants: team)", "nobody"),
        ),
        (
            CHAT | {"priorityClassName": "urgent"},
            Problem(
                ("llms", 0, "priorityClassName"),
                "GPU pool 'h100' sets the priority class; remove it",
                "urgent",
            ),
        ),
    ],
)
def test_a_service_the_platform_cannot_place_is_refused(service: dict[str, Any], problem: Problem) -> None:
    assert rules.problems(_stack(service), catalog=CATALOG) == [problem]


def test_two_services_may_not_share_a_name_in_a_tenant() -> None:
    assert rules.problems(_stack(CHAT, CHAT), catalog=CATALOG) == [
        Problem(("llms", 1, "name"), "duplicate LLM service name in tenant 'team' (also llms[0])", "chat")
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"replicas": 2, "scaling": {}}, "give replicas or scaling, not both"),
        ({"parallelism": {"data": 16}}, "data and dataLocal are set together"),
        ({"parallelism": {"data": 12, "dataLocal": 8}}, "must be a multiple of dataLocal 8"),
        (
            {"parallelism": {"pipeline": 2, "data": 8, "dataLocal": 8}},
            "cannot be combined with data parallelism",
        ),
        ({"scaling": {"metric": "kv-cache", "target": 120}}, "kv-cache is a percentage; use 1-100"),
        ({"resources": {"gpu": 1}}, "give gpu and pool together"),
        ({"labels": {"modelplane.dev/llm": "x"}}, "is a reserved label key"),
        ({"env": [{"name": "HF_TOKEN", "value": "hf_abcdefghijklmnopqrstuvwxyz"}]}, "names a credential"),
        (
            {"router": {"scheduler": False, "schedulerReplicas": 2}},
            "schedulerConfig and schedulerReplicas need",
        ),
    ],
)
def test_a_malformed_service_is_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        LlmArgs.model_validate(CHAT | change)
    assert "hf_abcdefghijklmnopqrstuvwxyz" not in str(info.value).split("input_value")[0]


def test_gpu_pods_count_decode_and_prefill_at_each_level() -> None:
    service = LlmArgs.model_validate(
        CHAT | {"scaling": {"minReplicas": 2, "maxReplicas": 8}, "prefill": {"replicas": 3}}
    )
    assert gpu_pods(service, "min") == [(1, 2), (1, 3)]
    assert gpu_pods(service, "max") == [(1, 8), (1, 3)]
    multi = LlmArgs.model_validate(
        CHAT
        | {
            "parallelism": {"data": 16, "dataLocal": 8},
            "resources": {"gpu": 8, "pool": "h100"},
            "replicas": 1,
        }
    )
    assert gpu_pods(multi, "max") == [(8, 2)]


def test_the_capacity_plan_counts_the_services_gpus() -> None:
    args = _stack(
        CHAT | {"scaling": {"minReplicas": 2, "maxReplicas": 8}, "prefill": {"replicas": 2}},
        CHAT
        | {
            "name": "moe",
            "parallelism": {"data": 16, "dataLocal": 8},
            "resources": {"gpu": 8, "pool": "h100"},
        },
        leaderWorkerSet=True,
    )
    pool = capacity.plan(args).pools[0]
    # min: 2 decode + 2 prefill single-GPU pods and two 8-GPU pods = 20 GPUs on 3 nodes
    assert (pool.levels["min"].units, pool.levels["min"].nodes) == ({GPU: 20}, 3)
    # max: 8 decode + 2 prefill pods and the 16 GPUs of the fixed multi-node service
    assert (pool.levels["max"].units, pool.levels["max"].nodes) == ({GPU: 26}, 4)

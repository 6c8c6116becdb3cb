"""A model's own rules: what its mode, runtime, pool, rollout strategy and Kubernetes refuse.

Each case is one model against one set of facts; the problem names the field, the value and
the way out. Whole stack files with these problems are in ``tests/test_stack_errors.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelplane import model_rules
from modelplane.base import Problem
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.types import DeploymentMode
from tests.test_model import _model

CATALOG = load_catalog(catalog_dir())
EXCLUSIVE = GpuPoolArgs.model_validate({"name": "h100", "product": "NVIDIA-H100", "gpusPerNode": 8})
SHARED = GpuPoolArgs.model_validate(
    {"name": "l4", "product": "NVIDIA-L4", "sharing": {"mode": "time-slicing", "replicas": 4}}
)
MULTINODE: dict[str, Any] = {
    "runtime": "huggingface-multinode",
    "format": {"name": "huggingface", "version": "1"},
    "storage": {"uri": "pvc://weights/llama"},
    "workers": {"tensorParallelSize": 8, "pipelineParallelSize": 2},
    "resources": {"gpu": 8, "pool": "h100"},
    "scaling": {"minReplicas": 1, "maxReplicas": 1},
}


def _problems(
    mode: DeploymentMode = "standard",
    *,
    pool: GpuPoolArgs | None = None,
    strategy: str = "direct",
    kubernetes: str = "1.33",
    **fields: Any,
) -> list[Problem]:
    model = _model(**fields)
    return model_rules.problems(
        model,
        mode=mode,
        runtime=CATALOG[model.runtime],
        pool=pool,
        keda=False,
        strategy=strategy,
        kubernetes=kubernetes,
        path=("models", 0),
    )


def _paths(problems: list[Problem]) -> list[tuple[Any, ...]]:
    return [p.path for p in problems]


def test_a_plain_model_breaks_no_rule_in_any_mode() -> None:
    assert _problems("standard") == _problems("knative") == []
    assert _problems("modelmesh", runtime="mlserver") == []


def test_a_mesh_model_takes_no_pod_settings() -> None:
    (problem,) = _problems("modelmesh", runtime="mlserver", predictor={"args": ["--x"], "timeout": 30})
    assert problem.path == ("models", 0, "predictor")
    assert problem.message.startswith(
        "modelmesh mode loads the model into shared runtime pods, which take no per-model container or pod "
        "settings (args, timeout)"
    )


def test_a_mesh_model_has_no_runtime_version_explainer_or_storage_list() -> None:
    found = _problems(
        "modelmesh",
        runtime="mlserver",
        runtimeVersion="1.7.1",
        explainer={"image": "ghcr.io/example/explain:1.0.0"},
        storage={
            "uris": [{"uri": "s3://b/a", "mountPath": "/mnt/a"}, {"uri": "s3://b/b", "mountPath": "/mnt/b"}]
        },
    )
    assert _paths(found) == [
        ("models", 0, "runtimeVersion"),
        ("models", 0, "storage", "uris"),
        ("models", 0, "explainer"),
    ]


def test_a_collocated_transformer_may_not_take_the_servers_ports() -> None:
    (problem,) = _problems(
        transformer={"image": "ghcr.io/example/tok:1.0.0", "collocated": True, "port": 8081}
    )
    assert problem == Problem(
        ("models", 0, "transformer", "port"),
        "the collocated transformer shares the pod with runtime 'sklearn', whose server takes port 8081 (gRPC); "
        "give the transformer another port and point it at localhost:8080 (or move the server with predictor.ports)",
        8081,
    )
    assert (
        _problems(transformer={"image": "ghcr.io/example/tok:1.0.0", "collocated": True, "port": 8000}) == []
    )


def test_a_pod_runs_as_one_service_account() -> None:
    (problem,) = _problems(
        storage={"uri": "s3://bucket/m", "secretName": "s3-creds"}, predictor={"serviceAccountName": "reader"}
    )
    assert problem.path == ("models", 0, "predictor", "serviceAccountName")
    assert problem.value == "reader"


def test_a_gpu_pool_owns_the_priority_class_and_its_node_labels() -> None:
    found = _problems(
        runtime="torchserve",
        format={"name": "pytorch", "version": "1"},
        resources={"gpu": 1, "pool": "h100"},
        pool=EXCLUSIVE,
        predictor={
            "priorityClassName": "urgent",
            "nodeSelector": {"modelplane.dev/gpu-pool": "other", "zone": "a"},
        },
    )
    assert _paths(found) == [
        ("models", 0, "predictor", "priorityClassName"),
        ("models", 0, "predictor", "nodeSelector", "modelplane.dev/gpu-pool"),
    ]


def test_a_gpu_model_names_the_cuda_build_of_its_runtime_version() -> None:
    # KServe takes runtimeVersion as the whole image tag (utils.go:347-355), so a GPU model's
    # runtimeVersion must name the `-gpu` build itself.
    gpu = {
        "runtime": "torchserve",
        "format": {"name": "pytorch", "version": "1"},
        "resources": {"gpu": 1, "pool": "h100"},
    }
    (problem,) = _problems(pool=EXCLUSIVE, runtimeVersion="0.12.0", **gpu)
    assert (problem.path, problem.value) == (("models", 0, "runtimeVersion"), "0.12.0")
    assert problem.message.endswith("write 0.12.0-gpu")
    assert _problems(pool=EXCLUSIVE, runtimeVersion="0.12.0-gpu", **gpu) == []
    assert (
        _problems(runtime="torchserve", format={"name": "pytorch", "version": "1"}, runtimeVersion="0.12.0")
        == []
    )


def test_vllm_on_a_renamed_time_sliced_pool_would_run_its_cpu_build() -> None:
    vllm = {"runtime": "vllm", "format": {"name": "vLLM", "version": "1"}}
    (problem,) = _problems(pool=SHARED, resources={"gpu": 1, "pool": "l4"}, **vllm)
    assert (problem.path, problem.value) == (("models", 0, "resources", "pool"), "l4")
    assert "nvidia.com/gpu.shared" in problem.message
    assert _problems(pool=EXCLUSIVE, resources={"gpu": 1, "pool": "h100"}, **vllm) == []


@pytest.mark.parametrize(("kubernetes", "refused"), [("1.32", True), ("1.33", False), ("1.34", False)])
def test_oci_native_needs_image_volumes(kubernetes: str, refused: bool) -> None:
    found = _problems(kubernetes=kubernetes, storage={"uri": "oci+native://ghcr.io/example/model:1"})
    assert _paths(found) == ([("models", 0, "storage", "uri")] if refused else [])


def test_a_multi_node_model_as_kserve_accepts_it_breaks_no_rule() -> None:
    assert _problems(pool=EXCLUSIVE, **MULTINODE) == []


@pytest.mark.parametrize(
    ("change", "mode", "strategy", "path"),
    [
        ({"workers": None}, "standard", "direct", ("runtime",)),
        ({"runtime": "huggingface"}, "standard", "direct", ("workers",)),
        ({}, "knative", "direct", ("deploymentMode",)),
        ({"storage": {"uri": "s3://bucket/llama"}}, "standard", "direct", ("storage", "uri")),
        ({"resources": {"gpu": 3, "pool": "h100"}}, "standard", "direct", ("resources", "gpu")),
        ({"scaling": {"minReplicas": 1, "maxReplicas": 2}}, "standard", "direct", ("scaling",)),
        ({}, "standard", "canary", ("rollout", "strategy")),
    ],
)
def test_a_multi_node_model_kserve_would_refuse_is_refused(
    change: dict[str, Any], mode: DeploymentMode, strategy: str, path: tuple[Any, ...]
) -> None:
    fields = {k: v for k, v in (MULTINODE | change).items() if v is not None}
    assert _paths(_problems(mode, pool=EXCLUSIVE, strategy=strategy, **fields)) == [("models", 0, *path)]


@pytest.mark.parametrize(
    ("probe", "wrong"),
    [
        ({"tcpSocket": {}}, "tcpSocket"),
        ({"exec": {"command": ["true"]}}, "exec"),
        ({"httpGet": {"path": "/v2/health/live"}, "periodSeconds": 5}, None),
    ],
)
def test_a_predictor_probe_checks_the_way_the_runtime_does(probe: dict[str, Any], wrong: str | None) -> None:
    # KServe merges the predictor's probe into the runtime's HTTP probe field by field: another
    # handler would make a probe with two, and the API server refuses the Deployment.
    problems = _problems(predictor={"livenessProbe": probe})
    assert [(p.path, p.value) for p in problems] == (
        [(("models", 0, "predictor", "livenessProbe", wrong), wrong)] if wrong else []
    )
    if wrong:
        assert "runtime 'sklearn' checks its server with httpGet (/v2/health/live)" in problems[0].message

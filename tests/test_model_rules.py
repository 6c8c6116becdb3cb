"""A model's own rules: what its mode, runtime, pool, rollout strategy and Kubernetes refuse.

Each case is one model against one set of facts; the problem names the field, the value and
the way out. Whole stack files with these problems are in ``tests/test_stack_errors.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import model_rules
from modelplane.base import Problem
from modelplane.cli import main
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
    image_volume: bool | None = None,
    pod_security: str | None = "restricted",
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
        image_volume=image_volume,
        pod_security=pod_security,
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


NATIVE = "oci+native://ghcr.io/example/model:1"


@pytest.mark.parametrize(
    ("kubernetes", "image_volume", "refused"),
    [
        ("1.32", True, "supports from 1.33"),
        ("1.33", None, "set controlPlane.imageVolume: true"),
        ("1.34", None, "set controlPlane.imageVolume: true"),
        ("1.33", True, None),
        ("1.35", None, None),
        ("1.35", False, "controlPlane.imageVolume says the cluster has none"),
    ],
)
def test_oci_native_needs_a_cluster_that_mounts_image_volumes(
    kubernetes: str, image_volume: bool | None, refused: str | None
) -> None:
    found = _problems(kubernetes=kubernetes, image_volume=image_volume, storage={"uri": NATIVE})
    assert [(p.path, p.value) for p in found] == (
        [(("models", 0, "storage", "uri"), NATIVE)] if refused else []
    )
    assert all(refused is not None and refused in p.message for p in found)


MODELCAR = "oci://ghcr.io/example/model:1"


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"storage": {"uri": MODELCAR}}, ("storage", "uri")),
        ({"storage": {"uri": "oci+fetch://ghcr.io/example/model:1"}}, ("storage", "uri")),
        (
            {
                "storage": {
                    "uris": [
                        {"uri": "s3://b/m", "mountPath": "/mnt/a/m"},
                        {"uri": MODELCAR, "mountPath": "/mnt/a/x"},
                    ]
                }
            },
            ("storage", "uris", 1, "uri"),
        ),
        (
            {"transformer": {"image": "ghcr.io/example/pre:1", "storageUri": MODELCAR}},
            ("transformer", "storageUri"),
        ),
        (
            {"explainer": {"image": "ghcr.io/example/explain:1", "storageUri": MODELCAR}},
            ("explainer", "storageUri"),
        ),
    ],
)
def test_a_modelcar_is_refused_where_pod_security_is_restricted(
    fields: dict[str, Any], path: tuple[Any, ...]
) -> None:
    (problem,) = _problems(kubernetes="1.33", image_volume=True, **fields)
    assert problem.path == ("models", 0, *path)
    assert "allowPrivilegeEscalation: false" in problem.message
    assert "pkg/utils/storage.go:385-441" in problem.message
    assert "use oci+native://" in problem.message
    # Where the level is lower (no tenant known), the modelcar is not this rule's to refuse.
    assert _problems(kubernetes="1.33", image_volume=True, pod_security=None, **fields) == []


def test_the_same_image_as_an_image_volume_is_accepted_everywhere_a_modelcar_is_refused() -> None:
    for uri in (NATIVE, MODELCAR):
        fields = {
            "storage": {"uri": uri},
            "transformer": {"image": "ghcr.io/example/pre:1", "storageUri": uri},
        }
        found = _problems(kubernetes="1.33", image_volume=True, **fields)
        assert len(found) == (0 if uri == NATIVE else 2)


def test_a_mesh_models_transformer_is_a_kserve_pod_and_may_not_be_a_modelcar() -> None:
    transformer = {"image": "ghcr.io/example/pre:1", "storageUri": MODELCAR}
    found = _problems(
        "modelmesh",
        runtime="mlserver",
        format={"name": "sklearn", "version": "1"},
        storage={"uri": "s3://bucket/m"},
        transformer=transformer,
    )
    assert _paths(found) == [("models", 0, "transformer", "storageUri")]


def test_a_multi_node_modelcar_is_pointed_to_pvc() -> None:
    fields = MULTINODE | {"storage": {"uri": MODELCAR}}
    (problem,) = _problems(pool=EXCLUSIVE, **fields)
    assert problem.path == ("models", 0, "storage", "uri")
    assert "use pvc://" in problem.message and "refuses oci+native://" in problem.message


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


def test_validate_refuses_a_modelcar_with_its_file_path_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "prod.yaml"
    model = {
        "name": "intent",
        "tenant": "assistants",
        "runtime": "sklearn",
        "format": {"name": "sklearn", "version": "1"},
        "storage": {"uri": MODELCAR},
        "version": "v1",
    }
    data = {
        "stack": {"name": "prod", "tier": "prod"},
        # What this tests is the storage rule, not prod's digest pinning.
        "images": {"pinning": "tag"},
        "tenants": [{"name": "assistants"}],
        "models": [model],
    }
    stack.write_text(yaml.safe_dump(data))
    assert main(["validate", str(stack)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"{stack}: models[0].storage.uri: oci:// runs the model as a modelcar, whose sidecar"
    )
    assert line.endswith(
        f'use oci+native:// (the same image mounted as an ImageVolume: pkg/utils/storage.go:641-693), or another scheme (got "{MODELCAR}")'
    )
    assert not (tmp_path / "prod.lock.yaml").exists()
    # The same image as an ImageVolume, on a cluster that says it mounts them, is valid.
    model["storage"] = {"uri": NATIVE}
    stack.write_text(yaml.safe_dump(data | {"controlPlane": {"imageVolume": True}}))
    assert main(["validate", str(stack)]) == 0

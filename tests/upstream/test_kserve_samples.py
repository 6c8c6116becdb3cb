"""KServe's own samples, written as stack entries: each renders an object that means the same.

For every sample of the pinned KServe release (``docs/samples/v1beta1``, ``graph``, ``llmisvc``)
this file holds the stack entry a platform team would write for it, or README's "What a stack
cannot express" table says why there is none. Each test builds a stack around the entry,
renders it, has KServe's own webhooks admit every object, and compares what the sample states
with what the render states as KServe's own defaulting and runtime selection read them
(``tests/upstream/samples.py`` says how, and which differences are by design).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelplane.build import build, desired_models
from modelplane.kube import Obj
from modelplane.rollout import state
from modelplane.rollout.lock import Lock
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack
from tests.conftest import ROOT
from tests.upstream import kserve, samples

NOW = "2026-03-01T10:00:00Z"

BASE: dict[str, Any] = {
    "stack": {"name": "samples", "tier": "dev"},
    "controlPlane": {"defaultDeploymentMode": "knative"},
    "gpuPools": [
        {
            "name": "gpu",
            "product": "NVIDIA-A100-SXM4-40GB",
            "gpusPerNode": 8,
            "gpuMemoryGb": 40,
            "sharing": {"mode": "exclusive"},
            "maxNodes": 4,
        }
    ],
    "tenants": [{"name": "samples"}],
    "rollout": {"strategy": "direct"},
}
"""The stack every sample's entries are placed in: one tenant, one exclusive GPU pool, Knative by
default (the mode the release's inferenceservice-config defaults to)."""

GS = "gs://kfserving-examples/models"


def m(
    name: str, runtime: str, fmt: str | None = None, uri: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A model entry of the samples' stack."""
    entry: dict[str, Any] = {"name": name, "tenant": "samples", "runtime": runtime, "version": "v1"}
    if fmt is not None:
        entry["format"] = {"name": fmt}
    if uri is not None:
        entry["storage"] = {"uri": uri}
    return entry | fields


V1 = {"protocol": {"version": "v1"}}
GPU = {"gpu": 1, "pool": "gpu"}
TS_V1 = f"{GS}/torchserve/image_classifier/v1"
TS_V2 = f"{GS}/torchserve/image_classifier/v2"
TS_ARGS = ["--disable-token-auth", "--enable-model-api"]
OMP = [{"name": "OMP_NUM_THREADS", "value": "1"}]
FEAST = {
    "image": "docker.io/kserve/driver-transformer:v0.20.0",
    "command": ["python", "-m", "driver_transformer"],
    "args": [
        "--feast_serving_url",
        "feature-server-service.default.svc.cluster.local:6566",
        "--entity_id_name",
        "driver_id",
        "--feature_refs",
        "driver_hourly_stats:conv_rate",
        "driver_hourly_stats:acc_rate",
        "driver_hourly_stats:avg_daily_trips",
    ],
}


def image_transformer(protocol: str) -> dict[str, Any]:
    """KServe's image transformer in front of Triton, speaking ``protocol`` to it."""
    return {
        "image": "docker.io/kserve/image-transformer:v0.20.0",
        "command": ["python", "-m", "model"],
        "args": ["--model_name", "cifar10", "--protocol", protocol],
    }


@dataclass(frozen=True)
class Sample:
    """A sample's stack entries, and the rollout state a canary sample shows."""

    models: list[dict[str, Any]] = field(default_factory=list)
    graphs: list[dict[str, Any]] = field(default_factory=list)
    llms: list[dict[str, Any]] = field(default_factory=list)
    stack: dict[str, Any] = field(default_factory=dict)
    canary: tuple[str, int] | None = None
    """(the stable version's storage URI, the candidate's share; 0 = rolled back) of a canary sample."""


def torchserve_custom(name: str, image: str, **fields: Any) -> dict[str, Any]:
    return m(name, "custom", image=f"docker.io/example/{image}:0.9.0", **fields)


SAMPLES: dict[str, Sample] = {
    "docs/samples/v1beta1/advanced/cluster_local.yaml": Sample(
        [
            m(
                "sklearn-iris-local",
                "sklearn",
                "sklearn",
                f"{GS}/sklearn/1.0/model",
                labels={"networking.knative.dev/visibility": "cluster-local"},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/advanced/pod-overrides.yaml": Sample(
        [
            m(
                "tensorflow-pod-overrides",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                predictor={"serviceAccountName": "serving-admin"},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/advanced/probes.yaml": Sample(
        [
            m(
                "flowers",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                predictor={
                    "readinessProbe": {"httpGet": {"path": "/v1/models/flowers"}},
                    "livenessProbe": {"httpGet": {"path": "/v1/models/flowers"}},
                },
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/advanced/timeout.yaml": Sample(
        [
            m(
                "flowers",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                predictor={"timeout": 600, "livenessProbe": {"httpGet": {"path": "/v1/models/flowers"}}},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/custom/custom_model/custom.yaml": Sample(
        [
            m("custom-model", "custom", image="docker.io/kserve/custom-model:v0.20.0"),
            m(
                "custom-model-grpc",
                "custom",
                image="docker.io/kserve/custom-model-grpc:v0.20.0",
                protocol={"transport": "grpc"},
            ),
        ]
    ),
    "docs/samples/v1beta1/custom/paddleserving/paddleserving-custom.yaml": Sample(
        [m("paddleserving-custom", "custom", image="docker.io/ruminateer/paddleserving:lac-http")]
    ),
    "docs/samples/v1beta1/custom/prebuilt-image/custom.yaml": Sample(
        [
            m(
                "custom-prebuilt-image",
                "custom",
                image="docker.io/codait/max-object-detector:v1.0.0",
                labels={"controller-tools.k8s.io": "1.0"},
                predictor={"ports": [{"containerPort": 5000}]},
            )
        ]
    ),
    "docs/samples/v1beta1/custom/simple.yaml": Sample(
        [
            m(
                "custom-simple",
                "custom",
                image="docker.io/codait/max-object-detector:v1.0.0",
                scaling={"minReplicas": 1},
                predictor={"ports": [{"containerPort": 5000}]},
            )
        ]
    ),
    "docs/samples/v1beta1/custom/torchserve/autoscale.yaml": Sample(
        [torchserve_custom("torchserve-custom", "torchserve", scaling={"metric": "concurrency", "target": 5})]
    ),
    "docs/samples/v1beta1/custom/torchserve/bert-sample/bert.yaml": Sample(
        [torchserve_custom("torchserve-bert", "torchserve-bert", storage={"uri": f"{GS}/torchserve/bert/"})]
    ),
    "docs/samples/v1beta1/custom/torchserve/canary.yaml": Sample(
        [torchserve_custom("torchserve-custom", "torchserve", version="v2")],
        canary=("image:0.8.0", 10),
    ),
    "docs/samples/v1beta1/custom/torchserve/gpu.yaml": Sample(
        [torchserve_custom("torchserve-custom-gpu", "torchserve-gpu", resources=GPU)]
    ),
    "docs/samples/v1beta1/custom/torchserve/logger/torchserve-logger.yaml": Sample(
        [
            torchserve_custom(
                "torchserve-custom",
                "torchserve",
                scaling={"minReplicas": 1},
                predictor={
                    "logger": {"url": "http://message-dumper.default.svc.cluster.local", "mode": "all"}
                },
            )
        ]
    ),
    "docs/samples/v1beta1/custom/torchserve/metrics.yaml": Sample(
        [
            torchserve_custom(
                "torchserve-custom",
                "torchserve",
                annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "8082"},
            )
        ]
    ),
    "docs/samples/v1beta1/custom/torchserve/torchserve-custom-pv.yaml": Sample(
        [torchserve_custom("torchserve-custom-pv", "torchserve", storage={"uri": "pvc://model-pv-claim"})]
    ),
    "docs/samples/v1beta1/custom/torchserve/torchserve-custom.yaml": Sample(
        [torchserve_custom("torchserve-custom", "torchserve")]
    ),
    "docs/samples/v1beta1/lightgbm/lightgbm.yaml": Sample(
        [m("lightgbm-iris", "lightgbm", "lightgbm", f"{GS}/lightgbm/iris", **V1)]
    ),
    "docs/samples/v1beta1/onnx/onnx.yaml": Sample([m("style-sample", "triton", "onnx", f"{GS}/onnx")]),
    "docs/samples/v1beta1/paddle/paddle.yaml": Sample(
        [m("paddle-resnet50", "paddle", "paddle", f"{GS}/paddle/resnet", **V1)]
    ),
    "docs/samples/v1beta1/pmml/pmml.yaml": Sample([m("pmml-demo", "pmml", "pmml", f"{GS}/pmml", **V1)]),
    "docs/samples/v1beta1/rollout/canary.yaml": Sample(
        [m("my-model", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers-2", version="v2", **V1)],
        canary=(f"{GS}/tensorflow/flowers", 10),
    ),
    "docs/samples/v1beta1/rollout/default.yaml": Sample(
        [m("my-model", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers", **V1)]
    ),
    "docs/samples/v1beta1/rollout/pinned.yaml": Sample(
        [m("my-model", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers-2", version="v2", **V1)],
        canary=(f"{GS}/tensorflow/flowers", 0),
    ),
    "docs/samples/v1beta1/rollout/promotion.yaml": Sample(
        [m("my-model", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers-2", version="v2", **V1)]
    ),
    "docs/samples/v1beta1/sklearn/v1/sklearn-mixedtype-model/sklearn-mixedtype.yaml": Sample(
        [m("sklearn-mixedtype", "sklearn", "sklearn", f"{GS}/sklearn/1.3/mixedtype", **V1)]
    ),
    "docs/samples/v1beta1/sklearn/v1/sklearn.yaml": Sample(
        [m("sklearn-iris", "sklearn", "sklearn", f"{GS}/sklearn/1.0/model", **V1)]
    ),
    "docs/samples/v1beta1/sklearn/v2/sklearn.yaml": Sample(
        # KServe's own selection picks MLServer for sklearn over V2 (priority 2 over the sklearn server's 1).
        [m("sklearn-irisv2", "mlserver", "sklearn", "gs://seldon-models/sklearn/iris")]
    ),
    "docs/samples/v1beta1/spark/spark_pmml.yaml": Sample(
        [m("spark-pmml", "pmml", "pmml", f"{GS}/sparkpmml", **V1)]
    ),
    "docs/samples/v1beta1/tensorflow/canary.yaml": Sample(
        [m("flower-sample", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers-2", version="v2", **V1)],
        stack={"rollout": {"strategy": "canary", "steps": [20, 100]}},
        canary=(f"{GS}/tensorflow/flowers", 20),
    ),
    "docs/samples/v1beta1/tensorflow/gpu.yaml": Sample(
        [m("tensorflow-gpu", "tensorflow", "tensorflow", f"{GS}/tensorflow/flowers", resources=GPU, **V1)]
    ),
    "docs/samples/v1beta1/tensorflow/grpc.yaml": Sample(
        [
            m(
                "flower-grpc",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                predictor={"ports": [{"containerPort": 9000, "name": "h2c"}]},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/tensorflow/tensorflow.yaml": Sample(
        [
            m(
                "flower-sample",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                annotations={
                    "serving.kserve.io/enable-metric-aggregation": "true",
                    "serving.kserve.io/enable-prometheus-scraping": "true",
                },
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/tensorflow/versioning.yaml": Sample(
        [
            m(
                "tensorflow-versioning",
                "tensorflow",
                "tensorflow",
                f"{GS}/tensorflow/flowers",
                runtimeVersion="v1.14",
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/autoscaling/autoscaling.yaml": Sample(
        [
            m(
                "torchserve",
                "torchserve",
                "pytorch",
                TS_V1,
                scaling={"metric": "concurrency", "target": 10},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/canary/canary.yaml": Sample(
        [
            m(
                "torchserve",
                "torchserve",
                "pytorch",
                f"{GS}/torchserve/image_classifier/v2",
                version="v2",
                **V1,
            )
        ],
        stack={"rollout": {"strategy": "canary", "steps": [20, 100]}},
        canary=(TS_V1, 20),
    ),
    "docs/samples/v1beta1/torchserve/metrics/metrics.yaml": Sample(
        [
            m(
                "torch-metrics",
                "torchserve",
                "pytorch",
                TS_V1,
                annotations={"prometheus.io/scrape": "true", "prometheus.io/port": "8082"},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/v1/bert/bert.yaml": Sample(
        [m("torchserve-bert", "torchserve", "pytorch", f"{GS}/torchserve/huggingface", **V1)]
    ),
    "docs/samples/v1beta1/torchserve/v1/bloom/bloom-560m.yaml": Sample(
        # The sample's `spec.nodeName` is not a field of the InferenceService (the API server drops it).
        [
            m(
                "torchserve-bloom-560m",
                "torchserve",
                "pytorch",
                "pvc://model-cache",
                resources={"cpu": "2", "cpuLimit": "4", "memory": "8Gi", "memoryLimit": "16Gi", **GPU},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/v1/gpu.yaml": Sample(
        [
            m(
                "torchserve-gpu",
                "torchserve",
                "pytorch",
                TS_V1,
                resources={"memoryLimit": "4Gi", **GPU},
                predictor={"args": TS_ARGS},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/v1/grpc.yaml": Sample(
        # TorchServe's own gRPC API on 7070, reached over the model's one h2c port.
        [
            m(
                "torchserve-grpc",
                "torchserve",
                "pytorch",
                TS_V1,
                predictor={"ports": [{"containerPort": 7070, "name": "h2c"}]},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/v1/torchserve.yaml": Sample(
        [m("torchserve", "torchserve", "pytorch", TS_V1, predictor={"args": TS_ARGS}, **V1)]
    ),
    "docs/samples/v1beta1/torchserve/v2/bert/bert.yaml": Sample(
        [m("torchserve-bert-v2", "torchserve", "pytorch", f"{GS}/torchserve/bert/v2")]
    ),
    "docs/samples/v1beta1/torchserve/v2/bert/bert_gpu.yaml": Sample(
        [
            m(
                "torchserve-bert-v2",
                "torchserve",
                "pytorch",
                f"{GS}/torchserve/bert/v2",
                resources={"memoryLimit": "4Gi", **GPU},
            )
        ]
    ),
    "docs/samples/v1beta1/torchserve/v2/mnist.yaml": Sample(
        [m("torchserve-mnist-v2", "torchserve", "pytorch", TS_V2, predictor={"args": TS_ARGS})]
    ),
    "docs/samples/v1beta1/torchserve/v2/mnist_gpu.yaml": Sample(
        [
            m(
                "torchserve-mnist-v2",
                "torchserve",
                "pytorch",
                TS_V2,
                resources={"memoryLimit": "4Gi", **GPU},
                predictor={"args": TS_ARGS},
            )
        ]
    ),
    "docs/samples/v1beta1/transformer/collocation/collocation.yaml": Sample(
        [
            m(
                "custom-transformer-collocation",
                "custom",
                image="docker.io/pytorch/torchserve:0.9.0-cpu",
                storage={"uri": TS_V1},
                resources={"cpu": "100m", "memory": "256Mi", "cpuLimit": "1", "memoryLimit": "1Gi"},
                predictor={
                    "args": [
                        "torchserve",
                        "--start",
                        "--model-store=/mnt/models/model-store",
                        "--ts-config=/mnt/models/config/config.properties",
                    ],
                    "env": [{"name": "TS_SERVICE_ENVELOPE", "value": "kserve"}],
                    # TorchServe's inference address in the sample's config.properties.
                    "ports": [{"containerPort": 8085}],
                },
                transformer={
                    "collocated": True,
                    "image": "docker.io/kserve/image-transformer:v0.20.0",
                    "args": [
                        "--model_name=mnist",
                        "--protocol=v1",
                        "--http_port=8080",
                        "--grpc_port=8081",
                        "--predictor_host=localhost:8085",
                    ],
                    "cpu": "100m",
                    "memory": "256Mi",
                    "cpuLimit": "1",
                    "memoryLimit": "1Gi",
                },
            )
        ]
    ),
    "docs/samples/v1beta1/transformer/feast/driver_transformer.yaml": Sample(
        [m("sklearn-driver-transformer", "sklearn", "sklearn", f"{GS}/feast/driver", transformer=FEAST, **V1)]
    ),
    "docs/samples/v1beta1/transformer/feast/driver_transformer_modelmesh.yaml": Sample(
        [
            m(
                "sklearn-driver-transformer",
                "mlserver",
                "sklearn",
                f"{GS}/feast/driver",
                deploymentMode="modelmesh",
                transformer=FEAST | {"image": "docker.io/example/driver-transformer:0.9.0"},
            )
        ],
        stack={"modelMesh": {"enabled": True, "etcd": {"mode": "quickstart"}}},
    ),
    "docs/samples/v1beta1/transformer/feast/driver_transformer_new.yaml": Sample(
        [m("sklearn-driver-transformer", "sklearn", "sklearn", f"{GS}/feast/driver", transformer=FEAST, **V1)]
    ),
    "docs/samples/v1beta1/transformer/torchserve_image_transformer/transformer.yaml": Sample(
        [
            m(
                "torch-transformer",
                "torchserve",
                "pytorch",
                TS_V1,
                transformer={"image": "docker.io/kserve/image-transformer:v0.20.0"},
                **V1,
            )
        ]
    ),
    "docs/samples/v1beta1/triton/bert/bert_v1beta1.yaml": Sample(
        [
            m(
                "bert-v2",
                "triton",
                "triton",
                f"{GS}/triton/bert",
                runtimeVersion="23.10-py3",
                resources={"cpu": "1", "memory": "8Gi", "cpuLimit": "1", "memoryLimit": "8Gi"},
                transformer={
                    "image": "docker.io/kserve/bert-tokenizer:v0.20.0",
                    "storageUri": f"{GS}/triton/bert-transformer",
                },
            )
        ]
    ),
    "docs/samples/v1beta1/triton/torchscript/torch_grpc_transformer.yaml": Sample(
        [
            m(
                "torch-transformer",
                "triton",
                "triton",
                f"{GS}/torchscript",
                runtimeVersion="20.10-py3",
                predictor={
                    "env": OMP,
                    "ports": [{"containerPort": 9000, "name": "h2c"}],
                    "args": ["--log-verbose=1"],
                },
                transformer=image_transformer("grpc-v2"),
            )
        ]
    ),
    "docs/samples/v1beta1/triton/torchscript/torch_transformer.yaml": Sample(
        [
            m(
                "torch-transformer",
                "triton",
                "triton",
                f"{GS}/torchscript",
                runtimeVersion="20.10-py3",
                predictor={"env": OMP, "args": ["--log-verbose=1"]},
                transformer=image_transformer("v2"),
            )
        ]
    ),
    "docs/samples/v1beta1/triton/torchscript/torchscript.yaml": Sample(
        [
            m(
                "torchscript-cifar",
                "triton",
                "triton",
                f"{GS}/torchscript",
                runtimeVersion="21.08-py3",
                predictor={"env": OMP},
            )
        ]
    ),
    "docs/samples/v1beta1/triton/torchscript/torchscript_grpc.yaml": Sample(
        [
            m(
                "torchscript-cifar",
                "triton",
                "triton",
                f"{GS}/torchscript",
                runtimeVersion="20.10-py3",
                predictor={"env": OMP, "ports": [{"containerPort": 9000, "name": "h2c"}]},
            )
        ]
    ),
    "docs/samples/v1beta1/xgboost/xgboost.yaml": Sample(
        # KServe's own selection picks MLServer for xgboost over V2 (priority 2 over the xgboost server's 1).
        [m("xgboost-iris", "mlserver", "xgboost", f"{GS}/xgboost/iris")]
    ),
}


GRAPH_PLACEHOLDERS = {"{$your-domain}": "example.com", ".default.": ".samples."}
"""What the switch sample asks the reader to substitute: its domain, and its namespace for the tenant's."""


def g(name: str, router: str, *steps: dict[str, Any]) -> dict[str, Any]:
    """A graph of the samples' stack with one root node."""
    return {
        "name": name,
        "tenant": "samples",
        "nodes": {"root": {"routerType": router, "steps": list(steps)}},
    }


IRIS = [
    m("sklearn-iris", "sklearn", "sklearn", f"{GS}/sklearn/1.0/model", **V1),
    m("xgboost-iris", "xgboost", "xgboost", f"{GS}/xgboost/iris", **V1),
]


def switch_member(name: str) -> dict[str, Any]:
    return m(
        name,
        "custom",
        image="docker.io/iamlovingit/bgtest:v1.0.0",
        scaling={"minReplicas": 1},
        predictor={"env": [{"name": "target", "value": name}]},
    )


SAMPLES |= {
    "docs/samples/graph/ensemble.yaml": Sample(
        IRIS,
        graphs=[
            g(
                "ensemble-model",
                "Ensemble",
                {"model": "sklearn-iris", "name": "sklearn-iris"},
                {"model": "xgboost-iris", "name": "xgboost-iris"},
            )
        ],
    ),
    "docs/samples/graph/sequence.yaml": Sample(
        IRIS,
        graphs=[
            g(
                "model-chainer",
                "Sequence",
                {"model": "sklearn-iris"},
                {"model": "xgboost-iris", "data": "$request"},
            )
        ],
    ),
    "docs/samples/graph/splitter.yaml": Sample(
        IRIS,
        graphs=[
            g(
                "splitter-model",
                "Splitter",
                {"model": "sklearn-iris", "weight": 20},
                {"model": "xgboost-iris", "weight": 80},
            )
        ],
    ),
    "docs/samples/graph/switch.yaml": Sample(
        [switch_member("single-1"), switch_member("single-2"), switch_member("single-3")],
        graphs=[
            g(
                "model-switch",
                "Switch",
                {
                    "url": "http://single-1.samples.example.com/switch",
                    "condition": "[@this].#(source==client)",
                },
                {"url": "http://single-2.samples.example.com/switch", "condition": "instances.#(intval>10)"},
                {
                    "url": "http://single-3.samples.example.com/switch",
                    "condition": "instances.#(strval%*red-server*)",
                },
            )
        ],
    ),
}


def llm(name: str, uri: str, model: str, **fields: Any) -> dict[str, Any]:
    """An LLM service of the samples' stack."""
    return {"name": name, "tenant": "samples", "version": "v1", "model": {"uri": uri, "name": model}} | fields


QWEN = ("hf://Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
GPT_OSS = ("pvc://gpt-oss-20b-pvc", "RedHatAI/gpt-oss-20b")
OPT = ("hf://facebook/opt-125m", "facebook/opt-125m")
VLLM_CPU = "public.ecr.aws/q9t5s3a7/vllm-cpu-release-repo:v0.17.1"
LLM_GPU = {"cpu": "2", "memory": "16Gi", "cpuLimit": "4", "memoryLimit": "32Gi", "gpu": 1, "pool": "gpu"}
LLM_GPU_LARGE = {
    "cpu": "4",
    "memory": "32Gi",
    "cpuLimit": "8",
    "memoryLimit": "64Gi",
    "gpu": 1,
    "pool": "gpu",
}


def https_health(initial: int, period: int, timeout: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": "/health", "port": 8000, "scheme": "HTTPS"},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


LORA_CPU = {
    "image": VLLM_CPU,
    "env": [
        {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
        {"name": "VLLM_CPU_KVCACHE_SPACE", "value": "1"},
    ],
    "resources": {"cpu": "200m", "memory": "2Gi", "cpuLimit": "2", "memoryLimit": "7Gi"},
    "livenessProbe": https_health(180, 30, 30, 8),
    "readinessProbe": https_health(30, 10, 5, 3),
    "replicas": 1,
}
EPP_PLUGINS = [
    {"type": "single-profile-handler"},
    {
        "type": "precise-prefix-cache-scorer",
        "parameters": {
            "tokenProcessorConfig": {"blockSize": 64, "hashSeed": "42"},
            "kvEventsConfig": {"zmqEndpoint": "tcp://*:5557"},
            "indexerConfig": {
                "kvBlockIndexConfig": {"enableMetrics": True, "metricsLoggingInterval": 60000000000}
            },
        },
    },
    {"type": "kv-cache-utilization-scorer"},
    {"type": "queue-scorer"},
    {
        "type": "active-request-scorer",
        "parameters": {"requestTimeout": "2m", "idleThreshold": 0, "maxBusyScore": 0},
    },
    {"type": "max-score-picker"},
]
EPP_PROFILES = [
    {
        "name": "default",
        "plugins": [
            {"pluginRef": "precise-prefix-cache-scorer", "weight": 3},
            {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
            {"pluginRef": "queue-scorer", "weight": 2},
            {"pluginRef": "active-request-scorer", "weight": 3},
            {"pluginRef": "max-score-picker"},
        ],
    }
]
LATENCY_EPP = {
    "apiVersion": "llm-d.ai/v1alpha1",
    "kind": "EndpointPickerConfig",
    "plugins": [
        {"type": "approx-prefix-cache-producer", "parameters": {"maxPrefixTokensToMatch": 262144}},
        {"type": "predicted-latency-producer"},
        {
            "type": "prefix-cache-affinity-filter",
            "name": "loose-affinity-filter",
            "parameters": {"affinityThreshold": 0.8},
        },
        {"type": "latency-scorer"},
        {"type": "weighted-random-picker"},
    ],
    "schedulingProfiles": [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "predicted-latency-producer"},
                {"pluginRef": "loose-affinity-filter"},
                {"pluginRef": "latency-scorer"},
                {"pluginRef": "weighted-random-picker"},
            ],
        }
    ],
}
NAIVE_ENV = [
    ("VLLM_API_SERVER_COUNT", "1"),
    ("VLLM_LOGGING_LEVEL", "INFO"),
    ("CUDA_DEVICE_ORDER", "PCI_BUS_ID"),
    ("VLLM_ADDITIONAL_ARGS", "--gpu-memory-utilization 0.95 --max-model-len 8192 --enforce-eager"),
    ("VLLM_ALL2ALL_BACKEND", "naive"),
    ("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),
    ("NCCL_IB_DISABLE", "1"),
    ("NCCL_NET_GDR_LEVEL", "0"),
    ("NCCL_P2P_LEVEL", "NVL"),
    ("NCCL_SOCKET_IFNAME", "eth0"),
    ("NCCL_NSOCKS_PERTHREAD", "2"),
    ("NCCL_SOCKET_NTHREADS", "2"),
    ("NCCL_BUFFSIZE", "2097152"),
    ("NCCL_DEBUG", "WARN"),
    ("NVSHMEM_REMOTE_TRANSPORT", "ucx"),
    ("NVSHMEM_DISABLE_CUDA_VMM", "0"),
    ("NVSHMEM_BOOTSTRAP_TWO_STAGE", "1"),
    ("NVSHMEM_BOOTSTRAP_TIMEOUT", "300"),
    ("NVSHMEM_BOOTSTRAP_UID_SOCK_IFNAME", "eth0"),
    ("NVSHMEM_DEBUG", "INFO"),
    ("UCX_TLS", "tcp,sm,self,cuda_copy,cuda_ipc"),
    ("UCX_NET_DEVICES", "eth0"),
    ("NVIDIA_GDRCOPY", "enabled"),
]
KV_ROUTING_ARGS = (
    "--prefix-caching-hash-algo sha256_cbor --block-size 64 --kv_transfer_config "
    '\'{"kv_connector":"NixlConnector","kv_role":"kv_both"}\' --kv-events-config '
    '\'{"enable_kv_cache_events":true,"publisher":"zmq","endpoint":"tcp://{{ ChildName .ObjectMeta.Name '
    '`-epp-service` }}:5557","topic":"kv@${POD_IP}@Qwen/Qwen2.5-7B-Instruct"}\''
)
NO_ROUTE = {"route": False}
NO_ROUTER = {"scheduler": False, "route": False, "gateway": False}

SAMPLES |= {
    "docs/samples/llmisvc/e2e-gpt-oss/inference_default.yaml": Sample(
        llms=[
            llm(
                "gpt-oss-20b",
                *GPT_OSS,
                replicas=2,
                router=NO_ROUTE,
                baseRefs=["llmisvc-intelligent-inference-scheduling"],
                resources=LLM_GPU_LARGE,
            )
        ]
    ),
    "docs/samples/llmisvc/e2e-gpt-oss/inference_pd_disaggregation.yaml": Sample(
        llms=[
            llm(
                "gpt-oss-20b",
                *GPT_OSS,
                replicas=1,
                router=NO_ROUTER,
                baseRefs=["llmisvc-config-pd-disagg"],
                resources={"gpu": 1, "pool": "gpu"},
                prefill={"replicas": 2},
            )
        ]
    ),
    "docs/samples/llmisvc/e2e-gpt-oss/inference_prefix_cache.yaml": Sample(
        llms=[
            llm(
                "gpt-oss-20b",
                *GPT_OSS,
                replicas=2,
                router=NO_ROUTE,
                baseRefs=["llmisvc-prefix-caching"],
                resources=LLM_GPU_LARGE,
            )
        ]
    ),
    "docs/samples/llmisvc/kv-cache-offloading/llm-inference-service-kv-cache-offloading.yaml": Sample(
        llms=[
            llm(
                "qwen2-7b-kv-cache-offloading",
                *QWEN,
                resources=LLM_GPU_LARGE,
                kvCacheOffloading={
                    "cpu": "10Gi",
                    "evictionPolicy": "lru",
                    "secondary": [{"emptyDirSize": "100Gi"}],
                },
            )
        ]
    ),
    "docs/samples/llmisvc/latency-predictor/llm-inference-service-latency-predictor.yaml": Sample(
        llms=[
            llm(
                "qwen2-7b-latency-predictor",
                *QWEN,
                replicas=3,
                router={"schedulerConfig": LATENCY_EPP},
                resources=LLM_GPU,
                livenessProbe=https_health(120, 30, 30, 5),
            )
        ]
    ),
    "docs/samples/llmisvc/lora-adapters/test-examples/01-lora-hf-cpu.yaml": Sample(
        llms=[
            llm(
                "lora-hf-test",
                *OPT,
                **LORA_CPU,
            )
            | {
                "model": {
                    "uri": OPT[0],
                    "name": OPT[1],
                    "lora": {
                        "adapters": [{"name": "lora-adapter-1", "uri": "hf://edbeeching/opt-125m-lora"}]
                    },
                }
            }
        ]
    ),
    "docs/samples/llmisvc/lora-adapters/test-examples/02-lora-multi-hf-cpu.yaml": Sample(
        llms=[
            llm("lora-multi-hf-test", *OPT, **LORA_CPU)
            | {
                "model": {
                    "uri": OPT[0],
                    "name": OPT[1],
                    "lora": {
                        "adapters": [
                            {"name": "adapter-1", "uri": "hf://edbeeching/opt-125m-lora"},
                            {"name": "adapter-2", "uri": "hf://edbeeching/opt-125m-lora"},
                        ],
                        "maxRank": 64,
                        "maxAdapters": 2,
                        "maxCpuAdapters": 4,
                    },
                }
            }
        ]
    ),
    "docs/samples/llmisvc/lora-adapters/test-examples/04-lora-pvc-cpu.yaml": Sample(
        llms=[
            llm("lora-pvc-test", *OPT, **LORA_CPU)
            | {
                "model": {
                    "uri": OPT[0],
                    "name": OPT[1],
                    "lora": {
                        "adapters": [{"name": "pvc-adapter", "uri": "pvc://lora-adapters-pvc/opt-125m-lora"}]
                    },
                }
            }
        ]
    ),
    "docs/samples/llmisvc/multi-gpu-vendor/llm-inference-service-qwen2-7b-nvidia-with-scheduler.yaml": Sample(
        llms=[llm("qwen2-7b-instruct-nvidia", *QWEN, replicas=3, resources=LLM_GPU)]
    ),
    "docs/samples/llmisvc/precise-prefix-kv-cache-routing/llm-inference-service-qwen2-7b-gpu-kv-cache-routing.yaml": Sample(
        llms=[
            llm(
                "qwen2-7b-kv-cache-routing",
                *QWEN,
                replicas=2,
                router={
                    "schedulerConfig": {
                        "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
                        "kind": "EndpointPickerConfig",
                        "plugins": EPP_PLUGINS,
                        "schedulingProfiles": EPP_PROFILES,
                    }
                },
                env=[
                    {"name": "VLLM_ADDITIONAL_ARGS", "value": KV_ROUTING_ARGS},
                    {"name": "POD_IP", "fieldRef": "status.podIP"},
                    {"name": "PYTHONHASHSEED", "value": "42"},
                ],
                resources=LLM_GPU,
                livenessProbe=https_health(120, 30, 30, 5),
            )
        ]
    ),
    "docs/samples/llmisvc/single-node-gpu/llm-inference-service-qwen2-7b-gpu-no-scheduler.yaml": Sample(
        llms=[
            llm(
                "qwen2-7b-instruct-single-no-scheduler",
                *QWEN,
                replicas=3,
                router={"scheduler": False, "gateway": False},
                resources=LLM_GPU,
                livenessProbe=https_health(120, 30, 30, 5),
            )
        ]
    ),
    "docs/samples/llmisvc/single-node-gpu/llm-inference-service-qwen2-7b-gpu.yaml": Sample(
        llms=[
            llm(
                "qwen2-7b-instruct-single",
                *QWEN,
                replicas=3,
                resources=LLM_GPU,
                livenessProbe=https_health(120, 30, 30, 5),
            )
        ]
    ),
    "docs/samples/llmisvc/dp-ep/deepseek-r1-gpu-rdma-roce/llm-inference-service-dp-ep-deepseek-r1-gpu-naive.yaml": Sample(
        llms=[
            llm(
                "deepseek-coder-v2",
                "hf://deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct",
                "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct",
                replicas=1,
                parallelism={"data": 16, "dataLocal": 8, "expert": True, "tensor": 1},
                serviceAccountName="hfsa",
                env=[{"name": n, "value": v} for n, v in NAIVE_ENV],
                resources={
                    "cpu": "64",
                    "cpuLimit": "128",
                    "memory": "256Gi",
                    "memoryLimit": "512Gi",
                    "ephemeralStorage": "100Gi",
                    "gpu": 8,
                    "pool": "gpu",
                },
                livenessProbe=https_health(4800, 10, 10, 3),
            )
        ],
        stack={"controlPlane": {"defaultDeploymentMode": "knative", "leaderWorkerSet": True}},
    ),
}


# --- the stack, the render and the comparison -------------------------------------------------


def stack_for(sample: Sample, *, version: str | None = None, uri: str | None = None) -> ServingPlatformArgs:
    """The samples' stack holding the sample's entries (for a canary's stable side: ``version``, ``uri``)."""
    data = copy.deepcopy(BASE) | copy.deepcopy(sample.stack)
    models = copy.deepcopy(sample.models)
    for model in models:
        if version is not None:
            model["version"] = version
        if uri is not None:
            if uri.startswith("image:"):
                model["image"] = model["image"].rsplit(":", 1)[0] + ":" + uri.removeprefix("image:")
            else:
                model["storage"]["uri"] = uri
    data["models"] = models
    data["graphs"] = copy.deepcopy(sample.graphs)
    data["llms"] = copy.deepcopy(sample.llms)
    return parse_stack(data, "samples.yaml")


def lock_for(sample: Sample) -> Lock | None:
    """The deployed state a canary sample shows: the stable version live, the candidate at its share."""
    if sample.canary is None:
        return None
    stable_uri, share = sample.canary
    stable = stack_for(sample, version="v1", uri=stable_uri)
    head = stack_for(sample)
    steps = [share, 100] if share else [10, 100]
    policy = {"strategy": "canary", "steps": steps}
    live = state.apply(None, desired_models(stable), stack="samples", now=NOW)
    canary_stack = parse_stack(
        head.model_dump(by_alias=True, exclude_none=True) | {"rollout": policy}, "samples.yaml"
    )
    lock = state.apply(live, desired_models(canary_stack), stack="samples", now=NOW)
    if share == 0:
        key = next(iter(lock.models))
        lock = lock.model_copy(update={"models": {key: state.rollback(lock.models[key], key, now=NOW)}})
    return lock


def render(sample: Sample) -> list[Obj]:
    stack = stack_for(sample)
    if sample.canary is not None:
        stack = parse_stack(
            stack.model_dump(by_alias=True, exclude_none=True)
            | {"rollout": {"strategy": "canary", "steps": [sample.canary[1] or 10, 100]}},
            "samples.yaml",
        )
    return build(stack, lock=lock_for(sample)).objects


def _runtimes(objects: list[Obj]) -> dict[str, Obj]:
    return {
        o["metadata"]["name"]: o for o in objects if o["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    }


@pytest.fixture(scope="module")
def binary(request: pytest.FixtureRequest) -> Path:
    try:
        samples.kserve_module()
    except samples.ModuleMissingError as err:
        pytest.skip(f"KServe's samples are read from its Go module, which is not available here: {err}")
    fixture: Path = request.getfixturevalue("kserve_webhook")
    return fixture


@pytest.mark.parametrize("path", sorted(SAMPLES))
def test_sample_renders_what_it_means(path: str, binary: Path) -> None:
    sample = SAMPLES[path]
    upstream = [d for d in samples.sample(path) if d["kind"] == "InferenceService"]
    objects = render(sample)
    assert kserve.refused(binary, objects) == []
    ours = {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceService"}
    runtimes = _runtimes(objects)
    theirs = samples.resolve(binary, upstream, samples.upstream_runtimes())
    mine = samples.resolve(binary, [ours[d["metadata"]["name"]] for d in upstream], list(runtimes.values()))
    for raw, up, own in zip(upstream, theirs, mine, strict=True):
        stated = samples.stated_facts(raw, up)
        held = samples.isvc_facts(own, runtimes)
        assert samples.missing(stated, held) == {}, up["object"]["metadata"]["name"]
    graphs = {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceGraph"}
    for graph in (d for d in samples.sample(path) if d["kind"] == "InferenceGraph"):
        stated = samples.graph_facts(graph, placeholders=GRAPH_PLACEHOLDERS)
        held = samples.graph_facts(graphs[graph["metadata"]["name"]])
        assert samples.missing(stated, held) == {}, graph["metadata"]["name"]
    services = {o["metadata"]["name"]: o for o in objects if o["kind"] == "LLMInferenceService"}
    upstream_llms = [d for d in samples.sample(path) if d["kind"] == "LLMInferenceService"]
    if upstream_llms:
        theirs_llms = samples.convert_llms(binary, upstream_llms)
        mine_llms = samples.convert_llms(binary, [services[d["metadata"]["name"]] for d in upstream_llms])
        for up, own in zip(theirs_llms, mine_llms, strict=True):
            assert samples.missing(samples.llm_facts(up), samples.llm_facts(own)) == {}, up["metadata"][
                "name"
            ]


README = ROOT / "README.md"
_UNSUPPORTED = re.compile(r"^\| `(docs/samples/[^`]+)` \| (.+) \|$", re.MULTILINE)


def unsupported() -> dict[str, str]:
    """Samples README lists as not expressible, with the reason."""
    return dict(_UNSUPPORTED.findall(README.read_text(encoding="utf-8")))


def test_every_sample_is_expressed_or_listed_with_a_reason(binary: Path) -> None:
    files = set(samples.sample_files())
    covered, listed = set(SAMPLES), set(unsupported())
    assert sorted(files - covered - listed) == []
    assert sorted((covered | listed) - files) == []
    assert sorted(covered & listed) == []
    assert all(len(reason) > 20 for reason in unsupported().values())


def test_at_least_sixty_samples_are_expressed() -> None:
    assert len(SAMPLES) >= 60

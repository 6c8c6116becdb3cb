"""Synthetic series of one tenant namespace, labelled as Prometheus scrapes them, for the SLO and dashboard tests.

Every mode and metric source is there, each with a stable version and, where the mode can run
one, a canary beside it: Knative revisions of one configuration (and the runtime's own metrics
of the same pods, which the queue-proxy already counts), Standard-mode named predictors, a
ModelMesh model and its candidate's side object. Traps a query must not fall into sit beside
them: a Knative transformer, a model whose name extends another's, and a vLLM server that also
exports KServe's model server histogram. Counters grow at fixed rates from ``START``, so every
value at ``END`` is known.
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "team"
START = 1_780_000_000
"""Unix seconds of the first sample (fixed, so the blocks and answers are the same every run)."""
END = START + 7 * 3600
"""Seven hours of data: the longest SLO window (6h) is full at ``END``."""
STEP = 60
TIMES = range(START, END + 1, STEP)


@dataclass(frozen=True)
class Measured:
    """A model of the namespace: how it is deployed and what its series say."""

    name: str
    mode: str
    runtime: str
    versions: tuple[str, ...]
    """Stable first, then the canary (if any)."""


MODELS: tuple[Measured, ...] = (
    Measured("fraud", "knative", "sklearn", ("v1", "v2")),
    Measured("ranker", "standard", "mlserver", ("v1", "v2")),
    Measured("ranker-x", "standard", "mlserver", ("v1",)),
    Measured("scorer", "standard", "sklearn", ("v1",)),
    Measured("chat", "standard", "huggingface", ("v1",)),
    Measured("detector", "standard", "triton", ("v1",)),
    Measured("merchant", "modelmesh", "mlserver", ("v1", "v2")),
)


PODS: tuple[tuple[str, str, str], ...] = (
    ("fraud", "v1", "fraud-predictor-00001-deployment-7c9d8-v1xx"),
    ("fraud", "v2", "fraud-predictor-00002-deployment-7c9d8-v2xx"),
    ("ranker", "v1", "ranker-v1-predictor-6f7d8-abcde"),
    ("ranker", "v2", "ranker-v2-predictor-6f7d8-abcde"),
    ("ranker-x", "v1", "ranker-x-v1-predictor-6f7d8-abcde"),
)
"""(model, version, pod) of the predictor pods kube-state-metrics reports."""

HEALTHY = "ranker-x"
"""A model with one version that answers every request quickly."""
CANARIES = ("fraud", "ranker")
"""Models with a stable version and a canary beside it."""


def _counter(name: str, labels: str, per_second: float) -> list[str]:
    return [f"{name}{{{labels}}} {per_second * (t - START):.6f} {t}" for t in TIMES]


def _histogram(name: str, labels: str, rates: dict[str, float]) -> list[str]:
    """Cumulative buckets (``le`` -> requests per second at or below it)."""
    lines: list[str] = []
    for le, rate in rates.items():
        lines += _counter(f"{name}_bucket", f'{labels},le="{le}"', rate)
    return lines


def _pod(model: str, version: str, runtime: str, pod: str) -> str:
    return (
        f'namespace="{NAMESPACE}",pod="{pod}",modelplane_dev_model="{model}",'
        f'modelplane_dev_version="{version}",modelplane_dev_runtime="{runtime}"'
    )


FAST_MS = {"50": 9.0, "100": 9.9, "250": 10.0, "+Inf": 10.0}
SLOW_MS = {"50": 0.0, "100": 0.0, "250": 0.5, "1000": 1.8, "2500": 2.0, "+Inf": 2.0}
FAST_S = {"0.05": 9.0, "0.1": 9.9, "0.25": 10.0, "+Inf": 10.0}


def openmetrics() -> str:
    """The namespace's series as OpenMetrics, for ``promtool tsdb create-blocks-from openmetrics``."""
    samples: list[str] = []

    # Knative: queue-proxy per revision; the canary v2 fails a third of its requests and is slow.
    for version, revision, ok, failed, latency in (
        ("v1", "00001", 10.0, 0.01, FAST_MS),
        ("v2", "00002", 2.0, 1.0, SLOW_MS),
    ):
        pod = f"fraud-predictor-{revision}-deployment-7c9d8-{version}xx"
        labels = (
            f'namespace="{NAMESPACE}",configuration_name="fraud-predictor",'
            f'revision_name="fraud-predictor-{revision}",pod="{pod}",modelplane_dev_model="fraud",'
            f'modelplane_dev_version="{version}",modelplane_dev_runtime="sklearn"'
        )
        samples.extend(
            _counter("revision_app_request_count", f'{labels},response_code_class="2xx"', ok),
        )
        samples.extend(
            _counter("revision_app_request_count", f'{labels},response_code_class="5xx"', failed),
        )
        samples += _histogram("revision_app_request_latencies", labels, latency)
        # The runtime in the same pod counts the same requests again, in seconds.
        samples.extend(
            _histogram(
                "request_predict_seconds", _pod("fraud", version, "sklearn", pod), {"0.5": 1.0, "+Inf": 1.0}
            ),
        )
    # A transformer of the Knative model: its errors are not the predictor's.
    transformer = (
        f'namespace="{NAMESPACE}",configuration_name="fraud-transformer",revision_name="fraud-transformer-00001",'
        'pod="fraud-transformer-00001-deployment-5d6f7-aaaaa",modelplane_dev_model="fraud"'
    )
    samples.extend(
        _counter("revision_app_request_count", f'{transformer},response_code_class="5xx"', 50.0),
    )
    # Standard MLServer: named predictors, the canary v2 fails 10% of its requests.
    for model, version, ok, failed in (
        ("ranker", "v1", 20.0, 0.0),
        ("ranker", "v2", 4.5, 0.5),
        ("ranker-x", "v1", 10.0, 0.0),
    ):
        labels = _pod(model, version, "mlserver", f"{model}-{version}-predictor-6f7d8-abcde")
        samples.extend(
            _counter("model_infer_request_success_total", f'{labels},model_name="{model}"', ok),
        )
        samples.extend(
            _counter("model_infer_request_failure_total", f'{labels},model_name="{model}"', failed),
        )
        samples.extend(
            _histogram(
                "rest_server_request_duration_seconds",
                f'{labels},path="/v2/models/{model}/infer"',
                FAST_S if version == "v1" else {"0.1": 1.0, "0.5": 3.0, "1": 5.0, "+Inf": 5.0},
            ),
        )
    # Standard KServe model server (scikit-learn), unnamed predictor.
    samples.extend(
        _histogram(
            "request_predict_seconds", _pod("scorer", "v1", "sklearn", "scorer-predictor-5b6c7-fghij"), FAST_S
        ),
    )
    # Standard vLLM: its own histogram counts; the KServe histogram it also exports does not.
    chat = _pod("chat", "v1", "huggingface", "chat-predictor-4a5b6-klmno")
    samples.extend(
        _histogram("vllm:e2e_request_latency_seconds", chat, {"1": 1.0, "5": 2.0, "+Inf": 2.0}),
    )
    samples += _histogram("request_predict_seconds", chat, {"0.01": 2.0, "+Inf": 2.0})
    # Standard Triton: success and failure counters.
    detector = (
        _pod("detector", "v1", "triton", "detector-predictor-3c4d5-pqrst") + ',model="detector",version="1"'
    )
    samples += _counter("nv_inference_request_success", detector, 9.0)
    samples += _counter("nv_inference_request_failure", detector, 1.0)
    # ModelMesh: the model and its candidate's side object, by vModelId.
    for vmodel, ok, failed in (("merchant", 30.0, 0.03), ("merchant-v2", 3.0, 0.0)):
        labels = (
            f'namespace="{NAMESPACE}",pod="modelmesh-serving-mlserver-1.x-7d8e9-uvwxy",vModelId="{vmodel}"'
        )
        samples.extend(
            _counter("modelmesh_api_request_milliseconds_count", f'{labels},code="OK"', ok),
        )
        samples.extend(
            _counter("modelmesh_api_request_milliseconds_count", f'{labels},code="Unavailable"', failed),
        )
        samples.extend(
            _histogram(
                "modelmesh_api_request_milliseconds",
                f'{labels},code="OK"',
                {"5": ok * 0.9, "20": ok, "+Inf": ok},
            ),
        )
    # kube-state-metrics: the predictor pods with their model and version labels, and a GPU node.
    for model, version, pod in PODS:
        labels = (
            f'namespace="{NAMESPACE}",pod="{pod}",label_modelplane_dev_model="{model}",'
            f'label_modelplane_dev_version="{version}"'
        )
        samples += [f"kube_pod_labels{{{labels}}} 1 {t}" for t in TIMES]
        gpu = (
            f'namespace="{NAMESPACE}",pod="{pod}",container="kserve-container",node="gpu-a",'
            'resource="nvidia_com_gpu",unit="integer"'
        )
        samples += [f"kube_pod_container_resource_requests{{{gpu}}} 1 {t}" for t in TIMES]
    samples += [f'kube_node_labels{{node="gpu-a",label_modelplane_dev_gpu_pool="h100"}} 1 {t}' for t in TIMES]
    # dcgm-exporter on that node: two GPUs, one held by the Knative model's pod (scraped with
    # honorLabels, so a held GPU has its pod's namespace and pod, a free one the exporter's).
    for gpu, pod, util in (("0", "fraud-predictor-00001-deployment-7c9d8-v1xx", 70), ("1", "", 0)):
        held = f'namespace="{NAMESPACE}",pod="{pod}"' if pod else 'namespace="gpu-operator",pod="dcgm-a"'
        labels = f'node="gpu-a",gpu="{gpu}",UUID="GPU-{gpu}",modelName="NVIDIA H100 80GB HBM3",{held}'
        for name, value in (
            ("DCGM_FI_DEV_GPU_UTIL", util),
            ("DCGM_FI_DEV_FB_USED", 20480),
            ("DCGM_FI_DEV_FB_FREE", 61440),
            ("DCGM_FI_DEV_POWER_USAGE", 350),
            ("DCGM_FI_DEV_XID_ERRORS", 0),
        ):
            samples += [f"{name}{{{labels}}} {value} {t}" for t in TIMES]
    # OpenMetrics wants each family's samples together; as type "unknown", a family is one name.
    by_name: dict[str, list[str]] = {}
    for line in samples:
        by_name.setdefault(line.split("{", 1)[0], []).append(line)
    out: list[str] = []
    for name in sorted(by_name):
        out.append(f"# TYPE {name} unknown")
        out += by_name[name]
    return "\n".join([*out, "# EOF", ""])

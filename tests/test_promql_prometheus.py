"""Every query that names pods, run on a real Prometheus over series labelled as KServe's pods are.

KServe v0.20.0 names a Standard-mode predictor's Deployment ``<model>-<name>-predictor`` when the
predictor has a name (modelplane names the stable predictor and every canary after its version;
pkg/constants/constants.go:799-804), and the Deployment controller names its pods
``<deployment>-<pod-template hash>-<5 random>``, cut to 58 characters before the random part
(k8s.io/kubernetes pkg/controller/deployment/sync.go:201, k8s.io/apiserver
pkg/storage/names/generate.go:44-54), both from the alphabet ``bcdfghjklmnpqrstvwxz2456789``. The
pod names below are written out by hand from those rules, not computed by the code under test.
Series scraped by modelplane's PodMonitor carry ``namespace`` and ``pod`` (prometheus-operator's
pod-monitor relabelings) and the model, version and runtime pod labels; DCGM's carry the pod and
namespace of the GPU's user (dcgm-exporter's pod mapping, kept by ``honorLabels``).

The stack is built with a lock and a rollout under way, so every query is the one modelplane
renders: the KEDA query of each model's stable predictor, the rollout gates of the canary, and
the SLO recording rules of the model.
"""

from __future__ import annotations

import copy
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelplane.build import build, desired_models
from modelplane.gpu_operator import chart as gpu_operator_chart
from modelplane.kube import Obj
from modelplane.promql import model_selector
from modelplane.rollout import state
from modelplane.rollout.gates import Target, compile_gates
from modelplane.rollout.policy import Gate
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.slo import LATENCY_RECORD, SloModel, recording_rules
from modelplane.stack import parse_stack
from modelplane.upstream import Versions
from tests.prometheus import instant, prometheus_server, scalar, serving_openmetrics

START = 1767225600  # 2026-01-01T00:00:00Z
END = START + 600
STEP = 15
NS = "search"
LONG = "fraud-detection-gradient-boosted-risk"
"""A model as long as the rules allow in this namespace, whose stable predictor's pod names are cut:
`<deployment>-<hash>-` is longer than 58 characters."""


def _model(
    name: str, runtime: str, fmt: tuple[str, str], scaling: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "search",
        "runtime": runtime,
        "format": {"name": fmt[0], "version": fmt[1]},
        "storage": {"uri": f"s3://models/{name}/v1"},
        "version": "v1",
        "scaling": {"minReplicas": 1, "maxReplicas": 8, **scaling},
        **extra,
    }


BASE: dict[str, Any] = {
    "stack": {"name": "prom", "tier": "staging"},
    "controlPlane": {"ingress": {"domain": "models.example.com"}, "defaultDeploymentMode": "standard"},
    "tenants": [{"name": "search"}],
    "gpuPools": [{"name": "l4", "product": "NVIDIA-L4", "minNodes": 1, "maxNodes": 2}],
    "rollout": {
        "strategy": "canary",
        "steps": [10, 50, 100],
        "stepInterval": "10m",
        "gates": [{"name": "latency", "metric": "latency-p99", "max": 0.5}],
    },
    "models": [
        _model("ranker", "sklearn", ("sklearn", "1"), {"metric": "rps", "target": 50}),
        _model("ranker-x", "sklearn", ("sklearn", "1"), {"metric": "rps", "target": 50}),
        _model(LONG, "sklearn", ("sklearn", "1"), {"metric": "rps", "target": 50}),
        _model("scorer", "mlserver", ("sklearn", "1"), {"metric": "concurrency", "target": 4}),
        _model("embed", "triton", ("onnx", "1"), {"metric": "queue-depth", "target": 8}),
        _model(
            "llm",
            "huggingface",
            ("huggingface", "1"),
            {"metric": "gpu-utilization", "target": 70},
            resources={"gpu": 1, "pool": "l4"},
        ),
    ],
}

# Pods as KServe and the Deployment controller name them (see the module docstring).
RANKER_V1 = ["ranker-v1-predictor-6d4f9b7c5-x2k4q", "ranker-v1-predictor-6d4f9b7c5-9zzlm"]
RANKER_V2 = ["ranker-v2-predictor-7b8c9d5f6-q5w7z"]
NEIGHBOUR = ["ranker-x-v1-predictor-5c6b7d8f9-bbxqz"]
TRANSFORMER = ["ranker-transformer-5f6d7c8b9-kk2vw"]
LONG_V1 = [f"{LONG}-v1-predictor-6d4f9b7x2k4q", f"{LONG}-v1-predictor-6d4f9b7tt7wz"]
SCORER_V1 = ["scorer-v1-predictor-8d7c6b5f4-mq2xr"]
EMBED_V1 = ["embed-v1-predictor-4c5d6f7g8-zp9rw", "embed-v1-predictor-4c5d6f7g8-wq4tk"]
LLM_V1 = ["llm-v1-predictor-9f8d7c6b5-ls5mn", "llm-v1-predictor-9f8d7c6b5-dv6pq"]


def _counter(name: str, labels: str, per_second: float) -> list[str]:
    return [f"{name}{{{labels}}} {per_second * (t - START):.6f} {t}" for t in range(START, END + 1, STEP)]


def _gauge(name: str, labels: str, value: float) -> list[str]:
    return [f"{name}{{{labels}}} {value} {t}" for t in range(START, END + 1, STEP)]


def _scraped(pod: str, model: str, version: str, runtime: str, namespace: str = NS) -> str:
    """The labels a series gets from modelplane's PodMonitor (and the server's own, none here)."""
    return (
        f'namespace="{namespace}",pod="{pod}",container="kserve-container",modelplane_dev_model="{model}",'
        f'modelplane_dev_version="{version}",modelplane_dev_runtime="{runtime}"'
    )


def _histogram(name: str, labels: str, buckets: dict[str, float]) -> list[str]:
    lines: list[str] = []
    for le, rate in buckets.items():
        lines += _counter(name, f'{labels},le="{le}"', rate)
    return lines


FAST = {"0.1": 9.0, "0.25": 10.0, "1": 10.0, "2.5": 10.0, "+Inf": 10.0}
SLOW = {"0.1": 0.0, "0.25": 0.0, "1": 1.0, "2.5": 2.0, "+Inf": 2.0}


def openmetrics() -> str:
    lines: list[str] = ["# TYPE request_predict_seconds_count counter"]
    # KServe's SDK servers: requests per second on each pod, and latency histograms.
    for pods, model, version, rate in (
        (RANKER_V1, "ranker", "v1", (10.0, 20.0)),
        (RANKER_V2, "ranker", "v2", (5.0,)),
        (NEIGHBOUR, "ranker-x", "v1", (100.0,)),
        (LONG_V1, LONG, "v1", (3.0, 4.0)),
    ):
        for pod, per_second in zip(pods, rate, strict=True):
            lines += _counter(
                "request_predict_seconds_count", _scraped(pod, model, version, "sklearn"), per_second
            )
    # The transformer runs KServe's SDK too, and its pods carry the model label.
    lines += _counter(
        "request_predict_seconds_count", _scraped(TRANSFORMER[0], "ranker", "v1", "sklearn"), 7.0
    )
    # The same pod name in another namespace is another pod.
    lines += _counter(
        "request_predict_seconds_count", _scraped(RANKER_V1[0], "ranker", "v1", "sklearn", "other"), 50
    )
    lines.append("# TYPE request_predict_seconds_bucket counter")
    lines += _histogram(
        "request_predict_seconds_bucket", _scraped(RANKER_V1[0], "ranker", "v1", "sklearn"), FAST
    )
    lines += _histogram(
        "request_predict_seconds_bucket", _scraped(RANKER_V2[0], "ranker", "v2", "sklearn"), SLOW
    )
    lines += _histogram(
        "request_predict_seconds_bucket", _scraped(NEIGHBOUR[0], "ranker-x", "v1", "sklearn"), SLOW
    )
    # MLServer 1.7.1: model_infer_request_duration is a Summary in seconds (busy seconds per second).
    lines.append("# TYPE model_infer_request_duration_sum counter")
    lines += _counter(
        "model_infer_request_duration_sum", _scraped(SCORER_V1[0], "scorer", "v1", "mlserver"), 2.5
    )
    # Triton: requests waiting per pod.
    lines.append("# TYPE nv_inference_pending_request_count gauge")
    for pod, waiting in zip(EMBED_V1, (6, 9), strict=True):
        labels = _scraped(pod, "embed", "v1", "triton") + ',model="onnx-model",version="1"'
        lines += _gauge("nv_inference_pending_request_count", labels, waiting)
    # dcgm-exporter: one series per GPU, labelled with the pod using it (honorLabels keeps them).
    lines.append("# TYPE DCGM_FI_DEV_GPU_UTIL gauge")
    for i, (pod, use) in enumerate(zip(LLM_V1, (60, 80), strict=True)):
        labels = (
            f'namespace="{NS}",pod="{pod}",container="kserve-container",gpu="0",UUID="GPU-{i}",'
            f'Hostname="gpu-node-{i}",job="nvidia-dcgm-exporter",instance="10.0.0.{i}:9400"'
        )
        lines += _gauge("DCGM_FI_DEV_GPU_UTIL", labels, use)
    return "\n".join([*lines, "# EOF", ""])


def _stacks() -> tuple[ServingPlatformArgs, ServingPlatformArgs]:
    base = parse_stack(copy.deepcopy(BASE), "prom.yaml")
    head_data = copy.deepcopy(BASE)
    ranker = head_data["models"][0]
    ranker["version"], ranker["storage"]["uri"] = "v2", "s3://models/ranker/v2"
    return base, parse_stack(head_data, "prom.yaml")


@pytest.fixture(scope="module")
def rendered() -> dict[str, Obj]:
    """The InferenceServices of the head stack, with ranker's canary v2 at its first step."""
    base, head = _stacks()
    lock = state.apply(None, desired_models(base), stack="prom", now="2026-01-01T00:00:00Z")
    lock = state.apply(lock, desired_models(head), stack="prom", now="2026-01-01T00:00:00Z")
    objects = build(head, lock=lock).objects
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "InferenceService"}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_openmetrics(tmp_path_factory.mktemp("promql"), openmetrics()) as url:
        yield url


def _keda_query(isvc: Obj) -> str:
    (metric,) = isvc["spec"]["predictor"]["autoScaling"]["metrics"]
    query: str = metric["external"]["metric"]["query"]
    return query


def test_the_predictors_are_named_as_the_pods_above(rendered: dict[str, Obj]) -> None:
    # The hand-written pod names assume these predictor names; KServe names the pods after them.
    names = {name: isvc["spec"]["predictor"].get("name") for name, isvc in rendered.items()}
    assert names == {"ranker": "v1", "ranker-x": "v1", LONG: "v1", "scorer": "v1", "embed": "v1", "llm": "v1"}
    assert [c["predictor"]["name"] for c in rendered["ranker"]["spec"]["canary"]] == ["v2"]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # ranker's two stable pods; not its canary, its transformer, ranker-x, nor another namespace.
        ("ranker", 30.0),
        ("ranker-x", 100.0),
        # Both pods, though their names are cut before the hash ends.
        (LONG, 7.0),
        ("scorer", 2.5),
        ("embed", 15.0),
        ("llm", 70.0),
    ],
)
def test_keda_queries_measure_the_stable_predictor_pods(
    rendered: dict[str, Obj], prometheus: str, model: str, expected: float
) -> None:
    value = scalar(prometheus, _keda_query(rendered[model]), at=END)
    assert value == pytest.approx(expected, rel=1e-6)


def test_the_gate_measures_the_candidate_pods_only(prometheus: str) -> None:
    target = Target(
        mode="standard", runtime="sklearn", namespace=NS, model="ranker", version="v2", name="v2", window="5m"
    )
    (gate,) = compile_gates([Gate(name="latency", metric="latency-p99", max=0.5)], target)
    assert gate.query is not None
    # The candidate's histogram alone: half its requests above 1s, so p99 sits in the 1..2.5 bucket.
    value = scalar(prometheus, gate.query, at=END)
    assert value is not None and 1.0 < value <= 2.5


def test_the_slo_latency_measures_every_version_of_the_model_and_no_neighbour(prometheus: str) -> None:
    models = [SloModel("ranker", "standard", "sklearn", availability=99.9, latency_ms=500)]
    (rule,) = [r for r in recording_rules(NS, models) if r["record"] == LATENCY_RECORD]
    # The namespace's one rule: each model's p99 is its own series.
    values = {s["metric"]["model"]: float(s["value"][1]) for s in instant(prometheus, rule["expr"], at=END)}
    # v1 (10/s, 90% under 0.1s) and v2 (2/s, none under 0.25s): of 12/s, 11 under 1s, 12 under 2.5s.
    assert 1.0 < values["ranker"] <= 2.5
    selector = ",".join(model_selector("standard", NS, "ranker"))
    pods = instant(prometheus, f"count by (pod) (request_predict_seconds_bucket{{{selector}}})", at=END)
    assert {s["metric"]["pod"] for s in pods} == {RANKER_V1[0], RANKER_V2[0]}


# --- dcgm-exporter's pod labels survive the scrape only with honorLabels ---------------------------


class _Exporter(http.server.BaseHTTPRequestHandler):
    """dcgm-exporter's exposition for one GPU in use by a model's pod."""

    body = (
        "# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
        f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="GPU-0",Hostname="gpu-node-0",container="kserve-container",'
        f'namespace="{NS}",pod="{LLM_V1[0]}"}} 64\n'
    ).encode()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def exporter() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _scrape_config(port: int) -> str:
    # What prometheus-operator generates for the operator's dcgm-exporter ServiceMonitor: the
    # target's own namespace and pod become labels, and honor_labels follows honorLabels.
    jobs = []
    for job, honor in (("honored", "true"), ("renamed", "false")):
        jobs.append(
            f"  - job_name: {job}\n"
            f"    honor_labels: {honor}\n"
            "    scrape_interval: 1s\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{port}'], labels: {{namespace: gpu-operator, "
            "pod: nvidia-dcgm-exporter-x2k4q, service: nvidia-dcgm-exporter}}]\n"
        )
    return "global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(jobs)


def test_gpu_utilization_needs_the_dcgm_labels_honoured(
    rendered: dict[str, Obj], exporter: int, tmp_path: Path
) -> None:
    values = gpu_operator_chart(parse_stack(copy.deepcopy(BASE), "prom.yaml").gpu_pools, Versions()).values
    assert values["dcgmExporter"]["serviceMonitor"]["honorLabels"] is True
    query = _keda_query(rendered["llm"])
    with prometheus_server(tmp_path, config=_scrape_config(exporter)) as url:
        deadline = time.monotonic() + 60
        while len(instant(url, "DCGM_FI_DEV_GPU_UTIL")) < 2:
            assert time.monotonic() < deadline, "Prometheus scraped nothing within a minute"
            time.sleep(0.5)
        by_job = {s["metric"]["job"]: s["metric"] for s in instant(url, "DCGM_FI_DEV_GPU_UTIL")}
        assert by_job["renamed"]["exported_pod"] == LLM_V1[0]
        assert by_job["renamed"]["pod"] == "nvidia-dcgm-exporter-x2k4q"
        assert by_job["honored"]["pod"] == LLM_V1[0]
        assert (
            scalar(url, query.replace("DCGM_FI_DEV_GPU_UTIL{", 'DCGM_FI_DEV_GPU_UTIL{job="honored",')) == 64
        )
        assert (
            scalar(url, query.replace("DCGM_FI_DEV_GPU_UTIL{", 'DCGM_FI_DEV_GPU_UTIL{job="renamed",')) is None
        )

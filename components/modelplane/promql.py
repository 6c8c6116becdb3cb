"""The PromQL that measures a model: its series per deployment mode and runtime.

KServe exposes no unified metric set, so where a request count, a failure count or a latency
histogram comes from depends on the mode (Knative's queue-proxy, ModelMesh, or the runtime's
own metrics in Standard mode); docs/monitoring.md has the table. The rollout gates and the SLO
recording rules both build their queries here, so a canary is judged on exactly what the
model's SLO measures.
"""

from __future__ import annotations

KSERVE_SDK_RUNTIMES: tuple[str, ...] = (
    "sklearn",
    "xgboost",
    "lightgbm",
    "pmml",
    "paddle",
    "predictive",
    "autogluon",
    "custom",
)
"""Runtimes whose server is KServe's Python model server (``kserve.ModelServer``: its
``request_predict_seconds`` histogram, no failure count)."""

_ERROR_RATIO = "sum(rate({failed}[{window}])) / sum(rate({total}[{window}]))"
_P99 = "histogram_quantile(0.99, sum by (le) (rate({bucket}[{window}])))"


def matchers(*items: str) -> str:
    """Label matchers as a PromQL selector: ``{a="b",c=~"d"}``."""
    return "{" + ",".join(items) + "}"


Query = str | tuple[None, str]
"""A PromQL query, or (None, why the runtime cannot answer it)."""


def model_selector(mode: str, namespace: str, model: str) -> list[str]:
    """Label matchers that select every version of a model: what its SLO is measured on.

    Knative: the model's predictor configuration (all its revisions). ModelMesh: the model's
    ``vModelId`` (a candidate's side object has its own). Standard: the pods of the unnamed
    predictor (``<model>-predictor-*``) and of every named one (``<model>-<name>-predictor-*``,
    stable and canary), narrowed by the ``modelplane_dev_model`` pod label so that a model named
    ``a-b`` is not counted as a version of ``a``.
    """
    ns = f'namespace="{namespace}"'
    if mode == "knative":
        return [ns, f'configuration_name="{model}-predictor"']
    if mode == "modelmesh":
        return [ns, f'vModelId="{model}"']
    return [
        ns,
        f'pod=~"{model}-predictor-.*|{model}-.+-predictor-.*"',
        f'modelplane_dev_model="{model}"',
    ]


_SIDECAR_METRICS: dict[str, tuple[str, str, str]] = {
    # mode: (request counter, matcher of failed requests, latency histogram in milliseconds)
    "knative": (
        "revision_app_request_count",
        'response_code_class="5xx"',
        "revision_app_request_latencies_bucket",
    ),
    "modelmesh": (
        "modelmesh_api_request_milliseconds_count",
        'code!="OK"',
        "modelmesh_api_request_milliseconds_bucket",
    ),
}
"""Modes where something beside the runtime (queue-proxy, ModelMesh) counts every request."""


def _failure_ratio(success: str, failure: str, selector: list[str], window: str) -> str:
    """Failures over all requests, from a runtime's separate success and failure counters."""
    failed = failure + matchers(*selector)
    return (
        f"sum(rate({failed}[{window}])) / "
        f"(sum(rate({success}{matchers(*selector)}[{window}])) + sum(rate({failed}[{window}])))"
    )


VLLM_RUNTIMES: tuple[str, ...] = ("huggingface", "vllm", "huggingface-multinode")
"""Catalog runtimes whose server is vLLM, so the model's pods export vLLM's metrics."""

LLM_METRICS: tuple[str, ...] = ("queue-depth", "concurrency", "tokens-per-second", "kv-cache", "ttft-p99")
"""vLLM metrics a gate or a scaling intent may name, beside a model's error rate and latency."""


def llm_selector(namespace: str, service: str) -> list[str]:
    """Label matchers of an LLM service's vLLM pods, as the LLM PodMonitor labels them (``llm_service``)."""
    return [f'namespace="{namespace}"', f'llm_service="{service}"']


def llm_queries(selector: list[str], window: str) -> dict[str, str]:
    """PromQL over vLLM's own metrics, for scaling intents and gates.

    The names are vLLM's (vllm-project/vllm vllm/v1/metrics/loggers.py, PrometheusStatLogger:
    ``vllm:num_requests_waiting`` and ``vllm:num_requests_running`` gauges, the
    ``vllm:generation_tokens`` counter, the ``vllm:kv_cache_usage_perc`` gauge (a fraction; it
    replaced ``vllm:gpu_cache_usage_perc`` in vLLM 0.9), the ``vllm:time_to_first_token_seconds``
    and ``vllm:e2e_request_latency_seconds`` histograms); Prometheus' client adds ``_total`` to a
    counter and ``_bucket`` to a histogram's series.
    """
    sel = matchers(*selector)
    return {
        "queue-depth": f"sum(vllm:num_requests_waiting{sel})",
        "concurrency": f"sum(vllm:num_requests_running{sel})",
        "tokens-per-second": f"sum(rate(vllm:generation_tokens_total{sel}[{window}]))",
        "kv-cache": f"avg(vllm:kv_cache_usage_perc{sel}) * 100",
        "ttft-p99": _P99.format(bucket=f"vllm:time_to_first_token_seconds_bucket{sel}", window=window),
        "latency-p99": _P99.format(bucket=f"vllm:e2e_request_latency_seconds_bucket{sel}", window=window),
    }


def _with_llm_metrics(
    runtime: str, selector: list[str], window: str, queries: dict[str, Query]
) -> dict[str, Query]:
    """A model's gate queries, with vLLM's metrics where its server is vLLM."""
    llm = llm_queries(selector, window) if runtime in VLLM_RUNTIMES else {}
    why = (None, f"runtime {runtime!r} is not vLLM and exports no vLLM metrics")
    return queries | {metric: llm.get(metric, why) for metric in LLM_METRICS}


def model_queries(mode: str, runtime: str, selector: list[str], window: str) -> dict[str, Query]:
    """PromQL per built-in gate metric, or why there is none (see ``_model_queries``).

    Beside ``error-rate`` and ``latency-p99``, every vLLM metric of ``LLM_METRICS``: measurable for
    models whose runtime is vLLM.
    """
    return _with_llm_metrics(runtime, selector, window, _model_queries(mode, runtime, selector, window))


def _model_queries(mode: str, runtime: str, selector: list[str], window: str) -> dict[str, Query]:
    """PromQL per built-in gate metric (``error-rate``, ``latency-p99``), or why there is none.

    ``selector`` picks the pods or model (``candidate_selector`` for a gate, ``model_selector``
    for an SLO); ``window`` is the rate window. Rollout gates and the SLO recording rules both
    come from here, so a canary is judged on exactly what the model's SLO measures.
    """
    w = window
    if mode in _SIDECAR_METRICS:
        counter, failed, bucket = _SIDECAR_METRICS[mode]
        return {
            "error-rate": _ERROR_RATIO.format(
                failed=counter + matchers(*selector, failed), total=counter + matchers(*selector), window=w
            ),
            # Both histograms are in milliseconds; gates and SLOs speak seconds.
            "latency-p99": _P99.format(bucket=bucket + matchers(*selector), window=w) + " / 1000",
        }
    no_failures = (None, f"runtime {runtime!r} counts no failed requests in standard mode")
    no_latency = (None, f"runtime {runtime!r} exposes no latency histogram in standard mode")
    if runtime in KSERVE_SDK_RUNTIMES:
        return {
            "error-rate": no_failures,
            "latency-p99": _P99.format(
                bucket="request_predict_seconds_bucket" + matchers(*selector), window=w
            ),
        }
    if runtime in VLLM_RUNTIMES:
        return {
            "error-rate": no_failures,
            "latency-p99": _P99.format(
                bucket="vllm:e2e_request_latency_seconds_bucket" + matchers(*selector), window=w
            ),
        }
    if runtime == "mlserver":
        return {
            "error-rate": _failure_ratio(
                "model_infer_request_success_total", "model_infer_request_failure_total", selector, w
            ),
            "latency-p99": _P99.format(
                bucket="rest_server_request_duration_seconds_bucket"
                + matchers(*selector, 'path=~".*/infer"'),
                window=w,
            ),
        }
    if runtime == "triton":
        return {
            "error-rate": _failure_ratio(
                "nv_inference_request_success", "nv_inference_request_failure", selector, w
            ),
            "latency-p99": (
                None,
                "Triton exports cumulative duration counters, not a histogram, so a p99 cannot be computed",
            ),
        }
    return {"error-rate": no_failures, "latency-p99": no_latency}

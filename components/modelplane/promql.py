"""The PromQL that measures a model: its series per deployment mode and runtime.

KServe exposes no unified metric set, so where a request count, a failure count or a latency
histogram comes from depends on the mode (Knative's queue-proxy, ModelMesh, or the runtime's
own metrics in Standard mode); docs/monitoring.md has the table. The rollout gates and the SLO
recording rules both build their queries here, so a canary is judged on exactly what the
model's SLO measures.
"""

from __future__ import annotations

KSERVE_SDK_RUNTIMES: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm", "custom")

_ERROR_RATIO = "sum(rate({failed}[{window}])) / sum(rate({total}[{window}]))"
_P99 = "histogram_quantile(0.99, sum by (le) (rate({bucket}[{window}])))"


POD_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
"""The characters of a ReplicaSet's pod-template hash and of a generated pod name's random suffix
(k8s.io/apimachinery v0.33 pkg/util/rand/rand.go:83 ``alphanums``; no vowels, so no word)."""


def component_name(model: str, component: str = "predictor", name: str | None = None) -> str:
    """The name KServe v0.20.0 gives a component's Deployment, Service and autoscaler in Standard mode.

    ``<model>-predictor`` for an unnamed predictor, ``<model>-<name>-predictor`` for a named one
    (the stable predictor and every ``spec.canary[]`` entry, which modelplane always names),
    ``<model>-transformer`` and ``<model>-explainer`` (pkg/constants/constants.go:799-828,
    used by components/predictor.go:159 and 914-921 and components/transformer.go:95).
    """
    if component == "predictor" and name:
        return f"{model}-{name}-predictor"
    return f"{model}-{component}"


def pods_of(deployment: str) -> str:
    """A PromQL regex for the pods of a Deployment, and of no other KServe component.

    The Deployment controller names its ReplicaSet ``<deployment>-<pod-template hash>``
    (k8s.io/kubernetes v1.33 pkg/controller/deployment/sync.go:201) and the ReplicaSet names
    each pod ``<replicaset>-`` cut to 58 characters plus 5 random characters (k8s.io/apiserver
    pkg/storage/names/generate.go:44-54), all from ``POD_NAME_CHARS``. Another component whose
    name starts with ``<deployment>-`` ends in ``predictor``, ``transformer`` or ``explainer``,
    whose vowels no hash holds.
    """
    return f"{deployment}-?[{POD_NAME_CHARS}-]{{5,}}"


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


def model_queries(mode: str, runtime: str, selector: list[str], window: str) -> dict[str, Query]:
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
    if runtime == "huggingface":
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

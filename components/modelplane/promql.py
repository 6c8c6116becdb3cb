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

_ERROR_RATIO = "{sum}(rate({failed}[{window}])) / {sum}(rate({total}[{window}]))"
_P99 = "histogram_quantile(0.99, sum by ({by}le) (rate({bucket}[{window}])))"


def _sum(by: tuple[str, ...]) -> str:
    """``sum`` over everything, or ``sum by (a, b) `` keeping the labels ``by``."""
    return f"sum by ({', '.join(by)}) " if by else "sum"


def _p99(bucket: str, window: str, by: tuple[str, ...]) -> str:
    return _P99.format(bucket=bucket, window=window, by="".join(f"{label}, " for label in by))


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


def _failure_ratio(
    success: str, failure: str, selector: list[str], window: str, by: tuple[str, ...] = ()
) -> str:
    """Failures over all requests, from a runtime's separate success and failure counters."""
    failed = failure + matchers(*selector)
    add = _sum(by)
    return (
        f"{add}(rate({failed}[{window}])) / "
        f"({add}(rate({success}{matchers(*selector)}[{window}])) + {add}(rate({failed}[{window}])))"
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
        "ttft-p99": _p99(f"vllm:time_to_first_token_seconds_bucket{sel}", window, ()),
        "latency-p99": _p99(f"vllm:e2e_request_latency_seconds_bucket{sel}", window, ()),
    }


def _with_llm_metrics(
    runtime: str, selector: list[str], window: str, queries: dict[str, Query]
) -> dict[str, Query]:
    """A model's gate queries, with vLLM's metrics where its server is vLLM."""
    llm = llm_queries(selector, window) if runtime in VLLM_RUNTIMES else {}
    why = (None, f"runtime {runtime!r} is not vLLM and exports no vLLM metrics")
    return queries | {metric: llm.get(metric, why) for metric in LLM_METRICS}


def model_queries(
    mode: str, runtime: str, selector: list[str], window: str, *, by: tuple[str, ...] = ()
) -> dict[str, Query]:
    """PromQL per built-in gate metric, or why there is none (see ``_model_queries``).

    Beside ``error-rate`` and ``latency-p99``, every vLLM metric of ``LLM_METRICS``: measurable for
    models whose runtime is vLLM. Queries kept ``by`` labels (one series per model, for the SLO
    recording rules and dashboards) carry the two built-in metrics only.
    """
    built = _model_queries(mode, runtime, selector, window, by=by)
    return built if by else _with_llm_metrics(runtime, selector, window, built)


def _model_queries(
    mode: str, runtime: str, selector: list[str], window: str, *, by: tuple[str, ...] = ()
) -> dict[str, Query]:
    """PromQL per built-in gate metric (``error-rate``, ``latency-p99``), or why there is none.

    ``selector`` picks the pods or model (``candidate_selector`` for a gate, ``model_selector``
    for one model); ``window`` is the rate window. ``by`` keeps labels through every sum, so one
    query answers for every model it selects (``namespace_queries``, which the SLO recording
    rules and dashboards use). Rollout gates and the SLO recording rules both come from here, so
    a canary is judged on exactly what the model's SLO measures.
    """
    w = window
    if mode in _SIDECAR_METRICS:
        counter, failed, bucket = _SIDECAR_METRICS[mode]
        return {
            "error-rate": _ERROR_RATIO.format(
                sum=_sum(by),
                failed=counter + matchers(*selector, failed),
                total=counter + matchers(*selector),
                window=w,
            ),
            # Both histograms are in milliseconds; gates and SLOs speak seconds.
            "latency-p99": _p99(bucket + matchers(*selector), w, by) + " / 1000",
        }
    no_failures = (None, f"runtime {runtime!r} counts no failed requests in standard mode")
    no_latency = (None, f"runtime {runtime!r} exposes no latency histogram in standard mode")
    if runtime in KSERVE_SDK_RUNTIMES:
        return {
            "error-rate": no_failures,
            "latency-p99": _p99("request_predict_seconds_bucket" + matchers(*selector), w, by),
        }
    if runtime in VLLM_RUNTIMES:
        return {
            "error-rate": no_failures,
            "latency-p99": _p99("vllm:e2e_request_latency_seconds_bucket" + matchers(*selector), w, by),
        }
    if runtime == "mlserver":
        return {
            "error-rate": _failure_ratio(
                "model_infer_request_success_total", "model_infer_request_failure_total", selector, w, by
            ),
            "latency-p99": _p99(
                "rest_server_request_duration_seconds_bucket" + matchers(*selector, 'path=~".*/infer"'),
                w,
                by,
            ),
        }
    if runtime == "triton":
        return {
            "error-rate": _failure_ratio(
                "nv_inference_request_success", "nv_inference_request_failure", selector, w, by
            ),
            "latency-p99": (
                None,
                "Triton exports cumulative duration counters, not a histogram, so a p99 cannot be computed",
            ),
        }
    return {"error-rate": no_failures, "latency-p99": no_latency}


# --- every model of a namespace at once: the SLO recording rules and dashboards ----------

_MODEL_LABEL: dict[str, tuple[str, str]] = {
    "knative": ("configuration_name", "(.+)-predictor"),
    "modelmesh": ("vModelId", "(.+)"),
    "standard": ("modelplane_dev_model", "(.+)"),
}
"""Per mode, the label of a scraped series that names its model, and the regex that takes the
model's name out of it (Knative's queue-proxy names the predictor's configuration)."""

_RUNTIME_FAMILIES: dict[str, tuple[str, ...]] = {"kserve": KSERVE_SDK_RUNTIMES, "vllm": ("huggingface",)}
"""Runtimes whose pods export the same metrics (one server), measured by one query in Standard mode."""


def runtime_family(runtime: str) -> tuple[str, ...]:
    """The runtimes whose pods export the same metrics as ``runtime``'s (itself at least)."""
    return next((f for f in _RUNTIME_FAMILIES.values() if runtime in f), (runtime,))


def source_name(mode: str, runtime: str) -> str:
    """What measures a model: ``queue-proxy``, ``modelmesh``, or its Standard-mode server."""
    if mode == "knative":
        return "queue-proxy"
    if mode == "modelmesh":
        return "modelmesh"
    return next((name for name, f in _RUNTIME_FAMILIES.items() if runtime in f), runtime)


def source_selector(mode: str, namespace: str, runtime: str) -> list[str]:
    """Label matchers of every model of a namespace measured by one source.

    The source is Knative's queue-proxy, ModelMesh, or in Standard mode the runtime's own
    metrics (narrowed to the pods of the runtime's family by the ``modelplane_dev_runtime`` pod
    label, so that a server which also speaks KServe's model server metrics is counted once).
    Standard mode keeps to predictor pods, as ``model_selector`` does.
    """
    ns = f'namespace="{namespace}"'
    if mode == "knative":
        return [ns, 'configuration_name=~".+-predictor"']
    if mode == "modelmesh":
        return [ns, 'vModelId!=""']
    return [
        ns,
        'pod=~".+-predictor-.*"',
        'modelplane_dev_model!=""',
        f'modelplane_dev_runtime=~"{"|".join(runtime_family(runtime))}"',
    ]


def knative_models(namespace: str) -> str:
    """The models of a namespace that Knative's queue-proxy measures, labelled (namespace, model)."""
    counter = _SIDECAR_METRICS["knative"][0]
    label, regex = _MODEL_LABEL["knative"]
    return (
        f"label_replace(group by (namespace, {label}) ({counter}{matchers(*source_selector('knative', namespace, ''))}),"
        f' "model", "$1", "{label}", "{regex}")'
    )


def namespace_queries(
    mode: str, runtime: str, namespace: str, window: str, *, beside_knative: bool = False
) -> dict[str, Query]:
    """``model_queries`` for every model of a namespace from one source, one series per model.

    Each result is labelled exactly ``namespace`` and ``model`` and, for a model, equals
    ``model_queries`` on its ``model_selector``. A Knative model's pods also export their
    runtime's metrics, which a Standard-mode source would count again: ``beside_knative`` (a
    namespace with Knative models) leaves the models the queue-proxy measures out of it.
    """
    label, regex = _MODEL_LABEL[mode]
    built = model_queries(
        mode, runtime, source_selector(mode, namespace, runtime), window, by=("namespace", label)
    )
    result: dict[str, Query] = {}
    for metric, query in built.items():
        if isinstance(query, str):
            query = f'sum by (namespace, model) (label_replace({query}, "model", "$1", "{label}", "{regex}"))'
            if mode == "standard" and beside_knative:
                query += f" unless on (namespace, model) {knative_models(namespace)}"
        result[metric] = query
    return result

"""Per-model scaling intents, compiled to what each deployment mode understands.

A model states *what* it scales on (concurrency, rps, cpu, memory, queue depth, GPU
utilisation, tokens per second) and a target; this module decides *how*: Knative's pod
autoscaler for concurrency and rps in Knative mode, an HPA for cpu and memory in Standard
mode, a KEDA ScaledObject on a Prometheus query for everything else in Standard mode, and
nothing per model in ModelMesh mode (the mesh scales runtime pods). An intent a mode cannot
express is refused with the reason and what to do instead.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from components.base import StrictModel

Metric = Literal["concurrency", "rps", "cpu", "memory", "queue-depth", "gpu-utilization", "tokens-per-second"]

KNATIVE_METRICS: tuple[str, ...] = ("concurrency", "rps")
HPA_METRICS: tuple[str, ...] = ("cpu", "memory")
KEDA_METRICS: tuple[str, ...] = ("concurrency", "rps", "queue-depth", "gpu-utilization", "tokens-per-second")

DEFAULT_TARGETS: dict[str, int] = {
    "concurrency": 10,
    "rps": 100,
    "cpu": 80,
    "memory": 80,
    "queue-depth": 10,
    "gpu-utilization": 80,
    "tokens-per-second": 2000,
}
"""Targets used when a model names a metric but no target."""

PROMETHEUS_ADDRESS = "http://prometheus-operated.monitoring.svc:9090"

# Runtime presets: the PromQL each runtime's own metrics answer for an intent. Placeholders
# {namespace} and {model} are filled per model. Rates are over 1m so KEDA reacts within a
# minute; sums are per model because KEDA divides by the target to get replicas.
_PRESETS: dict[str, dict[str, str]] = {
    "triton": {
        "queue-depth": 'sum(nv_inference_pending_request_count{{namespace="{namespace}",model="{model}"}})',
        "gpu-utilization": 'avg(nv_gpu_utilization{{namespace="{namespace}",pod=~"{model}-predictor.*"}}) * 100',
        "rps": 'sum(rate(nv_inference_request_success{{namespace="{namespace}",model="{model}"}}[1m]))',
        "concurrency": 'sum(nv_inference_exec_count{{namespace="{namespace}",model="{model}"}})',
    },
    "huggingface": {
        "queue-depth": 'sum(vllm:num_requests_waiting{{namespace="{namespace}",model_name="{model}"}})',
        "tokens-per-second": 'sum(rate(vllm:generation_tokens_total{{namespace="{namespace}",model_name="{model}"}}[1m]))',
        "concurrency": 'sum(vllm:num_requests_running{{namespace="{namespace}",model_name="{model}"}})',
        "gpu-utilization": 'avg(DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}",pod=~"{model}-predictor.*"}})',
        "rps": 'sum(rate(vllm:request_success_total{{namespace="{namespace}",model_name="{model}"}}[1m]))',
    },
    "mlserver": {
        "queue-depth": 'sum(batch_request_queue{{namespace="{namespace}",model_name="{model}"}})',
        "rps": 'sum(rate(model_infer_request_success{{namespace="{namespace}",model_name="{model}"}}[1m]))',
    },
}
# Metrics every runtime answers through KServe's own request metrics.
_GENERIC: dict[str, str] = {
    "rps": 'sum(rate(request_predict_seconds_count{{namespace="{namespace}",pod=~"{model}-predictor.*"}}[1m]))',
    "concurrency": 'sum(rate(request_predict_seconds_sum{{namespace="{namespace}",pod=~"{model}-predictor.*"}}[1m]))',
    "gpu-utilization": 'avg(DCGM_FI_DEV_GPU_UTIL{{namespace="{namespace}",pod=~"{model}-predictor.*"}})',
}


class ScalingArgs(StrictModel):
    """How one model scales."""

    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest replicas; 0 scales to zero (Knative mode, or KEDA metrics).",
    )
    max_replicas: int = Field(default=3, ge=1, le=1000, description="Most replicas.")
    metric: Metric | None = Field(
        default=None,
        description="What to scale on. Default: concurrency in Knative mode, cpu in Standard mode.",
    )
    target: int | None = Field(
        default=None,
        ge=1,
        description="Target per replica of the metric (percent for cpu, memory and GPU use).",
    )


def preset_query(runtime: str, metric: str) -> str | None:
    """The PromQL template a runtime offers for a metric, or None."""
    return _PRESETS.get(runtime, {}).get(metric) or _GENERIC.get(metric)


def preset_metrics(runtime: str) -> list[str]:
    """Metrics a runtime can scale on through KEDA."""
    return sorted(set(_PRESETS.get(runtime, {})) | set(_GENERIC))


def refusal(mode: str, scaling: ScalingArgs, runtime: str) -> str | None:
    """Why a mode cannot carry out a scaling intent, with the alternatives; None when it can."""
    metric = scaling.metric
    if mode == "modelmesh":
        if scaling.model_fields_set:
            return (
                "modelmesh mode scales runtime pods, not models: remove `scaling` and size the mesh with "
                "modelMesh.podsPerRuntime, or use deploymentMode knative or standard"
            )
        return None
    if mode == "knative":
        if metric is not None and metric not in KNATIVE_METRICS:
            return (
                f"metric {metric!r} cannot be expressed in knative mode: Knative's pod autoscaler scales on "
                "concurrency or rps; use one of those, or deploymentMode standard (cpu and memory through an HPA, "
                "queue-depth, gpu-utilization and tokens-per-second through KEDA)"
            )
        return None
    effective = metric or "cpu"
    if effective in HPA_METRICS:
        if scaling.min_replicas == 0:
            return (
                "minReplicas 0 cannot be expressed in standard mode with an HPA (it keeps at least 1 replica); "
                "use deploymentMode knative, or a KEDA metric (concurrency, rps, queue-depth, gpu-utilization, "
                "tokens-per-second), or minReplicas 1"
            )
        if scaling.target is not None and scaling.target > 100:
            return f"target {scaling.target} is a utilisation percentage for metric {effective!r}; use 1-100"
        return None
    if preset_query(runtime, effective) is None:
        available = ", ".join(preset_metrics(runtime))
        return (
            f"runtime {runtime!r} exposes no Prometheus metric for {effective!r}; "
            f"it can scale on {available}, cpu or memory"
        )
    if effective == "gpu-utilization" and scaling.target is not None and scaling.target > 100:
        return f"target {scaling.target} is a utilisation percentage for gpu-utilization; use 1-100"
    return None


def predictor_scaling(
    mode: str, scaling: ScalingArgs, *, runtime: str, namespace: str, model: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """Compile a scaling intent: (ISVC annotations, predictor fields) for the mode.

    The intent must already have passed ``refusal``.
    """
    if mode == "modelmesh":
        return {}, {}
    fields: dict[str, Any] = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
    if mode == "knative":
        metric = scaling.metric or "concurrency"
        fields["scaleMetric"] = metric
        fields["scaleTarget"] = scaling.target or DEFAULT_TARGETS[metric]
        return {}, fields
    metric = scaling.metric or "cpu"
    target = scaling.target or DEFAULT_TARGETS[metric]
    if metric in HPA_METRICS:
        fields["scaleMetric"] = metric
        fields["scaleMetricType"] = "Utilization"
        fields["scaleTarget"] = target
        return {"serving.kserve.io/autoscalerClass": "hpa"}, fields
    template = preset_query(runtime, metric)
    assert template is not None  # refusal() has ruled this out
    fields["autoScaling"] = {
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {
                        "backend": "prometheus",
                        "serverAddress": PROMETHEUS_ADDRESS,
                        "query": template.format(namespace=namespace, model=model),
                    },
                    "target": {"type": "Value", "value": str(target)},
                },
            }
        ]
    }
    return {"serving.kserve.io/autoscalerClass": "keda"}, fields

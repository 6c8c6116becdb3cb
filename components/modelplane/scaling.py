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

from modelplane.autoscaler import DEFAULT_PROGRESS_DEADLINE_SECONDS
from modelplane.base import Problem, StrictModel
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.types import Duration, FieldPath, format_duration, parse_duration

Metric = Literal["concurrency", "rps", "cpu", "memory", "queue-depth", "gpu-utilization", "tokens-per-second"]

KNATIVE_METRICS: tuple[str, ...] = ("concurrency", "rps")
HPA_METRICS: tuple[str, ...] = ("cpu", "memory")

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
"""KEDA's Prometheus address for the default monitoring namespace; see ``prometheus_address``."""

PROGRESS_DEADLINE_ANNOTATION = "serving.knative.dev/progress-deadline"

MODEL_START_ALLOWANCE_SECONDS = 600
"""Time a revision on a fresh GPU node still needs after the node is ready: image pull and model download."""


def prometheus_address(monitoring_namespace: str) -> str:
    """The in-cluster address KEDA queries: the operator's ``prometheus-operated`` Service of that namespace.

    The Prometheus operator creates ``prometheus-operated`` for every Prometheus it runs, so the
    address holds for the bundled kube-prometheus-stack and for an existing operator alike.
    """
    return f"http://prometheus-operated.{monitoring_namespace}.svc:9090"


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
    progress_deadline: Duration | None = Field(
        default=None,
        description="Knative mode: how long a new revision may take to become ready. Default: Knative's 10m, "
        "or for a GPU model its pool's nodeProvisioningTime plus 10m for image pull and model download.",
    )


def preset_query(runtime: str, metric: str) -> str | None:
    """The PromQL template a runtime offers for a metric, or None."""
    return _PRESETS.get(runtime, {}).get(metric) or _GENERIC.get(metric)


def preset_metrics(runtime: str) -> list[str]:
    """Metrics a runtime can scale on through KEDA."""
    return sorted(set(_PRESETS.get(runtime, {})) | set(_GENERIC))


def refusal(mode: str, scaling: ScalingArgs, runtime: str) -> str | None:
    """Why a mode cannot carry out a scaling intent, naming the mode and the alternatives; None when it can."""
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
    if scaling.progress_deadline is not None:
        return (
            "progressDeadline is a Knative revision setting and has no effect in standard mode; "
            "remove it, or use deploymentMode knative"
        )
    effective = metric or "cpu"
    if effective in HPA_METRICS:
        if scaling.min_replicas == 0:
            return (
                "minReplicas 0 cannot be expressed in standard mode with an HPA (it keeps at least 1 replica); "
                "use deploymentMode knative, or a KEDA metric (concurrency, rps, queue-depth, gpu-utilization, "
                "tokens-per-second), or minReplicas 1"
            )
        if scaling.target is not None and scaling.target > 100:
            return (
                f"target {scaling.target} is a utilisation percentage for metric {effective!r} in standard mode "
                "(an HPA); use 1-100"
            )
        return None
    if preset_query(runtime, effective) is None:
        available = ", ".join(preset_metrics(runtime))
        return (
            f"standard mode scales on {effective!r} through KEDA and a Prometheus query, but runtime "
            f"{runtime!r} exposes no metric for it; it can scale on {available} (KEDA), cpu or memory (HPA)"
        )
    if effective == "gpu-utilization" and scaling.target is not None and scaling.target > 100:
        return (
            f"target {scaling.target} is a utilisation percentage for gpu-utilization in standard mode "
            "(KEDA); use 1-100"
        )
    return None


def _refused_field(mode: str, scaling: ScalingArgs) -> tuple[FieldPath, object]:
    """The scaling field (and its value) a refusal is about, so the problem points at it."""
    if mode == "modelmesh":
        return (), None
    metric = scaling.metric or ("concurrency" if mode == "knative" else "cpu")
    if mode == "standard" and metric in HPA_METRICS and scaling.min_replicas == 0:
        return ("minReplicas",), 0
    utilisation = metric in (*HPA_METRICS, "gpu-utilization")
    if mode == "standard" and utilisation and scaling.target is not None and scaling.target > 100:
        return ("target",), scaling.target
    return ("metric",), metric


def problems(mode: str, scaling: ScalingArgs, *, runtime: str, path: FieldPath) -> list[Problem]:
    """The scaling intent a mode cannot carry out, at the field it is about; ``path`` is the scaling's."""
    reason = refusal(mode, scaling, runtime)
    if reason is None:
        return []
    field, value = _refused_field(mode, scaling)
    return [Problem((*path, *field), reason, value)]


def progress_deadline_seconds(scaling: ScalingArgs, pool: GpuPoolArgs | None) -> int | None:
    """The per-revision progress deadline a Knative-mode model gets, or None for Knative's default.

    A model's own value wins. A GPU model may have to wait for a new node of its pool, so its
    deadline is the pool's provisioning time plus the allowance for image pull and model
    download, never less than Knative's default.
    """
    if scaling.progress_deadline is not None:
        return parse_duration(scaling.progress_deadline)
    if pool is None:
        return None
    return max(DEFAULT_PROGRESS_DEADLINE_SECONDS, pool.provisioning_seconds + MODEL_START_ALLOWANCE_SECONDS)


def scale_to_zero_risk(
    mode: str, scaling: ScalingArgs, pool: GpuPoolArgs | None, *, grace_seconds: int, scale_to_zero: bool
) -> str | None:
    """Why a GPU model that may scale to zero would fail its cold starts, or None.

    A cold start of a GPU model can wait for a new node of its pool. When both the time the
    last pod is kept (the scale-to-zero grace) and the time a revision may take to become
    ready (the progress deadline) are shorter than the pool's node provisioning time, the
    revision fails before its node exists (KServe issues 1247, 2882).
    """
    if mode != "knative" or pool is None or scaling.min_replicas != 0 or not scale_to_zero:
        return None
    deadline = progress_deadline_seconds(scaling, pool) or DEFAULT_PROGRESS_DEADLINE_SECONDS
    needed = pool.provisioning_seconds
    if grace_seconds >= needed or deadline >= needed:
        return None
    return (
        f"GPU model may scale to zero in knative mode, but its scale-to-zero grace ({grace_seconds}s, "
        f"autoscaler.scaleToZeroGracePeriod) and progress deadline ({deadline}s, scaling.progressDeadline) "
        f"are both shorter than pool {pool.name!r}'s nodeProvisioningTime ({needed}s), so a cold start fails "
        "before its node is ready; set scaling.minReplicas 1, remove scaling.progressDeadline (it is then "
        "sized from the pool), or raise autoscaler.scaleToZeroGracePeriod"
    )


def predictor_scaling(
    mode: str,
    scaling: ScalingArgs,
    *,
    runtime: str,
    namespace: str,
    model: str,
    pool: GpuPoolArgs | None = None,
    prometheus: str = PROMETHEUS_ADDRESS,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Compile a scaling intent: (ISVC annotations, predictor fields) for the mode.

    The intent must already have passed ``refusal``. ``pool`` sizes the progress deadline of
    a GPU model in Knative mode; ``prometheus`` is the address KEDA queries (see
    ``prometheus_address``).
    """
    if mode == "modelmesh":
        return {}, {}
    fields: dict[str, Any] = {"minReplicas": scaling.min_replicas, "maxReplicas": scaling.max_replicas}
    if mode == "knative":
        metric = scaling.metric or "concurrency"
        fields["scaleMetric"] = metric
        fields["scaleTarget"] = scaling.target or DEFAULT_TARGETS[metric]
        deadline = progress_deadline_seconds(scaling, pool)
        if deadline is not None:
            # A predictor annotation lands on the revision template, where Knative reads it.
            fields["annotations"] = {PROGRESS_DEADLINE_ANNOTATION: format_duration(deadline)}
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
                        "serverAddress": prometheus,
                        "query": template.format(namespace=namespace, model=model),
                    },
                    "target": {"type": "Value", "value": str(target)},
                },
            }
        ]
    }
    return {"serving.kserve.io/autoscalerClass": "keda"}, fields

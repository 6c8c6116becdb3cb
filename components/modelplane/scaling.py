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

from pydantic import Field, field_validator

from modelplane.autoscaler import DEFAULT_PROGRESS_DEADLINE_SECONDS
from modelplane.base import Problem, StrictModel
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.promql import KSERVE_SDK_RUNTIMES, component_name, pods_of
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

AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
"""KServe's annotation choosing a Standard-mode component's autoscaler (``hpa`` or ``keda``)."""

MODEL_START_ALLOWANCE_SECONDS = 600
"""Time a revision on a fresh GPU node still needs after the node is ready: image pull and model download."""


def prometheus_address(monitoring_namespace: str) -> str:
    """The in-cluster address KEDA queries: the operator's ``prometheus-operated`` Service of that namespace.

    The Prometheus operator creates ``prometheus-operated`` for every Prometheus it runs, so the
    address holds for the bundled kube-prometheus-stack and for an existing operator alike.
    """
    return f"http://prometheus-operated.{monitoring_namespace}.svc:9090"


# Runtime presets: the PromQL each runtime's own metrics answer for an intent, over the pods of
# the model's stable predictor ({pods}: ``promql.pods_of``), which is what KEDA scales; a canary
# runs fixed replicas beside it. Rates are over 1m so KEDA reacts within a minute; sums are over
# the pods because KEDA divides the value by the target to get replicas. Every series carries
# `namespace` and `pod` from the PodMonitor (prometheus-operator pkg/prometheus/promcfg.go, the
# pod monitor's relabelings) or, for DCGM, from dcgm-exporter's own pod mapping (see
# gpu_operator.py: its ServiceMonitor honours those labels). Concurrency is Little's law where a
# server has no in-flight gauge: busy seconds per second.
_POD = 'namespace="{namespace}",pod=~"{pods}"'
_PRESETS: dict[str, dict[str, str]] = {
    # Triton 24.08 (docs/user_guide/metrics.md): per-model gauges and counters, GPU use 0..1.
    "triton": {
        "queue-depth": "sum(nv_inference_pending_request_count{{" + _POD + "}})",
        "gpu-utilization": "avg(nv_gpu_utilization{{" + _POD + "}}) * 100",
        "rps": "sum(rate(nv_inference_request_success{{" + _POD + "}}[1m]))",
        "concurrency": "sum(rate(nv_inference_request_duration_us{{" + _POD + "}}[1m])) / 1e6",
    },
    # vLLM's engine metrics, served on the KServe Hugging Face server's /metrics.
    "huggingface": {
        "queue-depth": "sum(vllm:num_requests_waiting{{" + _POD + "}})",
        "tokens-per-second": "sum(rate(vllm:generation_tokens_total{{" + _POD + "}}[1m]))",
        "concurrency": "sum(vllm:num_requests_running{{" + _POD + "}})",
        "rps": "sum(rate(vllm:request_success_total{{" + _POD + "}}[1m]))",
    },
    # MLServer 1.7.1 mlserver/handlers/dataplane.py:42-56: a counter and a Summary (seconds) per
    # model, for REST and gRPC alike. Its queue metrics are histograms of sizes seen per request
    # (batch_request_queue exists only with adaptive batching), not a depth KEDA can divide.
    "mlserver": {
        "rps": "sum(rate(model_infer_request_success_total{{" + _POD + "}}[1m]))",
        "concurrency": "sum(rate(model_infer_request_duration_sum{{" + _POD + "}}[1m]))",
    },
    # TorchServe's frontend counters (pytorch/serve docs/metrics.md, ts/configs/metrics.yaml) on its
    # metrics port, in Prometheus form when the model's config.properties sets metrics_mode=prometheus.
    "torchserve": {
        "rps": "sum(rate(ts_inference_requests_total{{" + _POD + "}}[1m]))",
        "concurrency": "sum(rate(ts_inference_latency_microseconds{{" + _POD + "}}[1m])) / 1e6",
    },
}
# KServe's Python model server (kserve 0.20.0 kserve/metrics.py: request_predict_seconds, a
# histogram in seconds) for the servers built on it, and GPU use from DCGM for every runtime.
_KSERVE_SDK: dict[str, str] = {
    "rps": "sum(rate(request_predict_seconds_count{{" + _POD + "}}[1m]))",
    "concurrency": "sum(rate(request_predict_seconds_sum{{" + _POD + "}}[1m]))",
}
_DCGM = "avg(DCGM_FI_DEV_GPU_UTIL{{" + _POD + "}})"


class ScalingArgs(StrictModel):
    """How one model scales."""

    min_replicas: int = Field(
        default=1,
        ge=0,
        le=1000,
        description="Fewest replicas; 0 scales to zero (Knative mode only: in Standard mode nothing would scale it up again).",
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

    @field_validator("progress_deadline")
    @classmethod
    def _positive_deadline(cls, value: str | None) -> str | None:
        # Knative makes it the revision Deployment's progressDeadlineSeconds, which the API server
        # refuses unless greater than minReadySeconds, 0 (k8s.io/kubernetes v1.33 pkg/apis/apps/
        # validation/validation.go:607-611).
        if value is not None and parse_duration(value) == 0:
            raise ValueError(
                "must be at least 1s: Kubernetes refuses a Deployment whose progress deadline is 0"
            )
        return value


def _runtime_presets(runtime: str) -> dict[str, str]:
    own = _KSERVE_SDK if runtime in KSERVE_SDK_RUNTIMES else _PRESETS.get(runtime, {})
    return {"gpu-utilization": _DCGM} | own


def preset_query(runtime: str, metric: str) -> str | None:
    """The PromQL template a runtime offers for a metric (``{namespace}`` and ``{pods}`` to fill), or None."""
    return _runtime_presets(runtime).get(metric)


def preset_metrics(runtime: str) -> list[str]:
    """Metrics a runtime can scale on through KEDA."""
    return sorted(_runtime_presets(runtime))


Refusal = tuple[str, FieldPath, object]
"""Why a scaling intent is refused, the scaling field it is about and that field's value."""


def refusal(mode: str, scaling: ScalingArgs, runtime: str) -> str | None:
    """Why a mode cannot carry out a scaling intent, naming the mode and the alternatives; None when it can."""
    found = _refusal(mode, scaling, runtime)
    return None if found is None else found[0]


def _refusal(mode: str, scaling: ScalingArgs, runtime: str) -> Refusal | None:
    metric = scaling.metric
    if mode == "modelmesh":
        if scaling.model_fields_set:
            return (
                "modelmesh mode scales runtime pods, not models: remove `scaling` and size the mesh with "
                "modelMesh.podsPerRuntime, or use deploymentMode knative or standard",
                (),
                None,
            )
        return None
    if mode == "knative":
        if metric is not None and metric not in KNATIVE_METRICS:
            return (
                f"metric {metric!r} cannot be expressed in knative mode: Knative's pod autoscaler scales on "
                "concurrency or rps; use one of those, or deploymentMode standard (cpu and memory through an HPA, "
                "queue-depth, gpu-utilization and tokens-per-second through KEDA)",
                ("metric",),
                metric,
            )
        return None
    if scaling.progress_deadline is not None:
        return (
            "progressDeadline is a Knative revision setting and has no effect in standard mode; "
            "remove it, or use deploymentMode knative",
            ("progressDeadline",),
            scaling.progress_deadline,
        )
    effective = metric or "cpu"
    if effective in HPA_METRICS:
        if scaling.min_replicas == 0:
            return (
                "minReplicas 0 cannot be expressed in standard mode with an HPA (it keeps at least 1 replica); "
                "use deploymentMode knative (its activator holds requests while the first pod starts), "
                "or minReplicas 1",
                ("minReplicas",),
                0,
            )
        if scaling.target is not None and scaling.target > 100:
            return (
                f"target {scaling.target} is a utilisation percentage for metric {effective!r} in standard mode "
                "(an HPA); use 1-100",
                ("target",),
                scaling.target,
            )
        return None
    if preset_query(runtime, effective) is None:
        available = ", ".join(preset_metrics(runtime))
        return (
            f"standard mode scales on {effective!r} through KEDA and a Prometheus query, but runtime "
            f"{runtime!r} exposes no metric for it; it can scale on {available} (KEDA), cpu or memory (HPA)",
            ("metric",),
            effective,
        )
    if scaling.min_replicas == 0:
        # With no pod there is no series: KEDA's Prometheus scaler reads an empty result as 0
        # (ignoreNullValues defaults to true: kedacore/keda v2.18.0 pkg/scalers/
        # prometheus_scaler.go:50, 254-256), 0 never passes the activation threshold, and the
        # model stays at zero replicas whatever its traffic.
        return (
            f"minReplicas 0 cannot scale up again in standard mode: KEDA would scale on {effective!r} "
            "measured on the model's own pods, and with no pod the query has no data, which KEDA reads as 0; "
            "use minReplicas 1, or deploymentMode knative (its activator counts requests while no pod runs)",
            ("minReplicas",),
            0,
        )
    if effective == "gpu-utilization" and scaling.target is not None and scaling.target > 100:
        return (
            f"target {scaling.target} is a utilisation percentage for gpu-utilization in standard mode "
            "(KEDA); use 1-100",
            ("target",),
            scaling.target,
        )
    return None


def problems(mode: str, scaling: ScalingArgs, *, runtime: str, path: FieldPath) -> list[Problem]:
    """The scaling intent a mode cannot carry out, at the field it is about; ``path`` is the scaling's."""
    found = _refusal(mode, scaling, runtime)
    if found is None:
        return []
    reason, field, value = found
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
    predictor: str | None = None,
    pool: GpuPoolArgs | None = None,
    prometheus: str = PROMETHEUS_ADDRESS,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Compile a scaling intent: (ISVC annotations, predictor fields) for the mode.

    The intent must already have passed ``refusal``. ``predictor`` is the predictor's
    ``name`` (Standard mode names it after the stable version), whose pods a KEDA query
    measures; ``pool`` sizes the progress deadline of a GPU model in Knative mode;
    ``prometheus`` is the address KEDA queries (see ``prometheus_address``).
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
        return {AUTOSCALER_CLASS: "hpa"}, fields
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
                        "query": template.format(
                            namespace=namespace, pods=pods_of(component_name(model, name=predictor))
                        ),
                    },
                    "target": {"type": "Value", "value": str(target)},
                },
            }
        ]
    }
    return {AUTOSCALER_CLASS: "keda"}, fields

"""Every deployment mode x metric intent: compiled to what the mode understands, or refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.base import Problem
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.scaling import (
    PROGRESS_DEADLINE_ANNOTATION,
    ScalingArgs,
    predictor_scaling,
    problems,
    prometheus_address,
    refusal,
    scale_to_zero_risk,
)

KNATIVE_REFUSAL = (
    "metric {m!r} cannot be expressed in knative mode: Knative's pod autoscaler scales on concurrency or rps; "
    "use one of those, or deploymentMode standard (cpu and memory through an HPA, queue-depth, gpu-utilization "
    "and tokens-per-second through KEDA)"
)
MESH_REFUSAL = (
    "modelmesh mode scales runtime pods, not models: remove `scaling` and size the mesh with "
    "modelMesh.podsPerRuntime, or use deploymentMode knative or standard"
)
TRITON_TOKENS_REFUSAL = (
    "standard mode scales on 'tokens-per-second' through KEDA and a Prometheus query, but runtime 'triton' "
    "exposes no metric for it; it can scale on concurrency, gpu-utilization, queue-depth, rps (KEDA), cpu or "
    "memory (HPA)"
)
PROM = prometheus_address("observability")
STABLE_PODS = 'namespace="team",pod=~"m-v1-predictor-?[bcdfghjklmnpqrstvwxz2456789-]{5,}"'
"""The pods of model m's stable predictor, named v1: what its KEDA query measures."""

# (mode, metric) -> ("knative", metric, target) | ("hpa", metric, target) | ("keda", query) | ("refused", message)
MATRIX: dict[tuple[str, str | None], tuple[str, Any, Any]] = {
    ("knative", None): ("knative", "concurrency", 10),
    ("knative", "concurrency"): ("knative", "concurrency", 10),
    ("knative", "rps"): ("knative", "rps", 100),
    **{
        ("knative", m): ("refused", KNATIVE_REFUSAL.format(m=m), None)
        for m in ("cpu", "memory", "queue-depth", "gpu-utilization", "tokens-per-second")
    },
    ("standard", None): ("hpa", "cpu", 80),
    ("standard", "cpu"): ("hpa", "cpu", 80),
    ("standard", "memory"): ("hpa", "memory", 80),
    ("standard", "concurrency"): (
        "keda",
        f"sum(rate(nv_inference_request_duration_us{{{STABLE_PODS}}}[1m])) / 1e6",
        "10",
    ),
    ("standard", "rps"): ("keda", f"sum(rate(nv_inference_request_success{{{STABLE_PODS}}}[1m]))", "100"),
    ("standard", "queue-depth"): ("keda", f"sum(nv_inference_pending_request_count{{{STABLE_PODS}}})", "10"),
    ("standard", "gpu-utilization"): ("keda", f"avg(nv_gpu_utilization{{{STABLE_PODS}}}) * 100", "80"),
    ("standard", "tokens-per-second"): ("refused", TRITON_TOKENS_REFUSAL, None),
    ("modelmesh", None): ("mesh", None, None),
    **{
        ("modelmesh", m): ("refused", MESH_REFUSAL, None)
        for m in (
            "concurrency",
            "rps",
            "cpu",
            "memory",
            "queue-depth",
            "gpu-utilization",
            "tokens-per-second",
        )
    },
}


def _scaling(metric: str | None) -> ScalingArgs:
    return ScalingArgs(metric=metric) if metric else ScalingArgs()


@pytest.mark.parametrize(("mode", "metric"), sorted(MATRIX, key=str), ids=lambda v: str(v))
def test_mode_metric_intent(mode: str, metric: str | None) -> None:
    kind, first, second = MATRIX[(mode, metric)]
    scaling = _scaling(metric)
    reason = refusal(mode, scaling, "triton")
    if kind == "refused":
        assert reason == first
        return
    assert reason is None
    annotations, fields = predictor_scaling(
        mode, scaling, runtime="triton", namespace="team", model="m", predictor="v1", prometheus=PROM
    )
    if kind == "mesh":
        assert (annotations, fields) == ({}, {})
    elif kind == "knative":
        assert annotations == {}
        assert (fields["scaleMetric"], fields["scaleTarget"]) == (first, second)
    elif kind == "hpa":
        assert annotations == {"serving.kserve.io/autoscalerClass": "hpa"}
        assert fields["scaleMetric"] == first
        assert fields["scaleMetricType"] == "Utilization"
        assert fields["scaleTarget"] == second
    else:
        assert annotations == {"serving.kserve.io/autoscalerClass": "keda"}
        assert "scaleMetric" not in fields, "KServe rejects scaleMetric with KEDA"
        external = fields["autoScaling"]["metrics"][0]["external"]
        assert external["metric"] == {"backend": "prometheus", "serverAddress": PROM, "query": first}
        assert external["target"] == {"type": "Value", "value": second}


def test_huggingface_scales_on_tokens_per_second_through_keda() -> None:
    scaling = ScalingArgs(metric="tokens-per-second", target=2500)
    assert refusal("standard", scaling, "huggingface") is None
    _, fields = predictor_scaling("standard", scaling, runtime="huggingface", namespace="a", model="llm")
    assert (
        "vllm:generation_tokens_total" in fields["autoScaling"]["metrics"][0]["external"]["metric"]["query"]
    )


@pytest.mark.parametrize(
    ("mode", "scaling", "message"),
    [
        (
            "standard",
            ScalingArgs(min_replicas=0, metric="cpu"),
            "minReplicas 0 cannot be expressed in standard mode with an HPA (it keeps at least 1 replica); use "
            "deploymentMode knative (its activator holds requests while the first pod starts), or minReplicas 1",
        ),
        (
            "standard",
            ScalingArgs(metric="memory", target=150),
            "target 150 is a utilisation percentage for metric 'memory' in standard mode (an HPA); use 1-100",
        ),
        (
            "standard",
            ScalingArgs(metric="gpu-utilization", target=120),
            "target 120 is a utilisation percentage for gpu-utilization in standard mode (KEDA); use 1-100",
        ),
        (
            "standard",
            ScalingArgs(progress_deadline="20m"),
            "progressDeadline is a Knative revision setting and has no effect in standard mode; remove it, "
            "or use deploymentMode knative",
        ),
    ],
)
def test_refusals_name_the_mode_and_the_alternative(mode: str, scaling: ScalingArgs, message: str) -> None:
    assert refusal(mode, scaling, "triton") == message


@pytest.mark.parametrize("metric", ["queue-depth", "gpu-utilization", "rps", "concurrency"])
def test_keda_min_zero_is_refused_in_standard_mode(metric: str) -> None:
    # Every preset measures the model's own pods: at zero pods there is no series and KEDA reads 0.
    assert problems(
        "standard", ScalingArgs(min_replicas=0, metric=metric), runtime="triton", path=("s",)
    ) == [
        Problem(
            ("s", "minReplicas"),
            f"minReplicas 0 cannot scale up again in standard mode: KEDA would scale on {metric!r} measured on "
            "the model's own pods, and with no pod the query has no data, which KEDA reads as 0; use "
            "minReplicas 1, or deploymentMode knative (its activator counts requests while no pod runs)",
            0,
        )
    ]


def test_keda_min_one_is_allowed_in_standard_mode() -> None:
    assert refusal("standard", ScalingArgs(min_replicas=1, metric="queue-depth"), "triton") is None


def test_progress_deadline_in_standard_mode_is_refused_at_its_own_field() -> None:
    assert problems("standard", ScalingArgs(progress_deadline="20m"), runtime="triton", path=("s",))[
        0
    ].path == (
        "s",
        "progressDeadline",
    )


def test_prometheus_address_follows_the_monitoring_namespace() -> None:
    assert prometheus_address("obs") == "http://prometheus-operated.obs.svc:9090"


POOL = GpuPoolArgs(name="a10", product="NVIDIA-A10G", node_provisioning_time="15m")


@pytest.mark.parametrize(
    ("scaling", "pool", "expected"),
    [
        (ScalingArgs(), POOL, "25m"),  # 15m to provision + 10m to pull and load
        (ScalingArgs(progress_deadline="40m"), POOL, "40m"),
        (ScalingArgs(progress_deadline="5m"), None, "5m"),
        (ScalingArgs(), GpuPoolArgs(name="fast", product="X", node_provisioning_time="1m"), "11m"),
    ],
)
def test_knative_progress_deadline_annotation(
    scaling: ScalingArgs, pool: GpuPoolArgs | None, expected: str
) -> None:
    _, fields = predictor_scaling("knative", scaling, runtime="triton", namespace="n", model="m", pool=pool)
    assert fields["annotations"] == {PROGRESS_DEADLINE_ANNOTATION: expected}


def test_cpu_knative_model_keeps_knative_default_deadline() -> None:
    _, fields = predictor_scaling("knative", ScalingArgs(), runtime="sklearn", namespace="n", model="m")
    assert "annotations" not in fields


def test_gpu_scale_to_zero_risk_when_grace_and_deadline_are_short() -> None:
    scaling = ScalingArgs(min_replicas=0, progress_deadline="5m")
    reason = scale_to_zero_risk("knative", scaling, POOL, grace_seconds=30, scale_to_zero=True)
    assert reason == (
        "GPU model may scale to zero in knative mode, but its scale-to-zero grace (30s, "
        "autoscaler.scaleToZeroGracePeriod) and progress deadline (300s, scaling.progressDeadline) are both "
        "shorter than pool 'a10''s nodeProvisioningTime (900s), so a cold start fails before its node is ready; "
        "set scaling.minReplicas 1, remove scaling.progressDeadline (it is then sized from the pool), or raise "
        "autoscaler.scaleToZeroGracePeriod"
    )


@pytest.mark.parametrize(
    ("mode", "scaling", "grace", "scale_to_zero"),
    [
        ("knative", ScalingArgs(min_replicas=0), 30, True),  # deadline sized from the pool
        ("knative", ScalingArgs(min_replicas=0, progress_deadline="5m"), 1200, True),  # long grace
        ("knative", ScalingArgs(min_replicas=1, progress_deadline="5m"), 30, True),  # never at zero
        ("knative", ScalingArgs(min_replicas=0, progress_deadline="5m"), 30, False),  # scale to zero off
    ],
)
def test_no_gpu_scale_to_zero_risk(mode: str, scaling: ScalingArgs, grace: int, scale_to_zero: bool) -> None:
    assert scale_to_zero_risk(mode, scaling, POOL, grace_seconds=grace, scale_to_zero=scale_to_zero) is None

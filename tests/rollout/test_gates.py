"""Gates compiled to PromQL per mode and runtime, and judged on values."""

from __future__ import annotations

import pytest

from modelplane.rollout.gates import CompiledGate, Target, compile_gates, fill_custom, judge
from modelplane.rollout.policy import Gate

DEFAULT = [
    Gate(name="error-rate", metric="error-rate", max=0.01),
    Gate(name="latency-p99", metric="latency-p99", max=0.5),
]


def target(mode: str, runtime: str = "sklearn") -> Target:
    return Target(
        mode=mode, runtime=runtime, namespace="team", model="m", version="v2", name="v2", window="10m"
    )


def queries(mode: str, runtime: str = "sklearn") -> dict[str, str | None]:
    return {g.name: g.query for g in compile_gates(DEFAULT, target(mode, runtime))}


def test_knative_uses_queue_proxy_metrics_of_the_candidate() -> None:
    sel = 'namespace="team",configuration_name="m-predictor",modelplane_dev_version="v2"'
    assert queries("knative") == {
        "error-rate": f'sum(rate(revision_app_request_count{{{sel},response_code_class="5xx"}}[10m])) '
        f"/ sum(rate(revision_app_request_count{{{sel}}}[10m]))",
        "latency-p99": f"histogram_quantile(0.99, sum by (le) (rate(revision_app_request_latencies_bucket{{{sel}}}[10m]))) / 1000",
    }


def test_standard_kserve_server_latency_selects_the_candidate_pods() -> None:
    assert queries("standard")["latency-p99"] == (
        'histogram_quantile(0.99, sum by (le) (rate(request_predict_seconds_bucket{namespace="team",'
        'pod=~"m-v2-predictor-?[bcdfghjklmnpqrstvwxz2456789-]{5,}"}[10m])))'
    )


def test_modelmesh_measures_the_side_object() -> None:
    assert 'vModelId="m-v2"' in str(queries("modelmesh")["error-rate"])


@pytest.mark.parametrize(
    ("runtime", "measurable"),
    [
        ("sklearn", {"latency-p99"}),
        ("xgboost", {"latency-p99"}),
        ("custom", {"latency-p99"}),
        ("huggingface", {"latency-p99"}),
        ("mlserver", {"error-rate", "latency-p99"}),
        ("triton", {"error-rate"}),
        ("torchserve", set()),
    ],
)
def test_standard_mode_measures_what_each_runtime_exposes(runtime: str, measurable: set[str]) -> None:
    assert {name for name, q in queries("standard", runtime).items() if q is not None} == measurable


def test_unmeasurable_gate_says_why() -> None:
    (gate, _) = compile_gates(DEFAULT, target("standard", "sklearn"))
    assert gate.unmeasurable == (
        "runtime 'sklearn' counts no failed requests in standard mode; use a custom gate or dryRun"
    )


def test_custom_gate_fills_placeholders_and_keeps_promql_braces() -> None:
    gate = Gate(
        name="ok",
        metric="custom",
        query='sum(up{job="{model}",ns="{namespace}",v="{version}"}[{window}])',
        min=1,
    )
    (compiled,) = compile_gates([gate], target("standard"))
    assert compiled.query == 'sum(up{job="m",ns="team",v="v2"}[10m])'


def test_fill_custom_replaces_the_candidate_name() -> None:
    assert fill_custom("{model}-{name}-predictor", target("standard")) == "m-v2-predictor"


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ([0.001], "pass"),
        ([0.02], "fail"),
        ([0.001, 0.5], "fail"),
        ([], "no-data"),
        ([float("nan")], "no-data"),
    ],
)
def test_judge_max(values: list[float], verdict: str) -> None:
    assert judge(CompiledGate("e", "error-rate", "q", 0.01, None), values).verdict == verdict


@pytest.mark.parametrize(("values", "verdict"), [([5.0], "pass"), ([0.5], "fail")])
def test_judge_min(values: list[float], verdict: str) -> None:
    assert judge(CompiledGate("rps", "custom", "q", None, 1.0), values).verdict == verdict


def test_threshold_text() -> None:
    assert CompiledGate("g", "custom", "q", 2.0, 0.5).threshold == ">= 0.5 and <= 2"

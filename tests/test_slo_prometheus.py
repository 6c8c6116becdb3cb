"""The aggregated SLO recording rules, run on a real Prometheus: one series per model, the per-model values.

The rendered PrometheusRule's recording expressions are evaluated at a fixed time on a Prometheus
serving ``tests.slo_series`` (every mode and source, stable and canary versions, and the traps
beside them). Each must give exactly one series per model it measures, and for each model the
value of ``promql.model_queries`` on that model's own selector: the query the per-model rules
used to record, built by the same function the rollout gates use.
"""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from modelplane.build import build
from modelplane.promql import model_queries, model_selector
from modelplane.slo import ERROR_RATIO_WINDOWS, LATENCY_RECORD, LATENCY_WINDOW, error_ratio_record
from modelplane.stack import parse_stack
from tests.prometheus import serving_openmetrics
from tests.slo_series import END, MODELS, NAMESPACE, openmetrics

FORMATS = {"sklearn": "sklearn", "mlserver": "sklearn", "huggingface": "huggingface", "triton": "onnx"}


def stack_data() -> dict[str, Any]:
    """A stack holding the models of ``tests.slo_series`` in one tenant namespace."""
    models = []
    for m in MODELS:
        entry: dict[str, Any] = {
            "name": m.name,
            "tenant": NAMESPACE,
            "runtime": m.runtime,
            "format": {"name": FORMATS[m.runtime], "version": "1"},
            "storage": {"uri": f"s3://models/{m.name}/v1"},
            "version": "v1",
            "deploymentMode": m.mode,
        }
        if m.mode != "modelmesh":
            entry["scaling"] = {"minReplicas": 1, "maxReplicas": 3}
        models.append(entry)
    return {
        "stack": {"name": "test", "tier": "staging"},
        "controlPlane": {"ingress": {"domain": "models.example.com"}},
        "modelMesh": {"enabled": True},
        "tenants": [{"name": NAMESPACE}],
        "models": models,
    }


def records() -> dict[str, list[str]]:
    """Expressions of each recorded series in the namespace's rendered PrometheusRule."""
    stack = parse_stack(stack_data(), "test.yaml")
    (rule,) = [o for o in build(stack).objects if o["kind"] == "PrometheusRule"]
    found: dict[str, list[str]] = {}
    for group in rule["spec"]["groups"]:
        for entry in group["rules"]:
            if "record" in entry:
                found.setdefault(entry["record"], []).append(entry["expr"])
    return found


def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of each series an instant query at ``END`` returns."""
    params = urllib.parse.urlencode({"query": promql, "time": str(END)})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving_openmetrics(tmp_path_factory.mktemp("slo-prometheus"), openmetrics()) as url:
        yield url


METRICS = [(error_ratio_record(w), "error-rate", w) for w in ERROR_RATIO_WINDOWS] + [
    (LATENCY_RECORD, "latency-p99", LATENCY_WINDOW)
]


def _recorded(url: str, record: str) -> dict[str, float]:
    """Every model's value of a record, over all the rules that record it; a model twice fails."""
    values: dict[str, float] = {}
    for expr in records().get(record, []):
        for labels, value in query(url, expr):
            assert set(labels) == {"namespace", "model"}, labels  # the rule adds `source`
            assert labels["model"] not in values, f"{labels['model']} recorded twice in {record}"
            values[labels["model"]] = value
    return values


@pytest.mark.parametrize(("record", "metric", "window"), METRICS)
def test_each_model_is_recorded_once_with_its_own_query_value(
    prometheus: str, record: str, metric: str, window: str
) -> None:
    recorded = _recorded(prometheus, record)
    expected: dict[str, float] = {}
    for m in MODELS:
        own = model_queries(m.mode, m.runtime, model_selector(m.mode, NAMESPACE, m.name), window)[metric]
        if isinstance(own, str):
            for _, value in query(prometheus, own):
                expected[m.name] = value
    shared = set(recorded) & set(expected)
    assert shared == set(expected), f"models not recorded: {sorted(set(expected) - shared)}"
    for name in sorted(shared):
        assert math.isclose(recorded[name], expected[name], rel_tol=1e-9), (
            name,
            recorded[name],
            expected[name],
        )
    # Beside the stack's models only the mesh candidate's side object, which has its own vModelId.
    assert set(recorded) - set(expected) <= {"merchant-v2"}


def test_records_measure_stable_and_canary_together(prometheus: str) -> None:
    ratios = _recorded(prometheus, error_ratio_record("1h"))
    # fraud: v1 10/s with 0.01/s 5xx, canary v2 2/s with 1/s 5xx -> 1.01 / 13.01 (the transformer's
    # 5xx left out); ranker: v1 20/s clean, v2 4.5/s + 0.5/s failed -> 0.5 / 25.
    assert round(ratios["fraud"], 6) == round(1.01 / 13.01, 6)
    assert round(ratios["ranker"], 6) == 0.02
    assert ratios["ranker-x"] == 0


def test_a_knative_model_is_measured_by_its_queue_proxy_only(prometheus: str) -> None:
    # Its pods' runtime histogram (every request within 0.5 s) would say otherwise.
    latency = _recorded(prometheus, LATENCY_RECORD)
    assert latency["fraud"] > 0.5
    assert "fraud" in latency


def test_a_vllm_model_is_measured_by_vllm(prometheus: str) -> None:
    # vLLM: half the requests within 1 s, all within 5 s; the KServe histogram says 10 ms.
    assert 1 < _recorded(prometheus, LATENCY_RECORD)["chat"] <= 5

"""Monitoring: the scrape configuration, and SLO rules built from the rollout gates' queries.

The rule groups are checked by the real ``promtool`` (``check rules`` for syntax and lint,
``test rules`` to prove the alerts fire on synthetic series and stay quiet otherwise).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.build import build
from modelplane.kube import Obj
from modelplane.monitoring import LATENCY_RECORD, error_ratio_record
from modelplane.promql import model_queries, model_selector
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack
from modelplane.validation import CrdSchemas
from tests.conftest import schema_problems

MONITORING_KINDS = ("PodMonitor", "ServiceMonitor", "PrometheusRule")


def _model(name: str, mode: str, runtime: str, fmt: str = "sklearn") -> dict[str, Any]:
    # ModelMesh sizes runtime pods, not models: a mesh model has no scaling of its own.
    scaling = {} if mode == "modelmesh" else {"scaling": {"minReplicas": 1, "maxReplicas": 3}}
    return {
        "name": name,
        "tenant": "team",
        "runtime": runtime,
        "format": {"name": fmt, "version": "1"},
        "storage": {"uri": f"s3://models/{name}/v1"},
        "version": "v1",
        "deploymentMode": mode,
        **scaling,
    }


SMALL: dict[str, Any] = {
    "stack": {"name": "test", "tier": "staging"},
    "controlPlane": {"ingress": {"domain": "models.example.com"}},
    "tenants": [{"name": "team"}],
    "models": [_model("fraud", "knative", "sklearn"), _model("ranker", "standard", "mlserver")],
}
"""A Knative model (queue-proxy metrics) and a Standard-mode MLServer model (its own metrics)."""


def _stack(data: dict[str, Any]) -> ServingPlatformArgs:
    return parse_stack(copy.deepcopy(data), "test.yaml")


def _with_models(*models: dict[str, Any]) -> ServingPlatformArgs:
    return _stack(SMALL | {"models": list(models)})


def _objects(stack: ServingPlatformArgs, kind: str) -> list[Obj]:
    return [o for o in build(stack).objects if o["kind"] == kind]


def _recording_groups(rule: Obj) -> dict[str, list[dict[str, Any]]]:
    return {g["name"]: g["rules"] for g in rule["spec"]["groups"] if g["name"] != "modelplane-slo.alerts"}


def _group_names(rule: Obj) -> list[str]:
    return [g["name"] for g in rule["spec"]["groups"]]


def _alerts(rule: Obj) -> dict[str, dict[str, Any]]:
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == "modelplane-slo.alerts"]
    return {r["alert"]: r for r in group["rules"]}


def _require_promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; `make system-deps`)")
    return promtool


# --- schemas ---------------------------------------------------------------------------


def test_monitoring_objects_pass_the_crd_schemas(
    example_stack: ServingPlatformArgs, crd_schemas: CrdSchemas
) -> None:
    objects = [o for o in build(example_stack).objects if o["kind"] in MONITORING_KINDS]
    assert {"PodMonitor", "PrometheusRule"} <= {o["kind"] for o in objects}
    assert schema_problems(objects, example_stack, crd_schemas) == []


def test_mesh_service_monitor_passes_the_crd_schema(crd_schemas: CrdSchemas) -> None:
    stack = _stack(
        SMALL
        | {
            "modelMesh": {"enabled": True},
            "models": [_model("merchant", "modelmesh", "mlserver")],
        }
    )
    objects = [o for o in build(stack).objects if o["kind"] in MONITORING_KINDS]
    assert sorted(o["kind"] for o in objects) == ["PrometheusRule", "ServiceMonitor"]
    assert schema_problems(objects, stack, crd_schemas) == []


# --- scrape configuration --------------------------------------------------------------


def test_pod_monitor_of_a_small_stack() -> None:
    keep_runtime = {"action": "keep", "sourceLabels": ["__meta_kubernetes_pod_label_modelplane_dev_runtime"]}
    assert _objects(_stack(SMALL), "PodMonitor") == [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {
                "name": "modelplane-models",
                "namespace": "team",
                "labels": {
                    "app.kubernetes.io/component": "monitoring",
                    "app.kubernetes.io/managed-by": "modelplane",
                    "app.kubernetes.io/part-of": "modelplane",
                    "modelplane.dev/stack": "test",
                },
            },
            "spec": {
                "selector": {"matchExpressions": [{"key": "modelplane.dev/model", "operator": "Exists"}]},
                "podTargetLabels": [
                    "modelplane.dev/model",
                    "modelplane.dev/version",
                    "modelplane.dev/runtime",
                ],
                "podMetricsEndpoints": [
                    {
                        "portNumber": 8082,
                        "path": "/metrics",
                        "interval": "30s",
                        "relabelings": [keep_runtime | {"regex": "mlserver"}],
                    },
                    {
                        "portNumber": 8080,
                        "path": "/metrics",
                        "interval": "30s",
                        "relabelings": [keep_runtime | {"regex": "sklearn"}],
                    },
                    {"port": "http-usermetric", "path": "/metrics", "interval": "30s"},
                ],
            },
        }
    ]


# --- recording rules: the gates' queries on every version of a model --------------------


@pytest.mark.parametrize(
    ("model", "mode", "runtime"), [("fraud", "knative", "sklearn"), ("ranker", "standard", "mlserver")]
)
def test_recording_rules_are_the_gate_queries_on_the_model(model: str, mode: str, runtime: str) -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    selector = model_selector(mode, "team", model)
    expected = [
        {
            "record": error_ratio_record(w),
            "expr": model_queries(mode, runtime, selector, w)["error-rate"],
            "labels": {"model": model, "namespace": "team"},
        }
        for w in ("5m", "30m", "1h", "6h")
    ] + [
        {
            "record": LATENCY_RECORD,
            "expr": model_queries(mode, runtime, selector, "5m")["latency-p99"],
            "labels": {"model": model, "namespace": "team"},
        }
    ]
    assert _recording_groups(rule)[f"modelplane-slo.model.{model}"] == expected


def test_knative_error_ratio_counts_5xx_of_every_revision() -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    sel = 'namespace="team",configuration_name="fraud-predictor"'
    assert _recording_groups(rule)["modelplane-slo.model.fraud"][0]["expr"] == (
        f'sum(rate(revision_app_request_count{{{sel},response_code_class="5xx"}}[5m])) '
        f"/ sum(rate(revision_app_request_count{{{sel}}}[5m]))"
    )


@pytest.mark.parametrize(
    ("pod", "selected"),
    [
        ("ranker-predictor-7d9f8-x2k4q", True),
        ("ranker-v1-predictor-7d9f8-x2k4q", True),
        ("ranker-v2-canary-predictor-5c6b7-9zzlm", True),
        ("ranker-transformer-7d9f8-x2k4q", False),
        ("rankers-predictor-7d9f8-x2k4q", False),
    ],
)
def test_standard_selector_takes_the_pods_of_every_predictor_of_the_model(pod: str, selected: bool) -> None:
    (matcher,) = [m for m in model_selector("standard", "team", "ranker") if m.startswith("pod=~")]
    # Prometheus anchors label regexes at both ends.
    regex = matcher.removeprefix('pod=~"').removesuffix('"')
    assert (re.fullmatch(regex, pod) is not None) is selected


def test_standard_selector_tells_the_model_from_one_whose_name_extends_it() -> None:
    # A model `ranker-x` has pods `ranker-x-predictor-*`, which match `ranker-.+-predictor-.*`
    # like a named predictor of `ranker`: only the pod label tells them apart.
    (matcher,) = [m for m in model_selector("standard", "team", "ranker") if m.startswith("pod=~")]
    assert re.fullmatch(matcher.removeprefix('pod=~"').removesuffix('"'), "ranker-x-predictor-7d9f8-x2k4q")
    assert 'modelplane_dev_model="ranker"' in model_selector("standard", "team", "ranker")


def test_modelmesh_rules_measure_the_model_by_its_vmodelid() -> None:
    stack = _stack(
        SMALL | {"modelMesh": {"enabled": True}, "models": [_model("merchant", "modelmesh", "mlserver")]}
    )
    (rule,) = _objects(stack, "PrometheusRule")
    assert 'vModelId="merchant"' in _recording_groups(rule)["modelplane-slo.model.merchant"][0]["expr"]


@pytest.mark.parametrize(
    ("runtime", "fmt", "records"),
    [
        ("sklearn", "sklearn", [LATENCY_RECORD]),
        ("huggingface", "huggingface", [LATENCY_RECORD]),
        ("triton", "onnx", [error_ratio_record(w) for w in ("5m", "30m", "1h", "6h")]),
        (
            "mlserver",
            "sklearn",
            [*(error_ratio_record(w) for w in ("5m", "30m", "1h", "6h")), LATENCY_RECORD],
        ),
    ],
)
def test_standard_mode_records_what_the_runtime_measures(runtime: str, fmt: str, records: list[str]) -> None:
    (rule,) = _objects(_with_models(_model("m", "standard", runtime, fmt)), "PrometheusRule")
    assert [r["record"] for r in _recording_groups(rule)["modelplane-slo.model.m"]] == records


def test_a_model_the_runtime_cannot_measure_gets_no_rules() -> None:
    stack = _with_models(_model("m", "standard", "torchserve", "pytorch"), _model("n", "standard", "sklearn"))
    (rule,) = _objects(stack, "PrometheusRule")
    assert list(_recording_groups(rule)) == ["modelplane-slo.model.n"]


def test_a_namespace_without_measurable_models_gets_no_rule() -> None:
    assert _objects(_with_models(_model("m", "standard", "torchserve", "pytorch")), "PrometheusRule") == []


def test_alerts_only_read_what_the_namespace_records() -> None:
    (rule,) = _objects(_with_models(_model("m", "standard", "triton", "onnx")), "PrometheusRule")
    assert sorted(_alerts(rule)) == ["ModelErrorBudgetFastBurn", "ModelErrorBudgetSlowBurn"]


# --- alerts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "expr", "hold", "severity"),
    [
        (
            "ModelErrorBudgetFastBurn",
            'modelplane:model_error_ratio:rate1h{namespace="team"} > (14.4 * 0.001)'
            ' and modelplane:model_error_ratio:rate5m{namespace="team"} > (14.4 * 0.001)',
            "2m",
            "critical",
        ),
        (
            "ModelErrorBudgetSlowBurn",
            'modelplane:model_error_ratio:rate6h{namespace="team"} > (6 * 0.001)'
            ' and modelplane:model_error_ratio:rate30m{namespace="team"} > (6 * 0.001)',
            "15m",
            "warning",
        ),
        (
            "ModelLatencyHigh",
            'modelplane:model_latency_p99_seconds:rate5m{namespace="team"} > 0.5',
            "10m",
            "warning",
        ),
    ],
)
def test_alert_expressions(alert: str, expr: str, hold: str, severity: str) -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    found = _alerts(rule)[alert]
    assert (found["expr"], found["for"], found["labels"]["severity"]) == (expr, hold, severity)


def test_burn_rate_thresholds_follow_the_availability_objective() -> None:
    stack = _stack(SMALL | {"monitoring": {"availabilityObjective": 99.95, "latencyObjectiveMs": 250}})
    (rule,) = _objects(stack, "PrometheusRule")
    alerts = _alerts(rule)
    assert alerts["ModelErrorBudgetFastBurn"]["expr"].endswith("> (14.4 * 0.0005)")
    assert alerts["ModelLatencyHigh"]["expr"].endswith("> 0.25")


MANY = [_model(f"model-{i:04d}", "standard", "mlserver") for i in range(600)]
"""More Standard-mode MLServer models in one namespace than one rule object holds."""


def test_large_namespaces_continue_in_numbered_rules() -> None:
    rules = _objects(_with_models(*MANY), "PrometheusRule")
    assert sorted(r["metadata"]["name"] for r in rules) == sorted(
        ["modelplane-slo"] + [f"modelplane-slo-{i}" for i in range(2, len(rules) + 1)]
    )


def test_numbered_rules_record_every_model_once() -> None:
    rules = _objects(_with_models(*MANY), "PrometheusRule")
    assert len(rules) > 1
    assert sorted(name for r in rules for name in _recording_groups(r)) == [
        f"modelplane-slo.model.{m['name']}" for m in MANY
    ]


def test_rule_objects_fit_the_last_applied_annotation_of_client_side_apply() -> None:
    # Names as long as knative mode allows (prev-<name>-predictor within 63 characters).
    models = [_model(f"model-{i:04d}-" + "x" * 37, "knative", "mlserver") for i in range(200)]
    sizes = [
        len(json.dumps(r, separators=(",", ":"))) for r in _objects(_with_models(*models), "PrometheusRule")
    ]
    assert len(sizes) > 1
    assert max(sizes) < 256 * 1024


def test_only_the_first_rule_object_carries_the_alerts() -> None:
    rules = _objects(_with_models(*MANY), "PrometheusRule")
    carrying = [r["metadata"]["name"] for r in rules if "modelplane-slo.alerts" in _group_names(r)]
    assert (len(rules) > 1, carrying) == (True, ["modelplane-slo"])


# --- promtool ----------------------------------------------------------------------------


def test_promtool_check_rules_passes_with_lint(example_stack: ServingPlatformArgs, tmp_path: Path) -> None:
    promtool = _require_promtool()
    files = []
    for rule in _objects(example_stack, "PrometheusRule"):
        path = tmp_path / f"{rule['metadata']['namespace']}-{rule['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(rule["spec"]))
        files.append(str(path))
    assert files
    result = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal", *files],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


FRAUD = (
    'namespace="team",configuration_name="fraud-predictor",revision_name="fraud-predictor-00001",'
    'modelplane_dev_model="fraud",modelplane_dev_version="v1",modelplane_dev_runtime="sklearn"'
)
"""Labels of the Knative model's queue-proxy series as scraped."""

RANKER = (
    'namespace="team",pod="ranker-v1-predictor-7d9f8-x2k4q",'
    'modelplane_dev_model="ranker",modelplane_dev_version="v1",modelplane_dev_runtime="mlserver"'
)
"""Labels of the Standard-mode MLServer model's series as scraped."""


def _histogram(name: str, labels: str, per_minute: dict[str, int]) -> list[dict[str, str]]:
    """Cumulative buckets growing by ``per_minute`` requests each minute, for an hour."""
    return [
        {"series": f'{name}{{{labels},le="{le}"}}', "values": f"0+{count}x60"}
        for le, count in per_minute.items()
    ]


FAILING_KNATIVE = [
    {"series": f'revision_app_request_count{{{FRAUD},response_code_class="2xx"}}', "values": "0+80x60"},
    {"series": f'revision_app_request_count{{{FRAUD},response_code_class="5xx"}}', "values": "0+20x60"},
]
"""20% of the Knative model's requests fail: 200 times its 0.1% error budget."""

SLOW_KNATIVE = _histogram(
    "revision_app_request_latencies_bucket",
    FRAUD,
    {"100": 0, "250": 0, "500": 0, "1000": 100, "2500": 100, "+Inf": 100},
)
"""Every request of the Knative model takes 500 to 1000 ms (milliseconds, as queue-proxy counts)."""

HEALTHY_MLSERVER = [
    {"series": f'model_infer_request_success_total{{{RANKER},model_name="ranker"}}', "values": "0+100x60"},
    {"series": f'model_infer_request_failure_total{{{RANKER},model_name="ranker"}}', "values": "0+0x60"},
    *_histogram(
        "rest_server_request_duration_seconds_bucket",
        RANKER + ',path="/v2/models/ranker/infer"',
        {"0.1": 100, "0.5": 100, "1": 100, "+Inf": 100},
    ),
]
"""The MLServer model answers every request, each within 100 ms."""


def _promtool_test(tmp_path: Path, series: list[dict[str, str]], alerts: list[dict[str, Any]]) -> None:
    promtool = _require_promtool()
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_page_fires_for_a_model_at_20_percent_errors(tmp_path: Path) -> None:
    description = (
        "20% of the requests to model fraud in namespace team failed over the last 1h, and the last 5m"
        " are as bad: more than 14.4 times the error budget of the 99.9% availability objective, which"
        " spends 2% of a 30-day budget in 1h (all of it in 2.1 days). If a rollout is under way,"
        " `modelplane rollout status stacks/test.yaml team/fraud` shows the candidate and its gates, and"
        " `modelplane rollout rollback` sends all traffic back to the stable version; otherwise look at"
        " the predictor pods' logs and restarts and at the model's storage."
    )
    expected = {
        "exp_labels": {"severity": "critical", "slo": "availability", "namespace": "team", "model": "fraud"},
        "exp_annotations": {
            "summary": "Model fraud in namespace team is burning its error budget fast",
            "description": description,
        },
    }
    alert = "ModelErrorBudgetFastBurn"
    _promtool_test(
        tmp_path,
        FAILING_KNATIVE + HEALTHY_MLSERVER,
        [{"eval_time": "10m", "alertname": alert, "exp_alerts": [expected]}],
    )


def test_page_waits_for_its_for_period(tmp_path: Path) -> None:
    alert = "ModelErrorBudgetFastBurn"
    _promtool_test(tmp_path, FAILING_KNATIVE, [{"eval_time": "2m", "alertname": alert, "exp_alerts": []}])


@pytest.mark.parametrize(
    "alert", ["ModelErrorBudgetFastBurn", "ModelErrorBudgetSlowBurn", "ModelLatencyHigh"]
)
def test_a_healthy_model_raises_no_alert(tmp_path: Path, alert: str) -> None:
    _promtool_test(tmp_path, HEALTHY_MLSERVER, [{"eval_time": "60m", "alertname": alert, "exp_alerts": []}])


def test_latency_alert_fires_when_p99_is_above_the_objective(tmp_path: Path) -> None:
    description = (
        "The 99th percentile latency of model fraud in namespace team over the last 5m is 995ms and has"
        " been above the 500 ms objective for 10m. If a rollout is under way, `modelplane rollout status"
        " stacks/test.yaml team/fraud` shows the candidate and its gates; otherwise check whether the model"
        " runs at its maximum replicas, is throttled at its CPU limit or keeps waiting on cold starts."
    )
    expected = {
        "exp_labels": {"severity": "warning", "slo": "latency", "namespace": "team", "model": "fraud"},
        "exp_annotations": {
            "summary": "Model fraud in namespace team answers slower than its 500 ms p99 objective",
            "description": description,
        },
    }
    _promtool_test(
        tmp_path,
        SLOW_KNATIVE + HEALTHY_MLSERVER,
        [{"eval_time": "15m", "alertname": "ModelLatencyHigh", "exp_alerts": [expected]}],
    )

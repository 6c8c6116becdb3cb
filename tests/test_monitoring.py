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
from modelplane.promql import model_selector, namespace_queries
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.slo import (
    ERROR_BUDGET_RECORD,
    LATENCY_OBJECTIVE_RECORD,
    LATENCY_RECORD,
    error_ratio_record,
)
from modelplane.stack import parse_stack
from modelplane.validation import CrdSchemas
from tests.conftest import schema_problems

MONITORING_KINDS = ("PodMonitor", "ServiceMonitor", "PrometheusRule")


def _model(name: str, mode: str, runtime: str, fmt: str = "sklearn", version: str = "1") -> dict[str, Any]:
    # ModelMesh sizes runtime pods, not models: a mesh model has no scaling of its own.
    scaling = {} if mode == "modelmesh" else {"scaling": {"minReplicas": 1, "maxReplicas": 3}}
    return {
        "name": name,
        "tenant": "team",
        "runtime": runtime,
        "format": {"name": fmt, "version": version},
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


# --- recording rules: one per source and window, the gates' builder on every model ------


def _records(rule: Obj) -> list[dict[str, Any]]:
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == "modelplane-slo.records"]
    return [r for r in group["rules"] if r["record"] not in (ERROR_BUDGET_RECORD, LATENCY_OBJECTIVE_RECORD)]


def _objectives(rule: Obj) -> list[dict[str, Any]]:
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == "modelplane-slo.records"]
    return [r for r in group["rules"] if r["record"] in (ERROR_BUDGET_RECORD, LATENCY_OBJECTIVE_RECORD)]


def test_recording_rules_are_the_namespace_queries_of_each_source() -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    sources = [("knative", "sklearn", "queue-proxy"), ("standard", "mlserver", "mlserver")]
    expected = [
        {
            "record": error_ratio_record(w),
            "expr": namespace_queries(mode, runtime, "team", w, beside_knative=True)["error-rate"],
            "labels": {"source": source},
        }
        for w in ("5m", "30m", "1h", "6h")
        for mode, runtime, source in sources
    ] + [
        {
            "record": LATENCY_RECORD,
            "expr": namespace_queries(mode, runtime, "team", "5m", beside_knative=True)["latency-p99"],
            "labels": {"source": source},
        }
        for mode, runtime, source in sources
    ]
    assert _records(rule) == expected


def test_knative_error_ratio_counts_5xx_of_every_revision_of_every_predictor() -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    sel = 'namespace="team",configuration_name=~".+-predictor"'
    by = "sum by (namespace, configuration_name) "
    assert _records(rule)[0]["expr"] == (
        f"sum by (namespace, model) (label_replace({by}(rate(revision_app_request_count{{{sel},"
        f'response_code_class="5xx"}}[5m])) / {by}(rate(revision_app_request_count{{{sel}}}[5m])),'
        ' "model", "$1", "configuration_name", "(.+)-predictor"))'
    )


def test_standard_sources_leave_out_the_models_the_queue_proxy_measures() -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    standard = [r["expr"] for r in _records(rule) if "modelplane_dev_runtime" in r["expr"]]
    assert standard
    assert all(
        " unless on (namespace, model) label_replace(group by (namespace, configuration_name)"
        " (revision_app_request_count{" in e
        for e in standard
    )


def test_without_knative_models_standard_sources_need_no_exception() -> None:
    (rule,) = _objects(_with_models(_model("ranker", "standard", "mlserver")), "PrometheusRule")
    assert not any("unless" in r["expr"] for r in _records(rule))


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


def test_modelmesh_rules_measure_models_by_their_vmodelid() -> None:
    stack = _stack(
        SMALL | {"modelMesh": {"enabled": True}, "models": [_model("merchant", "modelmesh", "mlserver")]}
    )
    (rule,) = _objects(stack, "PrometheusRule")
    assert '"model", "$1", "vModelId", "(.+)"' in _records(rule)[0]["expr"]


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
    assert [r["record"] for r in _records(rule)] == records


def test_runtimes_of_one_server_share_one_source() -> None:
    stack = _with_models(
        _model("m", "standard", "sklearn"), _model("n", "standard", "xgboost", "xgboost", "2")
    )
    (rule,) = _objects(stack, "PrometheusRule")
    (latency,) = _records(rule)
    assert (
        'modelplane_dev_runtime=~"sklearn|xgboost|lightgbm|pmml|paddle|predictive|autogluon|custom"'
        in latency["expr"]
    )


def test_a_model_the_runtime_cannot_measure_adds_no_rules() -> None:
    stack = _with_models(_model("m", "standard", "torchserve", "pytorch"), _model("n", "standard", "sklearn"))
    (rule,) = _objects(stack, "PrometheusRule")
    assert [r["record"] for r in _records(rule)] == [LATENCY_RECORD]
    assert "torchserve" not in json.dumps(rule)


def test_a_namespace_without_measurable_models_gets_no_rule() -> None:
    assert _objects(_with_models(_model("m", "standard", "torchserve", "pytorch")), "PrometheusRule") == []


def test_alerts_only_read_what_the_namespace_records() -> None:
    (rule,) = _objects(_with_models(_model("m", "standard", "triton", "onnx")), "PrometheusRule")
    assert sorted(_alerts(rule)) == ["ModelErrorBudgetFastBurn", "ModelErrorBudgetSlowBurn"]
    assert [r["record"] for r in _objectives(rule)] == [ERROR_BUDGET_RECORD]


MANY = [_model(f"model-{i:04d}", "standard", "mlserver") for i in range(600)]
"""Many Standard-mode MLServer models in one namespace."""


def test_the_rules_do_not_grow_with_the_models() -> None:
    one = _objects(_with_models(MANY[0]), "PrometheusRule")
    many = _objects(_with_models(*MANY), "PrometheusRule")
    assert (len(one), len(many)) == (1, 1)
    assert json.dumps(one[0]["spec"]) == json.dumps(many[0]["spec"])


# --- objectives: series the alerts join on ---------------------------------------------


def test_objectives_are_series_of_every_measured_model() -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    assert _objectives(rule) == [
        {
            "record": ERROR_BUDGET_RECORD,
            "expr": '0.001 * group by (namespace, model) (modelplane:model_error_ratio:rate6h{namespace="team"})',
            "labels": {"objective": "99.9"},
        },
        {
            "record": LATENCY_OBJECTIVE_RECORD,
            "expr": "0.5 * group by (namespace, model)"
            ' (modelplane:model_latency_p99_seconds:rate5m{namespace="team"})',
            "labels": {"objective": "500"},
        },
    ]


def test_models_with_their_own_objective_get_one_rule_per_objective() -> None:
    models = [
        _model("a", "standard", "mlserver") | {"slo": {"availability": 99}},
        _model("b", "standard", "mlserver") | {"slo": {"availability": 99, "latencyMs": 2000}},
        _model("c", "standard", "mlserver") | {"slo": {"availability": 99.99}},
        _model("d", "standard", "mlserver"),
    ]
    (rule,) = _objects(_with_models(*models), "PrometheusRule")
    ratio = 'modelplane:model_error_ratio:rate6h{namespace="team"'
    latency = 'modelplane:model_latency_p99_seconds:rate5m{namespace="team"'
    assert [(r["expr"], r["labels"]["objective"]) for r in _objectives(rule)] == [
        (f'0.001 * group by (namespace, model) ({ratio},model!~"a|b|c"}})', "99.9"),
        (f'0.01 * group by (namespace, model) ({ratio},model=~"a|b"}})', "99"),
        (f'0.0001 * group by (namespace, model) ({ratio},model=~"c"}})', "99.99"),
        (f'0.5 * group by (namespace, model) ({latency},model!~"b"}})', "500"),
        (f'2 * group by (namespace, model) ({latency},model=~"b"}})', "2000"),
    ]


# --- alerts ------------------------------------------------------------------------------

_BUDGET = 'modelplane:model_error_budget:ratio{namespace="team"}'
_JOIN = "> on (namespace, model) group_left (objective)"


@pytest.mark.parametrize(
    ("alert", "expr", "hold", "severity"),
    [
        (
            "ModelErrorBudgetFastBurn",
            f'modelplane:model_error_ratio:rate1h{{namespace="team"}} {_JOIN} (14.4 * {_BUDGET})'
            f' and modelplane:model_error_ratio:rate5m{{namespace="team"}} {_JOIN} (14.4 * {_BUDGET})',
            "2m",
            "critical",
        ),
        (
            "ModelErrorBudgetSlowBurn",
            f'modelplane:model_error_ratio:rate6h{{namespace="team"}} {_JOIN} (6 * {_BUDGET})'
            f' and modelplane:model_error_ratio:rate30m{{namespace="team"}} {_JOIN} (6 * {_BUDGET})',
            "15m",
            "warning",
        ),
        (
            "ModelLatencyHigh",
            f'modelplane:model_latency_p99_seconds:rate5m{{namespace="team"}} {_JOIN}'
            ' (modelplane:model_latency_objective:seconds{namespace="team"})',
            "10m",
            "warning",
        ),
    ],
)
def test_alert_expressions(alert: str, expr: str, hold: str, severity: str) -> None:
    (rule,) = _objects(_stack(SMALL), "PrometheusRule")
    found = _alerts(rule)[alert]
    assert (found["expr"], found["for"], found["labels"]["severity"]) == (expr, hold, severity)


def test_objectives_follow_the_monitoring_section() -> None:
    stack = _stack(SMALL | {"monitoring": {"availabilityObjective": 99.95, "latencyObjectiveMs": 250}})
    (rule,) = _objects(stack, "PrometheusRule")
    assert [(r["expr"].split(" * ", 1)[0], r["labels"]) for r in _objectives(rule)] == [
        ("0.0005", {"objective": "99.95"}),
        ("0.25", {"objective": "250"}),
    ]


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


def _promtool_test(
    tmp_path: Path,
    series: list[dict[str, str]],
    alerts: list[dict[str, Any]],
    stack: dict[str, Any] = SMALL,
) -> None:
    promtool = _require_promtool()
    (rule,) = _objects(_stack(stack), "PrometheusRule")
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
        "exp_labels": {
            "severity": "critical",
            "slo": "availability",
            "namespace": "team",
            "model": "fraud",
            "objective": "99.9",
            "source": "queue-proxy",
        },
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
        "exp_labels": {
            "severity": "warning",
            "slo": "latency",
            "namespace": "team",
            "model": "fraud",
            "objective": "500",
            "source": "queue-proxy",
        },
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


CANARY = 'namespace="team",configuration_name="fraud-predictor",modelplane_dev_model="fraud"'


def _revision(version: str, revision: str) -> str:
    return f'{CANARY},revision_name="fraud-predictor-{revision}",modelplane_dev_version="{version}"'


def _canary_traffic(canary_failed_per_minute: int) -> list[dict[str, str]]:
    """The stable v1 answers 90 requests a minute cleanly; the canary v2 gets 10, some failing."""
    v1, v2 = _revision("v1", "00001"), _revision("v2", "00002")
    return [
        {"series": f'revision_app_request_count{{{v1},response_code_class="2xx"}}', "values": "0+90x60"},
        {"series": f'revision_app_request_count{{{v1},response_code_class="5xx"}}', "values": "0+0x60"},
        {
            "series": f'revision_app_request_count{{{v2},response_code_class="2xx"}}',
            "values": f"0+{10 - canary_failed_per_minute}x60",
        },
        {
            "series": f'revision_app_request_count{{{v2},response_code_class="5xx"}}',
            "values": f"0+{canary_failed_per_minute}x60",
        },
    ]


def _fast_burn(model: str, objective: str, source: str) -> list[dict[str, Any]]:
    labels = {"severity": "critical", "slo": "availability", "namespace": "team", "model": model}
    return [{"exp_labels": labels | {"objective": objective, "source": source}}]


def _alert_labels_only(
    tmp_path: Path, series: list[dict[str, str]], expected: list[dict[str, Any]], **kw: Any
) -> None:
    """Like ``_promtool_test``, comparing labels only (annotations are checked above)."""
    promtool = _require_promtool()
    (rule,) = _objects(_stack(kw.get("stack", SMALL)), "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for entry in group["rules"]:
            entry.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "ModelErrorBudgetFastBurn", "exp_alerts": expected}
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_failing_canary_burns_its_models_budget(tmp_path: Path) -> None:
    # 5 of the canary's 10 requests a minute fail: 5% of the model's requests, 50 times its budget.
    _alert_labels_only(tmp_path, _canary_traffic(5), _fast_burn("fraud", "99.9", "queue-proxy"))


def test_a_healthy_canary_burns_nothing(tmp_path: Path) -> None:
    _alert_labels_only(tmp_path, _canary_traffic(0), [])


OWN_OBJECTIVE = SMALL | {
    "models": [
        _model("fraud", "knative", "sklearn") | {"slo": {"availability": 99}},
        _model("ranker", "standard", "mlserver"),
    ]
}
"""The Knative model accepts 1% of its requests failing; the MLServer model the stack's 0.1%."""


def test_a_model_with_its_own_objective_is_judged_by_it(tmp_path: Path) -> None:
    # 5% failing is 50 times a 0.1% budget but 5 times a 1% budget, under the page's 14.4: no page.
    _alert_labels_only(tmp_path, _canary_traffic(5), [], stack=OWN_OBJECTIVE)


def test_a_model_with_its_own_objective_still_pages_beyond_it(tmp_path: Path) -> None:
    # Every canary request and 60 of the stable's 90 failing: 70% of all, over 14.4 x 1%.
    series = _canary_traffic(10)
    series[0]["values"], series[1]["values"] = "0+30x60", "0+60x60"
    _alert_labels_only(tmp_path, series, _fast_burn("fraud", "99", "queue-proxy"), stack=OWN_OBJECTIVE)


def test_the_stacks_objective_still_holds_beside_a_models_own(tmp_path: Path) -> None:
    series = [
        *_canary_traffic(5),
        {"series": f'model_infer_request_success_total{{{RANKER},model_name="ranker"}}', "values": "0+95x60"},
        {"series": f'model_infer_request_failure_total{{{RANKER},model_name="ranker"}}', "values": "0+5x60"},
    ]
    _alert_labels_only(tmp_path, series, _fast_burn("ranker", "99.9", "mlserver"), stack=OWN_OBJECTIVE)

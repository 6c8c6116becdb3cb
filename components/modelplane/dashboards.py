"""Grafana dashboards as code: a platform overview, one per tenant, one per model by selection.

Built with Grafana's own SDK (``grafana-foundation-sdk``) and shipped as ConfigMaps that
kube-prometheus-stack's Grafana sidecar loads (label ``grafana_dashboard: "1"``, every
namespace: the chart's ``grafana.sidecar.dashboards`` defaults, checked against the chart in
``tests/upstream``). The model dashboard selects its model with template variables (namespace,
model, version), so the objects grow with the tenants, never with the models. Every query is a
recording rule of ``modelplane.slo`` or ``modelplane.gpu_rules``, or ``promql.model_queries``
(the rollout gates' builder) split by version, so a panel shows what gates and alerts judge.

The SDK is imported when dashboards are built, not when ``modelplane`` is: its import costs
more than the rest of a render's start-up (docs/monitoring.md has the measurement).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelplane import gpu_rules, slo
from modelplane.kube import Obj, labels
from modelplane.promql import model_queries, model_selector

SIDECAR_LABEL = "grafana_dashboard"
SIDECAR_LABEL_VALUE = "1"
DATASOURCE_TYPE = "prometheus"
DATASOURCE_VARIABLE = "datasource"
VERSION_LABEL = "modelplane_dev_version"

VERSION_SOURCES: tuple[tuple[str, str], ...] = (
    ("knative", "sklearn"),
    ("standard", "mlserver"),
    ("standard", "triton"),
    ("standard", "sklearn"),
    ("standard", "huggingface"),
)
"""(mode, runtime) of each source that labels a model's series with its version: the model
dashboard asks each, and the one that measures the selected model answers."""


@dataclass(frozen=True)
class Query:
    """One query of a panel: PromQL and how its series are named in the legend."""

    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    """A time-series panel: its queries, unit, and lines drawn at thresholds."""

    title: str
    queries: tuple[Query, ...]
    unit: str
    description: str = ""
    thresholds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Board:
    """A dashboard before the SDK builds it."""

    uid: str
    title: str
    panels: tuple[Panel, ...]
    variables: tuple[tuple[str, str, str], ...] = ()
    """(name, label, PromQL ``label_values`` query) of each template variable, in order."""
    annotations: tuple[tuple[str, str], ...] = ()
    """(name, PromQL) of each annotation query."""
    tags: tuple[str, ...] = field(default=("modelplane",))


def _burn(window: str, where: str) -> str:
    """The burn rate of the error budget over a window: the error ratio over the model's budget."""
    return (
        f"{slo.error_ratio_record(window)}{where} / on (namespace, model) group_left ()"
        f" {slo.ERROR_BUDGET_RECORD}{where}"
    )


def _gpu_panels() -> tuple[Panel, ...]:
    return (
        Panel("GPU utilisation per pool", (Query(gpu_rules.UTILIZATION, "{{pool}}"),), "percent"),
        Panel("GPU memory used per pool", (Query(gpu_rules.MEMORY_USED_RATIO, "{{pool}}"),), "percentunit"),
        Panel("GPU power per pool", (Query(gpu_rules.POWER, "{{pool}}"),), "watt"),
        Panel(
            "GPUs held by pods, of all",
            (Query(gpu_rules.RESERVED, "{{pool}} held"), Query(gpu_rules.GPUS, "{{pool}} all")),
            "short",
        ),
    )


def platform_board() -> Board:
    """Every namespace's worst model, and the GPU pools."""
    worst = "max by (namespace) "
    measured = f'{{__name__=~"{slo.error_ratio_record("5m")}|{slo.LATENCY_RECORD}"}}'
    return Board(
        uid="modelplane-platform",
        title="modelplane / platform",
        panels=(
            Panel(
                "Error ratio, worst model per namespace",
                (Query(f"{worst}({slo.error_ratio_record('5m')})", "{{namespace}}"),),
                "percentunit",
            ),
            Panel(
                "p99 latency, worst model per namespace",
                (Query(f"{worst}({slo.LATENCY_RECORD})", "{{namespace}}"),),
                "s",
            ),
            Panel(
                "Error budget burn rate (1h), worst model per namespace",
                (Query(f"{worst}({_burn('1h', '')})", "{{namespace}}"),),
                "short",
                thresholds=tuple(b.factor for b in slo.BURN_RATE_ALERTS),
            ),
            Panel(
                "Models measured per namespace",
                (Query(f"count by (namespace) (group by (namespace, model) ({measured}))", "{{namespace}}"),),
                "short",
            ),
            *_gpu_panels(),
        ),
    )


def tenant_board(namespace: str) -> Board:
    """One tenant namespace: each model's error ratio, latency, burn rate, GPUs and replicas.

    kube-state-metrics names an extended resource as its sanitised name (``nvidia_com_gpu``,
    unit ``integer``: kube-state-metrics v2.20.0 ``internal/store/pod.go``, ``SanitizeLabelName``).
    """
    where = f'{{namespace="{namespace}"}}'
    return Board(
        uid=f"modelplane-tenant-{namespace}"[:40],
        title=f"modelplane / tenant {namespace}",
        panels=(
            Panel(
                "Error ratio per model",
                (Query(f"{slo.error_ratio_record('5m')}{where}", "{{model}}"),),
                "percentunit",
            ),
            Panel("p99 latency per model", (Query(f"{slo.LATENCY_RECORD}{where}", "{{model}}"),), "s"),
            Panel(
                "Error budget burn rate (1h) per model",
                (Query(_burn("1h", where), "{{model}}"),),
                "short",
                thresholds=tuple(b.factor for b in slo.BURN_RATE_ALERTS),
            ),
            Panel(
                "GPUs requested per model",
                (
                    Query(
                        f'sum by (label_modelplane_dev_model) (kube_pod_container_resource_requests{{namespace="{namespace}",'
                        'resource=~"nvidia_com_.+"} * on (namespace, pod) group_left (label_modelplane_dev_model)'
                        f' kube_pod_labels{{namespace="{namespace}",label_modelplane_dev_model!=""}})',
                        "{{label_modelplane_dev_model}}",
                    ),
                ),
                "short",
                "GPUs, GPU shares and MIG slices the model's pods request (kube-state-metrics names "
                "nvidia.com/gpu nvidia_com_gpu).",
            ),
            Panel(
                "Replicas per model",
                (
                    Query(
                        f'count by (label_modelplane_dev_model) (kube_pod_labels{{namespace="{namespace}",label_modelplane_dev_model!=""}})',
                        "{{label_modelplane_dev_model}}",
                    ),
                ),
                "short",
            ),
        ),
    )


def _by_version(metric: str) -> tuple[Query, ...]:
    """``metric`` of the selected model per version, from every source that labels versions."""
    queries: list[Query] = []
    for mode, runtime in VERSION_SOURCES:
        selector = [*model_selector(mode, "$namespace", "$model"), f'{VERSION_LABEL}=~"$version"']
        query = model_queries(mode, runtime, selector, "5m", by=(VERSION_LABEL,))[metric]
        if isinstance(query, str) and query not in (q.expr for q in queries):
            queries.append(Query(query, f"{{{{{VERSION_LABEL}}}}}"))
    # ModelMesh: a candidate is a side object with its own vModelId, `<model>-<candidate>`.
    mesh = model_queries(
        "modelmesh",
        "mlserver",
        ['namespace="$namespace"', 'vModelId=~"$model|$model-.+"'],
        "5m",
        by=("vModelId",),
    )[metric]
    assert isinstance(mesh, str)
    queries.append(Query(mesh, "{{vModelId}}"))
    return tuple(queries)


def model_board(gate_thresholds: dict[str, float]) -> Board:
    """One model, chosen by namespace and model: stable and candidate side by side, gates, SLO, rollout events.

    ``gate_thresholds`` are the stack's rollout gates (``error-rate``, ``latency-p99``: the
    ``max`` each allows), drawn as lines on the per-version panels they judge.
    """
    model = '{namespace="$namespace",model="$model"}'
    measured = f'{{__name__=~"{slo.error_ratio_record("5m")}|{slo.LATENCY_RECORD}"'
    versioned = f'{{namespace="$namespace",modelplane_dev_model="$model",{VERSION_LABEL}!=""}}'
    return Board(
        uid="modelplane-model",
        title="modelplane / model",
        variables=(
            ("namespace", "Namespace", f"label_values({measured}}}, namespace)"),
            ("model", "Model", f'label_values({measured},namespace="$namespace"}}, model)'),
            ("version", "Version", f"label_values({versioned}, {VERSION_LABEL})"),
        ),
        panels=(
            *(
                Panel(
                    f"{what} per version (gate: {metric})",
                    _by_version(metric),
                    unit,
                    "Each version of the model: the stable one and the candidate of a rollout.",
                    tuple(v for k, v in gate_thresholds.items() if k == metric),
                )
                for what, metric, unit in (
                    ("Error ratio", "error-rate", "percentunit"),
                    ("p99 latency", "latency-p99", "s"),
                )
            ),
            Panel(
                "Replicas per version",
                (
                    Query(
                        'count by (label_modelplane_dev_version) (kube_pod_labels{namespace="$namespace",'
                        'label_modelplane_dev_model="$model"})',
                        "{{label_modelplane_dev_version}}",
                    ),
                ),
                "short",
            ),
            Panel(
                "Error ratio and its objective (all versions)",
                (
                    Query(f"{slo.error_ratio_record('5m')}{model}", "error ratio"),
                    Query(f"{slo.ERROR_BUDGET_RECORD}{model}", "budget ({{objective}}%)"),
                ),
                "percentunit",
            ),
            Panel(
                "Error budget burn rate",
                tuple(Query(_burn(w, model), f"burn rate {w}") for w in ("1h", "6h")),
                "short",
                "14.4 over 1h pages, 6 over 6h opens a ticket (with their short windows).",
                tuple(b.factor for b in slo.BURN_RATE_ALERTS),
            ),
            Panel(
                "p99 latency and its objective (all versions)",
                (
                    Query(f"{slo.LATENCY_RECORD}{model}", "p99"),
                    Query(f"{slo.LATENCY_OBJECTIVE_RECORD}{model}", "objective ({{objective}} ms)"),
                ),
                "s",
            ),
        ),
        annotations=(
            (
                "Version starts serving",
                f"group by ({VERSION_LABEL}) ({versioned}) unless group by ({VERSION_LABEL}) ({versioned} offset 10m)",
            ),
        ),
    )


def render(board: Board) -> dict[str, Any]:
    """The dashboard's JSON model, built by Grafana's SDK."""
    from grafana_foundation_sdk.builders import common as common_builder  # noqa: PLC0415 (costly; only when rendering)
    from grafana_foundation_sdk.builders import dashboard as builder  # noqa: PLC0415
    from grafana_foundation_sdk.builders import prometheus, timeseries  # noqa: PLC0415
    from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: PLC0415
    from grafana_foundation_sdk.models import common, dashboard  # noqa: PLC0415

    source = dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=f"${{{DATASOURCE_VARIABLE}}}")
    built = (
        builder.Dashboard(board.title)
        .uid(board.uid)
        .tags(list(board.tags))
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(
            builder.DatasourceVariable(DATASOURCE_VARIABLE).label("Prometheus").type(DATASOURCE_TYPE)
        )
    )
    for name, label, values in board.variables:
        built = built.with_variable(
            builder.QueryVariable(name)
            .label(label)
            .datasource(source)
            .query(values)
            .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
            .include_all(name == "version")
            .multi(name == "version")
        )
    for name, expr in board.annotations:
        built = built.annotation(
            builder.AnnotationQuery()
            .name(name)
            .datasource(source)
            .enable(True)
            .icon_color("purple")
            .expr(expr)
        )
    for index, panel in enumerate(board.panels):
        chart = (
            timeseries.Panel()
            .title(panel.title)
            .datasource(source)
            .unit(panel.unit)
            .grid_pos(dashboard.GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)))
        )
        if panel.description:
            chart = chart.description(panel.description)
        if panel.thresholds:
            steps = [dashboard.Threshold(None, "green")] + [
                dashboard.Threshold(t, "red") for t in panel.thresholds
            ]
            chart = chart.thresholds(
                builder.ThresholdsConfig().mode(dashboard.ThresholdsMode.ABSOLUTE).steps(steps)
            ).thresholds_style(
                common_builder.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.LINE)
            )
        for ref, query in enumerate(panel.queries):
            chart = chart.with_target(
                prometheus.Dataquery()
                .expr(query.expr)
                .legend_format(query.legend)
                .ref_id(chr(ord("A") + ref))
            )
        built = built.with_panel(chart)
    data: dict[str, Any] = json.loads(json.dumps(built.build(), cls=JSONEncoder))
    return data


def boards(namespaces: Sequence[str], gate_thresholds: dict[str, float]) -> list[Board]:
    """The platform overview, one board per tenant namespace, and the model board."""
    return [platform_board(), *(tenant_board(ns) for ns in sorted(namespaces)), model_board(gate_thresholds)]


def objects(
    namespaces: Sequence[str], *, gate_thresholds: dict[str, float], namespace: str, stack: str
) -> list[Obj]:
    """One ConfigMap per dashboard, labelled for the Grafana sidecar, in the monitoring namespace."""
    result: list[Obj] = []
    for board in boards(namespaces, gate_thresholds):
        result.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": board.uid,
                    "namespace": namespace,
                    "labels": labels(stack, "monitoring") | {SIDECAR_LABEL: SIDECAR_LABEL_VALUE},
                },
                "data": {f"{board.uid}.json": json.dumps(render(board), indent=2, sort_keys=True) + "\n"},
            }
        )
    return result

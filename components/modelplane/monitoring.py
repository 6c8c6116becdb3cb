"""Prometheus monitoring of every model, with the queries that also gate canaries.

Prometheus comes from kube-prometheus-stack at the pinned version (or an existing Prometheus
operator). What modelplane authors is the scrape configuration, one PodMonitor per tenant
namespace that knows each runtime's metrics port and copies the model, version and runtime pod
labels onto every series, and the recording rules and SLO burn-rate alerts per model, built
from the same PromQL the rollout gates judge canaries with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import Field

from modelplane.base import StrictModel
from modelplane.kube import LABEL_MODEL, LABEL_RUNTIME, LABEL_VERSION, Obj, labels
from modelplane.promql import model_queries, model_selector
from modelplane.runtimes import RuntimeSpec
from modelplane.types import (
    DeploymentMode,
    DnsLabel,
    DnsSubdomain,
    Duration,
    Quantity,
    parse_duration,
    parse_quantity,
)
from modelplane.upstream import Chart, Versions


class MonitoringArgs(StrictModel):
    """Scraping, rules and alerts."""

    enabled: bool = Field(
        default=True, description="Emit ServiceMonitors/PodMonitors and rules for every model."
    )
    install_prometheus: bool = Field(
        default=True,
        description="Install kube-prometheus-stack; set false to use an existing Prometheus operator.",
    )
    namespace: DnsLabel = Field(default="monitoring", description="Namespace of Prometheus.")
    storage: Quantity = Field(
        default="50Gi",
        description="Prometheus's persistent volume, one claim per replica, so gate and SLO history "
        "survive a restart; 85% of it is the size-based retention. Default: 50Gi.",
    )
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="StorageClass of Prometheus's volume. Default: the cluster's default class."
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days Prometheus keeps samples (the longer of this and the SLO windows matters for "
        "burn-rate alerts). Default: 15, 2 in dev.",
    )
    grafana_admin_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret in the monitoring namespace holding Grafana's admin credentials (keys "
        "`admin-user` and `admin-password`), by reference. Default: none, and Grafana's chart keeps a "
        "random password in a Secret of its own.",
    )
    scrape_interval: Duration = Field(default="30s", description="Scrape interval of model metrics.")
    availability_objective: float = Field(
        default=99.9,
        gt=50,
        lt=100,
        description="Availability SLO per model, in percent, for burn-rate alerts.",
    )
    latency_objective_ms: int = Field(
        default=500, ge=1, le=600000, description="p99 latency objective per model, in milliseconds."
    )


MODEL_LABELS: tuple[str, ...] = (LABEL_MODEL, LABEL_VERSION, LABEL_RUNTIME)
"""Pod labels copied onto every scraped series (as ``modelplane_dev_model`` and so on)."""

QUEUE_PROXY_PORT = "http-usermetric"
"""Knative's queue-proxy port that serves per-revision request metrics."""

MODELMESH_METRICS_PORT = "prometheus"

RULE_NAME = "modelplane-slo"
"""The PrometheusRule of a tenant namespace: its models' SLO recording rules and alerts."""

MAX_RULE_OBJECT_SIZE = 200_000
"""Characters of recording rules per PrometheusRule.

It keeps an object below the 256 KiB ``last-applied-configuration`` annotation of client-side
apply (whatever applies the GitOps tree) and far below etcd's 1.5 MiB object limit.
"""

RULE_OVERHEAD = 200
"""Characters a recording rule takes besides its expression (names, labels, JSON syntax)."""

ERROR_RATIO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h")
"""Windows of the recorded error ratio: the long and short windows of the burn-rate alerts."""

LATENCY_WINDOW = "5m"

LATENCY_RECORD = f"modelplane:model_latency_p99_seconds:rate{LATENCY_WINDOW}"

LATENCY_FOR = "10m"
"""How long p99 must stay above the objective before the latency alert fires."""

SLO_PERIOD_SECONDS = 30 * 24 * 3600
"""The period the availability objective is measured over (30 days), which sets what a burn rate means."""


def error_ratio_record(window: str) -> str:
    """The recorded series of a model's error ratio over a window."""
    return f"modelplane:model_error_ratio:rate{window}"


@dataclass(frozen=True)
class BurnRateAlert:
    """A multi-window burn-rate alert (Google SRE workbook, "Alerting on SLOs").

    It fires when the error ratio over both windows exceeds ``factor`` times the error budget:
    the long window proves the burn is significant, the short one that it is still going on, so
    the alert resets minutes after the errors stop.
    """

    alert: str
    severity: str
    factor: float
    long: str
    short: str
    hold: str
    """The rule's ``for``: how long both windows must agree."""
    speed: str
    """How the summary describes the burn."""


BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("ModelErrorBudgetFastBurn", "critical", 14.4, "1h", "5m", "2m", "fast"),
    BurnRateAlert("ModelErrorBudgetSlowBurn", "warning", 6, "6h", "30m", "15m", "steadily"),
)
"""The page (14.4x over 1h and 5m: 2% of a 30-day budget in an hour) and the ticket (6x over
6h and 30m: 5% in six hours). ``critical`` and ``warning`` are the severities
kube-prometheus-stack's Alertmanager routes and inhibits by."""


def retention_size(storage: str) -> str:
    """Prometheus's ``retentionSize`` for a volume: 85% of it, in MB (Prometheus's units are powers of 2).

    Time-based retention alone lets the volume fill up and Prometheus stop ingesting; the size
    limit drops the oldest blocks first, with room left for the WAL and compaction.
    """
    return f"{int(parse_quantity(storage) * Decimal('0.85')) // 2**20}MB"


def _volume_claim(args: MonitoringArgs) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": args.storage}},
    }
    if args.storage_class_name:
        spec["storageClassName"] = args.storage_class_name
    return spec


def _grafana(args: MonitoringArgs) -> dict[str, Any]:
    # Grafana's `helm test` Pod runs as root with no security context; nothing here runs
    # `helm test`, and its namespace should not have to admit it.
    values: dict[str, Any] = {"testFramework": {"enabled": False}}
    if args.grafana_admin_secret:
        # kube-prometheus-stack passes `grafana.admin` to the Grafana chart, which then renders no
        # admin Secret and reads both keys from this one (grafana chart values.yaml, `admin:`).
        values["admin"] = {"existingSecret": args.grafana_admin_secret}
    return values


def chart(args: MonitoringArgs, versions: Versions, *, tier: str) -> Chart:
    """kube-prometheus-stack, configured to pick up modelplane's monitors and rules in every namespace."""
    ha = tier != "dev"
    selectors = {
        "podMonitorSelectorNilUsesHelmValues": False,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "probeSelectorNilUsesHelmValues": False,
    }
    return Chart(
        release="kube-prometheus-stack",
        namespace=args.namespace,
        repository="https://prometheus-community.github.io/helm-charts",
        chart="kube-prometheus-stack",
        version=versions.prometheus_stack,
        values={
            "prometheus": {
                "prometheusSpec": {
                    **selectors,
                    "replicas": 2 if ha else 1,
                    "retention": f"{args.retention_days or (15 if ha else 2)}d",
                    "retentionSize": retention_size(args.storage),
                    "storageSpec": {"volumeClaimTemplate": {"spec": _volume_claim(args)}},
                    "scrapeInterval": args.scrape_interval,
                    "enableAdminAPI": False,
                }
            },
            "alertmanager": {"alertmanagerSpec": {"replicas": 2 if ha else 1}},
            "grafana": _grafana(args),
        },
        needed_by_groups=("monitoring.coreos.com",),
        crds=True,
        wave=0,
    )


def _pod_monitor(
    namespace: str, *, stack: str, interval: str, runtimes: list[RuntimeSpec], knative: bool
) -> Obj:
    endpoints: list[dict[str, Any]] = []
    for spec in runtimes:
        endpoints.append(
            {
                "portNumber": spec.metrics_port,
                "path": spec.metrics_path,
                "interval": interval,
                "relabelings": [
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_pod_label_modelplane_dev_runtime"],
                        "regex": spec.name,
                    }
                ],
            }
        )
    if knative:
        endpoints.append({"port": QUEUE_PROXY_PORT, "path": "/metrics", "interval": interval})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": "modelplane-models",
            "namespace": namespace,
            "labels": labels(stack, "monitoring"),
        },
        "spec": {
            "selector": {"matchExpressions": [{"key": LABEL_MODEL, "operator": "Exists"}]},
            "podTargetLabels": list(MODEL_LABELS),
            "podMetricsEndpoints": endpoints,
        },
    }


def _mesh_monitor(namespace: str, *, stack: str, interval: str) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "modelplane-mesh",
            "namespace": namespace,
            "labels": labels(stack, "monitoring"),
        },
        "spec": {
            "selector": {"matchLabels": {"modelmesh-service": "modelmesh-serving"}},
            "endpoints": [{"port": MODELMESH_METRICS_PORT, "scheme": "http", "interval": interval}],
        },
    }


def _number(value: Decimal) -> str:
    """A decimal as PromQL and prose read it: ``0.001``, never ``1E-3`` or float noise."""
    return format(value.normalize(), "f")


def error_budget(args: MonitoringArgs) -> str:
    """The share of requests that may fail, ``1 - objective``: ``0.001`` for 99.9%."""
    return _number((Decimal(100) - Decimal(str(args.availability_objective))) / 100)


def slo_recording_rules(mode: str, runtime: str, namespace: str, model: str) -> list[dict[str, Any]]:
    """A model's recorded error ratios and p99 latency, over every version of the model.

    The expressions are the rollout gates' (``promql.model_queries``) on the model's stable
    selector. What the runtime cannot measure in this mode is left out.
    """
    selector = model_selector(mode, namespace, model)
    extra = {"model": model, "namespace": namespace}
    rules: list[dict[str, Any]] = []
    for window in ERROR_RATIO_WINDOWS:
        query = model_queries(mode, runtime, selector, window)["error-rate"]
        if isinstance(query, str):
            rules.append({"record": error_ratio_record(window), "expr": query, "labels": dict(extra)})
    latency = model_queries(mode, runtime, selector, LATENCY_WINDOW)["latency-p99"]
    if isinstance(latency, str):
        rules.append({"record": LATENCY_RECORD, "expr": latency, "labels": dict(extra)})
    return rules


_WHICH = "model {{ $labels.model }} in namespace {{ $labels.namespace }}"
"""Alert templates name the model and namespace from the recorded series' labels."""


def _rollout_hint(stack: str) -> str:
    status = (
        f"modelplane rollout status stacks/{stack}.yaml {{{{ $labels.namespace }}}}/{{{{ $labels.model }}}}"
    )
    return f"If a rollout is under way, `{status}` shows the candidate and its gates"


def _burn_rate_alert(burn: BurnRateAlert, namespace: str, args: MonitoringArgs, stack: str) -> dict[str, Any]:
    factor = Decimal(str(burn.factor))
    threshold = f"({_number(factor)} * {error_budget(args)})"
    ns = f'{{namespace="{namespace}"}}'
    spent = _number(factor * parse_duration(burn.long) * 100 / SLO_PERIOD_SECONDS)
    days = _number(round(SLO_PERIOD_SECONDS / factor / 86400, 1))
    objective = _number(Decimal(str(args.availability_objective)))
    period = f"{SLO_PERIOD_SECONDS // 86400}-day"
    description = (
        f"{{{{ $value | humanizePercentage }}}} of the requests to {_WHICH} failed over the last"
        f" {burn.long}, and the last {burn.short} are as bad: more than {_number(factor)} times the"
        f" error budget of the {objective}% availability objective, which spends {spent}% of a"
        f" {period} budget in {burn.long} (all of it in {days} days). {_rollout_hint(stack)}, and"
        " `modelplane rollout rollback` sends all traffic back to the stable version; otherwise"
        " look at the predictor pods' logs and restarts and at the model's storage."
    )
    return {
        "alert": burn.alert,
        "expr": f"{error_ratio_record(burn.long)}{ns} > {threshold}"
        f" and {error_ratio_record(burn.short)}{ns} > {threshold}",
        "for": burn.hold,
        "labels": {"severity": burn.severity, "slo": "availability"},
        "annotations": {
            "summary": f"{_WHICH.capitalize()} is burning its error budget {burn.speed}",
            "description": description,
        },
    }


def _latency_alert(namespace: str, args: MonitoringArgs, stack: str) -> dict[str, Any]:
    objective = args.latency_objective_ms
    description = (
        f"The 99th percentile latency of {_WHICH} over the last {LATENCY_WINDOW} is"
        f" {{{{ $value | humanizeDuration }}}} and has been above the {objective} ms objective for"
        f" {LATENCY_FOR}. {_rollout_hint(stack)}; otherwise check whether the model runs at its"
        " maximum replicas, is throttled at its CPU limit or keeps waiting on cold starts."
    )
    return {
        "alert": "ModelLatencyHigh",
        "expr": f'{LATENCY_RECORD}{{namespace="{namespace}"}} > {_number(Decimal(objective) / 1000)}',
        "for": LATENCY_FOR,
        "labels": {"severity": "warning", "slo": "latency"},
        "annotations": {
            "summary": f"{_WHICH.capitalize()} answers slower than its {objective} ms p99 objective",
            "description": description,
        },
    }


def slo_rules(
    namespace: str, models: list[tuple[str, str, str]], args: MonitoringArgs, *, stack: str
) -> list[Obj]:
    """The PrometheusRule ``modelplane-slo`` of a namespace (none if no model can be measured).

    ``models`` holds (name, mode, runtime) of each model in the namespace. The alerts are one
    group for the whole namespace, reading the recorded series; every model gets its own group
    of recording rules, which Prometheus evaluates concurrently. A namespace with so many
    models that the object would grow too large to apply (``MAX_RULE_OBJECT_SIZE``) continues in
    ``modelplane-slo-2``, ``modelplane-slo-3``, and so on.
    """
    model_groups: list[dict[str, Any]] = []
    errors = latency = False
    for name, mode, runtime in sorted(models):
        rules = slo_recording_rules(mode, runtime, namespace, name)
        if rules:
            errors |= rules[0]["record"] != LATENCY_RECORD
            latency |= rules[-1]["record"] == LATENCY_RECORD
            model_groups.append({"name": f"{RULE_NAME}.model.{name}", "rules": rules})
    if not model_groups:
        return []
    alerts: list[dict[str, Any]] = []
    if errors:
        alerts += [_burn_rate_alert(b, namespace, args, stack) for b in BURN_RATE_ALERTS]
    if latency:
        alerts.append(_latency_alert(namespace, args, stack))
    chunks: list[list[dict[str, Any]]] = [[{"name": f"{RULE_NAME}.alerts", "rules": alerts}]]
    size = 0
    for group in model_groups:
        group_size = sum(len(r["expr"]) + RULE_OVERHEAD for r in group["rules"])
        if size + group_size > MAX_RULE_OBJECT_SIZE:
            chunks.append([])
            size = 0
        chunks[-1].append(group)
        size += group_size
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": RULE_NAME if i == 0 else f"{RULE_NAME}-{i + 1}",
                "namespace": namespace,
                "labels": labels(stack, "monitoring"),
            },
            "spec": {"groups": groups},
        }
        for i, groups in enumerate(chunks)
    ]


class ServedModel(NamedTuple):
    """One model as monitoring sees it: where it runs, how, and on which runtime."""

    namespace: str
    name: str
    mode: DeploymentMode
    runtime: RuntimeSpec


def objects(args: MonitoringArgs, *, stack: str, models: Sequence[ServedModel]) -> list[Obj]:
    """Per tenant namespace: a PodMonitor of its runtimes, a mesh ServiceMonitor, and its SLO rules."""
    if not args.enabled:
        return []
    by_namespace: dict[str, dict[str, Any]] = {}
    for model in models:
        entry = by_namespace.setdefault(
            model.namespace, {"runtimes": {}, "knative": False, "mesh": False, "models": []}
        )
        entry["models"].append((model.name, model.mode, model.runtime.name))
        if model.mode == "modelmesh":
            entry["mesh"] = True
            continue
        entry["runtimes"][model.runtime.name] = model.runtime
        entry["knative"] |= model.mode == "knative"
    result: list[Obj] = []
    for namespace, entry in sorted(by_namespace.items()):
        runtimes = [entry["runtimes"][name] for name in sorted(entry["runtimes"])]
        if runtimes or entry["knative"]:
            result.append(
                _pod_monitor(
                    namespace,
                    stack=stack,
                    interval=args.scrape_interval,
                    runtimes=runtimes,
                    knative=entry["knative"],
                )
            )
        if entry["mesh"]:
            result.append(_mesh_monitor(namespace, stack=stack, interval=args.scrape_interval))
        result += slo_rules(namespace, entry["models"], args, stack=stack)
    return result

"""SLO recording rules and burn-rate alerts whose number does not grow with the number of models.

A rule per model makes Prometheus evaluate 100,000 rules at 100,000 models and made SLO rules
most of a large stack's render. So each tenant namespace gets one set of rules: recording rules
aggregated ``by (namespace, model)`` once per metric source (Knative's queue-proxy, ModelMesh, a
runtime family's own metrics), objectives recorded as series of their own, and alerts that join
the measured ratios on the objective series ("SLO as data"). A model with its own objective
moves into the objective rule of its value: rules grow with the distinct objectives, never with
the models. The expressions come from ``promql.namespace_queries``, the rollout gates' builder,
so what a canary is judged on and what the SLO measures cannot drift apart. docs/monitoring.md
explains the design and the alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from modelplane.kube import Obj, labels
from modelplane.promql import namespace_queries, runtime_family, source_name
from modelplane.types import parse_duration

RULE_NAME = "modelplane-slo"
"""The PrometheusRule of a tenant namespace: its models' SLO recording rules and alerts."""

RECORDS_GROUP = f"{RULE_NAME}.records"
ALERTS_GROUP = f"{RULE_NAME}.alerts"

ERROR_RATIO_WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "6h")
"""Windows of the recorded error ratio: the long and short windows of the burn-rate alerts."""

LATENCY_WINDOW = "5m"

LATENCY_RECORD = f"modelplane:model_latency_p99_seconds:rate{LATENCY_WINDOW}"

ERROR_BUDGET_RECORD = "modelplane:model_error_budget:ratio"
"""Per model: the share of requests that may fail (``1 - availability objective``), with the
objective in percent as its ``objective`` label."""

LATENCY_OBJECTIVE_RECORD = "modelplane:model_latency_objective:seconds"
"""Per model: the p99 latency objective in seconds, with milliseconds as its ``objective`` label."""

LATENCY_FOR = "10m"
"""How long p99 must stay above the objective before the latency alert fires."""

SLO_PERIOD_SECONDS = 30 * 24 * 3600
"""The period the availability objective is measured over (30 days), which sets what a burn rate means."""

MODEL_KEY = "namespace, model"
"""The labels every recorded series carries, and the alerts join on."""


def error_ratio_record(window: str) -> str:
    """The recorded series of every model's error ratio over a window."""
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


@dataclass(frozen=True)
class SloModel:
    """One model as its SLO sees it: how it is measured and its objectives."""

    name: str
    mode: str
    runtime: str
    availability: float
    """Availability objective in percent."""
    latency_ms: int
    """p99 latency objective in milliseconds."""


def number(value: Decimal | float | int) -> str:
    """A number as PromQL and prose read it: ``0.001``, never ``1E-3`` or float noise."""
    return format(Decimal(str(value)).normalize(), "f")


def error_budget(availability: float) -> str:
    """The share of requests that may fail, ``1 - objective``: ``0.001`` for 99.9%."""
    return number((Decimal(100) - Decimal(str(availability))) / 100)


def _sources(models: Iterable[SloModel]) -> list[tuple[str, str]]:
    """(mode, runtime) of each metric source the models use, one runtime per family, sorted."""
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for m in models:
        key = (m.mode, () if m.mode != "standard" else runtime_family(m.runtime))
        seen.setdefault(key, m.runtime)
    return sorted((mode, runtime) for (mode, _), runtime in seen.items())


def recording_rules(namespace: str, models: Sequence[SloModel]) -> list[dict[str, Any]]:
    """Every model's error ratios and p99 latency in a namespace, one rule per source and window.

    Each recorded series is labelled ``namespace``, ``model`` and ``source`` (what measured it:
    ``promql.source_name``, which also keeps two sources' rules of one record apart for
    ``promtool check rules``); a source that cannot measure a metric (``promql.model_queries``
    says why) records nothing for it.
    """
    beside_knative = any(m.mode == "knative" for m in models)
    sources = _sources(models)
    rules: list[dict[str, Any]] = []
    for window in ERROR_RATIO_WINDOWS:
        for mode, runtime in sources:
            query = namespace_queries(mode, runtime, namespace, window, beside_knative=beside_knative)
            if isinstance(query["error-rate"], str):
                rules.append(
                    {
                        "record": error_ratio_record(window),
                        "expr": query["error-rate"],
                        "labels": {"source": source_name(mode, runtime)},
                    }
                )
    for mode, runtime in sources:
        query = namespace_queries(mode, runtime, namespace, LATENCY_WINDOW, beside_knative=beside_knative)
        if isinstance(query["latency-p99"], str):
            rules.append(
                {
                    "record": LATENCY_RECORD,
                    "expr": query["latency-p99"],
                    "labels": {"source": source_name(mode, runtime)},
                }
            )
    return rules


def _regex(names: Iterable[str]) -> str:
    return "|".join(sorted(names))


def objective_rules(
    namespace: str,
    models: Sequence[SloModel],
    *,
    availability: float,
    latency_ms: int,
    errors: bool,
    latency: bool,
) -> list[dict[str, Any]]:
    """Each model's objectives as series, from the models the recording rules measure.

    The stack's objective covers every model but those with their own; each distinct objective
    of those gets one rule naming its models. The value is what the alerts compare against (the
    error budget, the latency in seconds); the ``objective`` label is what their text shows.
    """
    ns = f'namespace="{namespace}"'
    rules: list[dict[str, Any]] = []

    def add(record: str, measured: str, value: str, shown: str, by_value: dict[str, list[str]]) -> None:
        custom = [name for names in by_value.values() for name in names]
        default = f',model!~"{_regex(custom)}"' if custom else ""
        rules.append(
            {
                "record": record,
                "expr": f"{value} * group by ({MODEL_KEY}) ({measured}{{{ns}{default}}})",
                "labels": {"objective": shown},
            }
        )
        for shown_custom, names in sorted(by_value.items(), key=lambda item: Decimal(item[0])):
            custom_value = (
                error_budget(float(shown_custom))
                if record == ERROR_BUDGET_RECORD
                else number(Decimal(shown_custom) / 1000)
            )
            rules.append(
                {
                    "record": record,
                    "expr": f'{custom_value} * group by ({MODEL_KEY}) ({measured}{{{ns},model=~"{_regex(names)}"}})',
                    "labels": {"objective": shown_custom},
                }
            )

    if errors:
        custom: dict[str, list[str]] = {}
        for m in models:
            if m.availability != availability:
                custom.setdefault(number(m.availability), []).append(m.name)
        add(
            ERROR_BUDGET_RECORD,
            error_ratio_record(ERROR_RATIO_WINDOWS[-1]),
            error_budget(availability),
            number(availability),
            custom,
        )
    if latency:
        custom = {}
        for m in models:
            if m.latency_ms != latency_ms:
                custom.setdefault(str(m.latency_ms), []).append(m.name)
        add(
            LATENCY_OBJECTIVE_RECORD,
            LATENCY_RECORD,
            number(Decimal(latency_ms) / 1000),
            str(latency_ms),
            custom,
        )
    return rules


_WHICH = "model {{ $labels.model }} in namespace {{ $labels.namespace }}"
"""Alert templates name the model and namespace from the recorded series' labels."""


def _rollout_hint(stack: str) -> str:
    status = (
        f"modelplane rollout status stacks/{stack}.yaml {{{{ $labels.namespace }}}}/{{{{ $labels.model }}}}"
    )
    return f"If a rollout is under way, `{status}` shows the candidate and its gates"


def _above(record: str, namespace: str, factor: str, objective: str) -> str:
    """``record`` above ``factor`` times its model's objective series, with the objective's label."""
    ns = f'{{namespace="{namespace}"}}'
    scaled = f"{factor} * {objective}{ns}" if factor else f"{objective}{ns}"
    return f"{record}{ns} > on ({MODEL_KEY}) group_left (objective) ({scaled})"


def burn_rate_alert(burn: BurnRateAlert, namespace: str, stack: str) -> dict[str, Any]:
    """One burn-rate alert over every model of a namespace, each against its own error budget."""
    factor = number(burn.factor)
    spent = number(Decimal(factor) * parse_duration(burn.long) * 100 / SLO_PERIOD_SECONDS)
    days = number(round(Decimal(SLO_PERIOD_SECONDS) / Decimal(factor) / 86400, 1))
    period = f"{SLO_PERIOD_SECONDS // 86400}-day"
    description = (
        f"{{{{ $value | humanizePercentage }}}} of the requests to {_WHICH} failed over the last"
        f" {burn.long}, and the last {burn.short} are as bad: more than {factor} times the error"
        " budget of the {{ $labels.objective }}% availability objective, which spends"
        f" {spent}% of a {period} budget in {burn.long} (all of it in {days} days)."
        f" {_rollout_hint(stack)}, and `modelplane rollout rollback` sends all traffic back to the"
        " stable version; otherwise look at the predictor pods' logs and restarts and at the"
        " model's storage."
    )
    return {
        "alert": burn.alert,
        "expr": _above(error_ratio_record(burn.long), namespace, factor, ERROR_BUDGET_RECORD)
        + " and "
        + _above(error_ratio_record(burn.short), namespace, factor, ERROR_BUDGET_RECORD),
        "for": burn.hold,
        "labels": {"severity": burn.severity, "slo": "availability"},
        "annotations": {
            "summary": f"{_WHICH.capitalize()} is burning its error budget {burn.speed}",
            "description": description,
        },
    }


def latency_alert(namespace: str, stack: str) -> dict[str, Any]:
    """The p99 latency alert over every model of a namespace, each against its own objective."""
    description = (
        f"The 99th percentile latency of {_WHICH} over the last {LATENCY_WINDOW} is"
        " {{ $value | humanizeDuration }} and has been above the {{ $labels.objective }} ms"
        f" objective for {LATENCY_FOR}. {_rollout_hint(stack)}; otherwise check whether the model"
        " runs at its maximum replicas, is throttled at its CPU limit or keeps waiting on cold starts."
    )
    return {
        "alert": "ModelLatencyHigh",
        "expr": _above(LATENCY_RECORD, namespace, "", LATENCY_OBJECTIVE_RECORD),
        "for": LATENCY_FOR,
        "labels": {"severity": "warning", "slo": "latency"},
        "annotations": {
            "summary": f"{_WHICH.capitalize()} answers slower than its {{{{ $labels.objective }}}} ms p99"
            " objective",
            "description": description,
        },
    }


def slo_rules(
    namespace: str,
    models: Sequence[SloModel],
    *,
    availability: float,
    latency_ms: int,
    stack: str,
) -> list[Obj]:
    """The PrometheusRule ``modelplane-slo`` of a namespace (none if no model can be measured).

    One group records every model's ratios, latencies and objectives (in that order, so the
    objectives read this evaluation's ratios); one group holds the alerts. The number of rules
    depends on the sources and distinct objectives in use, not on the number of models.
    """
    records = recording_rules(namespace, models)
    if not records:
        return []
    errors = any(r["record"] != LATENCY_RECORD for r in records)
    latency = any(r["record"] == LATENCY_RECORD for r in records)
    objectives = objective_rules(
        namespace, models, availability=availability, latency_ms=latency_ms, errors=errors, latency=latency
    )
    alerts: list[dict[str, Any]] = []
    if errors:
        alerts += [burn_rate_alert(b, namespace, stack) for b in BURN_RATE_ALERTS]
    if latency:
        alerts.append(latency_alert(namespace, stack))
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": RULE_NAME,
                "namespace": namespace,
                "labels": labels(stack, "monitoring"),
            },
            "spec": {
                "groups": [
                    {"name": RECORDS_GROUP, "rules": records + objectives},
                    {"name": ALERTS_GROUP, "rules": alerts},
                ]
            },
        }
    ]

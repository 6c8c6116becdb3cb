"""Rollout gates: each gate compiled to PromQL for the model's candidate, and judged on a Prometheus.

Every query measures the *candidate* only (``candidate_selector``), over the time it has been at
its step (the policy's ``stepInterval``), and returns one number that the gate's ``max``/``min``
judges. The metrics behind each mode and runtime come from ``modelplane.promql``, shared with the
SLO rules (docs/rollouts.md, section 6, has the table). A gate the runtime cannot answer is
*unmeasurable* and a gate with no data fails; both block promotion unless the policy is a dry run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from modelplane.kube import side_name
from modelplane.promql import component_name, model_queries, pods_of
from modelplane.rollout.diff import DesiredModel
from modelplane.rollout.lock import ModelRecord
from modelplane.rollout.policy import Gate

Verdict = Literal["pass", "fail", "no-data", "unmeasurable", "error"]


@dataclass(frozen=True)
class CompiledGate:
    """A gate as a PromQL query for one model's candidate, or why it cannot be measured."""

    name: str
    metric: str
    query: str | None
    max: float | None
    min: float | None
    unmeasurable: str = ""
    """Why the query is None: the runtime exposes nothing to compute it from."""

    @property
    def threshold(self) -> str:
        """The pass condition as text, e.g. ``<= 0.01``."""
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Target:
    """Which candidate a gate measures."""

    mode: str
    runtime: str
    namespace: str
    model: str
    version: str
    name: str
    """The candidate's DNS-safe name (``predictor.name`` in Standard mode)."""
    window: str
    """The rate window: the policy's step interval."""


def candidate_target(wanted: DesiredModel, record: ModelRecord) -> Target:
    """The candidate of a model's rollout as its gates measure it (the window: the step interval)."""
    assert record.rollout is not None
    return Target(
        mode=record.mode,
        runtime=wanted.model.runtime,
        namespace=wanted.namespace,
        model=wanted.model.name,
        version=record.rollout.candidate.version,
        name=record.rollout.candidate.name,
        window=wanted.policy.step_interval,
    )


def candidate_selector(target: Target) -> list[str]:
    """Label matchers that select a rollout candidate's series (and nothing of the stable version)."""
    ns = f'namespace="{target.namespace}"'
    if target.mode == "knative":
        return [
            ns,
            f'configuration_name="{target.model}-predictor"',
            f'modelplane_dev_version="{target.version}"',
        ]
    if target.mode == "modelmesh":
        return [ns, f'vModelId="{side_name(target.model, target.name)}"']
    return [ns, f'pod=~"{pods_of(component_name(target.model, name=target.name))}"']


def fill_custom(query: str, target: Target) -> str:
    """A custom gate's query with its placeholders filled in.

    ``{model}``, ``{namespace}``, ``{version}``, ``{name}`` and ``{window}`` are replaced as plain
    text, because PromQL itself is full of braces.
    """
    values = {
        "{model}": target.model,
        "{namespace}": target.namespace,
        "{version}": target.version,
        "{name}": target.name,
        "{window}": target.window,
    }
    for placeholder, value in values.items():
        query = query.replace(placeholder, value)
    return query


def compile_gates(gates: list[Gate], target: Target) -> list[CompiledGate]:
    """Every gate as PromQL for the target's mode and runtime."""
    built = model_queries(target.mode, target.runtime, candidate_selector(target), target.window)
    result: list[CompiledGate] = []
    for gate in gates:
        if gate.metric == "custom":
            assert gate.query is not None  # the Gate model requires it
            result.append(
                CompiledGate(gate.name, gate.metric, fill_custom(gate.query, target), gate.max, gate.min)
            )
            continue
        entry = built[gate.metric]
        if isinstance(entry, tuple):
            why = f"{entry[1]}; use a custom gate or dryRun"
            result.append(CompiledGate(gate.name, gate.metric, None, gate.max, gate.min, unmeasurable=why))
        else:
            result.append(CompiledGate(gate.name, gate.metric, entry, gate.max, gate.min))
    return result


# --- verdicts --------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """What one gate said."""

    gate: CompiledGate
    verdict: Verdict
    value: float | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        """Whether the gate lets the rollout advance."""
        return self.verdict == "pass"

    def line(self) -> str:
        """One line for the terminal and the lock's history."""
        shown = "" if self.value is None else f" = {self.value:.6g}"
        why = f" ({self.message})" if self.message else ""
        return f"{self.gate.name}{shown} [{self.gate.threshold}]: {self.verdict}{why}"


def judge(gate: CompiledGate, values: list[float]) -> GateResult:
    """A gate's verdict on the values its query returned (the worst value counts)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return GateResult(gate, "no-data", None, "the query returned no data")
    worst = max(finite) if gate.max is not None else min(finite)
    if gate.max is not None and worst > gate.max:
        return GateResult(gate, "fail", worst)
    if gate.min is not None and min(finite) < gate.min:
        return GateResult(gate, "fail", min(finite))
    return GateResult(gate, "pass", worst)

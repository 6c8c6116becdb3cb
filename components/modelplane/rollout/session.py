"""One run of a rollout command: a stack, its lock, the decisions between them, and ``advance``.

``modelplane rollout ...`` and ``modelplane rollout reconcile`` share this: reading the stack and
its lock, naming models, refusing to act on a model whose stack entry changed since the lock was
written, and taking the next step of due rollouts after judging them (the probe, then the gates
on Prometheus). The state machine itself (``modelplane.rollout.state``) stays pure; this module
does the I/O around it and returns what happened per model, which the commands print as text
or JSON.

Gates are never skipped silently. A due rollout with gates and no Prometheus to ask is refused
before anything is written, unless ``--skip-gates`` says so, and then the lock's history records
it. A failed evaluation holds the rollout (or rolls it back at the policy's ``failureLimit``); a
Prometheus that cannot be asked is its own outcome, ``inconclusive``, which neither holds nor
advances and leaves one event per outage.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelplane import console, rules
from modelplane.build import desired_models
from modelplane.errors import RolloutError, StackError
from modelplane.kube import side_name
from modelplane.probe import probe
from modelplane.rollout import state
from modelplane.rollout.diff import DECISION_TEXT, Desired, ModelDecision, model_decisions
from modelplane.rollout.gates import CompiledGate, GateResult, candidate_target, compile_gates
from modelplane.rollout.lock import Lock, ModelRecord, empty_lock, lock_path, read_lock, same_lock, write_lock
from modelplane.rollout.policy import prometheus_url_problem
from modelplane.rollout.prometheus import PrometheusUnavailable, evaluate
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.stack_yaml import problem_line

SETTLED = ("steady", "in-place", "continue", "held")
"""Decisions that leave a model's lock entry as it is: the lock is current for it."""

Action = Literal["waiting", "advanced", "promoted", "held", "rolled-back", "inconclusive"]


NOW_ENV = "MODELPLANE_NOW"
"""Environment variable that stands for ``--now`` when it is not given: replays and tests of CI steps."""


def now_of(value: str | None) -> str:
    """The time of a command's events: ``--now``, else ``$MODELPLANE_NOW``, else the current UTC second."""
    value = value or os.environ.get(NOW_ENV) or None
    if value is None:
        return state.utc_now()
    state.parse_time(value)
    return value


def checked_prometheus(url: str | None, where: str = "--prometheus") -> str | None:
    """A Prometheus URL given on the command line, refused when it cannot be one.

    Raises:
        RolloutError: not an http(s) URL with a host, or it carries credentials.
    """
    if url is None:
        return None
    problem = prometheus_url_problem(url)
    if problem is not None:
        # The URL is not echoed: it may carry credentials.
        raise RolloutError(f"{where}: the Prometheus URL {problem}")
    return url


class Session:
    """A stack file, its lock and the decisions between them."""

    def __init__(
        self,
        file: str,
        *,
        lock: str | None = None,
        now: str | None = None,
        args: ServingPlatformArgs | None = None,
    ) -> None:
        self.file = file
        self.args = args if args is not None else load_stack(file)
        self.path = Path(lock) if lock else lock_path(file)
        self.lock = read_lock(self.path, stack=self.args.stack.name)
        self.desired: Desired = desired_models(self.args)
        self.decisions: dict[str, ModelDecision] = {
            d.key: d for d in model_decisions(self.desired, self.lock)
        }
        self.now = now_of(now)

    def with_lock(self, lock: Lock) -> Session:
        """The same stack and run over another lock (held in memory; ``save`` still compares with the file)."""
        other = object.__new__(Session)
        other.__dict__.update(self.__dict__)
        other.lock = lock
        other.decisions = {d.key: d for d in model_decisions(self.desired, lock)}
        return other

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> Session:
        """A session for a parsed ``modelplane rollout`` command line."""
        return cls(ns.file, lock=ns.lock, now=getattr(ns, "now", None))

    @property
    def stack(self) -> str:
        """The stack's name."""
        return self.args.stack.name

    @property
    def current(self) -> Lock:
        """The lock as read (an empty one when nothing is deployed yet)."""
        return self.lock if self.lock is not None else empty_lock(self.stack)

    def resolve(self, model: str | None) -> list[str]:
        """Lock keys a MODEL argument names (``name`` or ``namespace/name``); all when None."""
        keys = sorted(self.decisions)
        if model is None:
            return keys
        if "/" in model:
            if model in self.decisions:
                return [model]
        else:
            matches = [k for k in keys if k.split("/", 1)[1] == model]
            if len(matches) == 1:
                return matches
            if len(matches) > 1:
                raise RolloutError(
                    f"{self.file}: model {model!r} is in several namespaces: {', '.join(matches)}"
                )
        raise RolloutError(f"{self.file}: no model {model!r} in the stack or its lock")

    def settled(self, key: str) -> ModelRecord:
        """The lock entry of a model, refusing one whose stack entry changed since ``apply``."""
        decision = self.decisions[key]
        if decision.kind not in SETTLED:
            raise RolloutError(
                f"{key}: the stack changed since the lock was written ({DECISION_TEXT[decision.kind]}); "
                f"run `modelplane rollout apply {self.file}` first"
            )
        return self.current.models[key]

    def applied(self) -> Lock:
        """The lock after recording what the stack decides for every model (``apply``)."""
        return state.apply(
            self.lock, self.desired, stack=self.stack, now=self.now, decisions=list(self.decisions.values())
        )

    def changed(self, lock: Lock) -> bool:
        """Whether ``lock`` records something the lock on disk does not."""
        return self.lock is None or not same_lock(self.lock, lock)

    def refuse_unrenderable(self, lock: Lock) -> None:
        """Refuse a lock the stack cannot render under, or one dropping a prod model unallowed.

        The first is ``rules.version_problems``; the second a model removed from a prod stack
        that ``stack.allowRemoval`` does not list (``rules.removal_problems``).

        Raises:
            StackError: a stable version the lock keeps serving breaks a rule with the stack's
                fields, or an unallowed removal; one line per problem, at its path in the stack file.
        """
        found = rules.version_problems(
            self.args, state.effective_records(self.desired, lock), catalog=load_catalog(catalog_dir())
        )
        removed = [key for key, d in self.decisions.items() if d.kind == "removal" and key not in lock.models]
        found += rules.removal_problems(self.args, models=removed)
        if found:
            raise StackError(
                [problem_line(self.file, p.path, p.message, p.value, p.value is not None) for p in found]
            )

    def save(self, lock: Lock) -> bool:
        """Write ``lock`` when it records something new and the stack renders under it; whether it was written.

        Raises:
            StackError: the stack cannot be rendered under ``lock`` (nothing is written).
        """
        if not self.changed(lock):
            return False
        self.refuse_unrenderable(lock)
        write_lock(lock, self.path)
        return True

    def gates(self, key: str, record: ModelRecord) -> list[CompiledGate]:
        """The gates of a model's rollout, compiled for its candidate."""
        wanted = self.desired[key]
        return compile_gates(wanted.policy.gates, candidate_target(wanted, record))

    def report(self, command: str) -> dict[str, Any]:
        """The skeleton of a rollout command's JSON report (``modelplane/schemas/rollout.schema.json``)."""
        return {
            "schemaVersion": 1,
            "command": command,
            "stack": self.stack,
            "file": self.file,
            "lock": str(self.path),
            "now": self.now,
            "lockWritten": False,
            "decisions": [],
            "models": [],
            "render": None,
            "commit": None,
            "commitPaths": [],
        }

    def decisions_report(self, applied: Lock) -> list[tuple[dict[str, Any], str]]:
        """What ``apply`` records, per model that changes: its JSON entry and its line of text."""
        result = []
        for decision in self.decisions.values():
            if decision.kind == "steady":
                continue
            record = applied.models.get(decision.key)
            where = state.describe(record) if record is not None and decision.kind != "removal" else None
            entry = {
                "model": decision.key,
                "decision": decision.kind,
                "from": decision.from_version,
                "to": decision.to_version,
                "fields": list(decision.fields),
                "state": where,
            }
            versions = f"{decision.from_version or '-'} -> {decision.to_version or '-'}"
            fields = f" [{', '.join(decision.fields)}]" if decision.fields else ""
            text = f"{decision.key}: {DECISION_TEXT[decision.kind]} ({versions}){fields}" + (
                f": {where}" if where else ""
            )
            result.append((entry, text))
        return result


# --- advance -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvanceOptions:
    """How ``advance`` judges and moves rollouts."""

    prometheus: str | None = None
    """Where the gates are asked; ``--prometheus``, else the stack's ``rollout.prometheus``."""
    skip_gates: bool = False
    """Advance without asking the gates (recorded in the lock's history)."""
    force: bool = False
    """Do not wait for the step interval."""
    rollback_on_failure: bool = False
    """Roll back at the first failed evaluation (a failure limit of 1 for this run)."""


@dataclass
class Outcome:
    """What ``advance`` did to one model, and the evidence."""

    key: str
    action: Action
    record: ModelRecord
    detail: str = ""
    gates: list[GateResult] = field(default_factory=list)
    probe: Any = None
    """The probe's ``ProbeReport`` when the policy has one."""
    skipped: tuple[str, ...] = ()
    """Gates not asked because of ``--skip-gates``."""


@dataclass
class AdvanceResult:
    """Every model ``advance`` looked at, and the lock it leaves."""

    lock: Lock
    outcomes: list[Outcome]

    @property
    def failed(self) -> bool:
        """Whether a gate or probe failed (a rollout held or rolled back)."""
        return any(o.action in ("held", "rolled-back") for o in self.outcomes)

    @property
    def inconclusive(self) -> bool:
        """Whether Prometheus could not be asked for some rollout."""
        return any(o.action == "inconclusive" for o in self.outcomes)


def _probe(session: Session, key: str, record: ModelRecord) -> Any:
    """The V2 probe of a rollout's candidate (``policy.probe``), with its sample request."""
    assert record.rollout is not None
    wanted = session.desired[key]
    gate = wanted.policy.probe
    assert gate is not None
    model, namespace = wanted.model, wanted.namespace
    candidate = record.rollout.candidate
    url = gate.url_for(model=model.name, namespace=namespace, name=candidate.name, version=candidate.version)
    # The served model name is the InferenceService's (`--model_name={{.Name}}`); a ModelMesh
    # candidate is its own side InferenceService.
    served = side_name(model.name, candidate.name) if record.mode == "modelmesh" else model.name
    return probe(url, served, sample=model.sample_request, timeout=gate.timeout)


def _due(
    session: Session, lock: Lock, keys: list[str], *, explicit: bool, force: bool
) -> tuple[list[str], list[Outcome]]:
    """The models whose rollout may take a step now, and those waiting."""
    due: list[str] = []
    waiting: list[Outcome] = []
    for key in keys:
        record = lock.models.get(key)
        if not explicit and (
            record is None
            or record.rollout is None
            or record.rollout.state != "progressing"
            or record.rollout.phase == "ab"
        ):
            continue
        record = session.settled(key)
        ready = state.readiness(record, key, session.desired[key].policy, now=session.now)
        if ready.ready or force:
            due.append(key)
            continue
        rollout = record.rollout
        if explicit and rollout is not None and (rollout.state != "progressing" or rollout.phase == "ab"):
            raise RolloutError(f"{key}: {ready.reason}")
        waiting.append(Outcome(key, "waiting", record, detail=ready.reason))
    return due, waiting


def _refuse_unjudged(session: Session, due: list[str], options: AdvanceOptions) -> None:
    """Refuse to take steps whose gates nobody can ask, before anything is written."""
    if options.prometheus is not None or options.skip_gates:
        return
    lines = []
    for key in due:
        gates = session.desired[key].policy.gates
        if gates:
            names = ", ".join(g.name for g in gates)
            lines.append(f"{key}: gates {names} need a Prometheus to judge them")
    if lines:
        lines.append(
            f"{session.file}: pass --prometheus URL or set rollout.prometheus in the stack; or pass "
            "--skip-gates to advance without them (the lock's history records it)"
        )
        raise RolloutError("\n".join(lines))


def advance(session: Session, model: str | None, options: AdvanceOptions) -> AdvanceResult:
    """Take the next step of rollouts whose time is up and whose probe and gates pass.

    Raises:
        RolloutError: a model's state refuses the step, or gates are due with no Prometheus.
    """
    if options.skip_gates and options.prometheus is not None:
        raise RolloutError("--skip-gates and a Prometheus to ask: choose one")
    lock = session.current
    explicit = model is not None
    due, outcomes = _due(session, lock, session.resolve(model), explicit=explicit, force=options.force)
    _refuse_unjudged(session, due, options)
    models = dict(lock.models)
    for key in due:
        with console.progress(f"judging {key}"):
            outcome = _judge(session, key, models[key], options)
        models[key] = outcome.record
        outcomes.append(outcome)
    outcomes.sort(key=lambda o: o.key)
    return AdvanceResult(lock.model_copy(update={"models": models}), outcomes)


def _judge(session: Session, key: str, record: ModelRecord, options: AdvanceOptions) -> Outcome:
    """Judge one due rollout and move it: advance, hold, roll back, or record that nobody could judge."""
    policy = session.desired[key].policy
    notes: list[str] = []
    failed: list[str] = []
    report = None
    if policy.probe is not None:
        report = _probe(session, key, record)
        notes.append(f"probe {report.url}: {report.summary()}")
        failed += [] if report.healthy else ["probe"]
    results: list[GateResult] = []
    skipped: tuple[str, ...] = ()
    if not policy.gates:
        notes.append("no gates")
    elif options.skip_gates:
        skipped = tuple(g.name for g in policy.gates)
        notes.append(f"gates skipped (--skip-gates): {', '.join(skipped)}")
    else:
        assert options.prometheus is not None  # _refuse_unjudged saw to it
        at = state.parse_time(session.now).timestamp()
        try:
            results = evaluate(session.gates(key, record), options.prometheus, at=at)
        except PrometheusUnavailable as err:
            detail = f"gates not judged: {err}"
            record = state.inconclusive(record, key, now=session.now, detail=detail)
            return Outcome(key, "inconclusive", record, detail=detail, probe=report)
        notes += [r.line() for r in results]
        failed += [r.gate.name for r in results if not r.passed]
    ready = state.readiness(record, key, policy, now=session.now)
    if options.force and not ready.ready:
        notes.insert(0, f"forced ({ready.reason})")
    evidence = "; ".join(notes)
    if failed and not policy.dry_run:
        limit = 1 if options.rollback_on_failure else policy.failure_limit
        names = ", ".join(failed)
        record = state.fail(
            record, key, now=session.now, evidence=f"gates failed ({names}): {evidence}", limit=limit
        )
        rolled = record.rollout is not None and record.rollout.state == "rolled-back"
        action: Action = "rolled-back" if rolled else "held"
        return Outcome(key, action, record, record.history[-1].detail, results, report, skipped)
    if failed:
        evidence = f"dry run, gates not enforced: {evidence}"
    record = state.advance(record, key, now=session.now, detail=evidence)
    action = "promoted" if record.rollout is None else "advanced"
    return Outcome(key, action, record, evidence, results, report, skipped)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One model's outcome as the ``--output json`` reports carry it."""
    data: dict[str, Any] = {
        "model": outcome.key,
        "action": outcome.action,
        "state": state.describe(outcome.record),
        "traffic": [{"version": v.version, "percent": p} for v, p in state.traffic(outcome.record)],
        "detail": outcome.detail,
        "gates": [
            {
                "name": r.gate.name,
                "verdict": r.verdict,
                "value": r.value,
                "threshold": r.gate.threshold,
                "query": r.gate.query,
                "message": r.message,
            }
            for r in outcome.gates
        ],
        "skippedGates": list(outcome.skipped),
    }
    if outcome.probe is not None:
        data["probe"] = outcome.probe.as_dict()
    return data

"""The rollout state machine: how the lock moves when the stack changes or an operator acts.

``apply`` records what the diff decided (new models deployed directly, rollouts started,
restarted or cancelled, removed models dropped). ``advance``, ``promote``, ``rollback``,
``pause`` and ``resume`` move one model's rollout. Every function is pure: a lock in, a new lock
out, with the time of the event passed in, so the same inputs always give the same lock.

A canary walks its steps (for example 10 → 25 → 50 → 100); reaching 100 is promotion: the
candidate becomes the stable version and the rollout ends. A shadow phase, when planned, comes
before the first step. An A/B test holds a fixed split until an operator promotes or rolls back.
In ModelMesh mode, which cannot split traffic, the candidate loads beside the stable model and
advancing switches to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from modelplane.errors import RolloutError
from modelplane.rollout.diff import Desired, DesiredModel, ModelDecision, model_decisions
from modelplane.rollout.lock import (
    HISTORY_LIMIT,
    LOCK_SCHEMA_VERSION,
    EventKind,
    HistoryEvent,
    Lock,
    ModelRecord,
    RolloutRecord,
    VersionRecord,
)
from modelplane.rollout.policy import RolloutPolicy
from modelplane.rollout.version import version_name
from modelplane.types import parse_duration

EPOCH = "1970-01-01T00:00:00Z"
"""The time of events in a plan that is computed but never written (a render or a preview)."""


def parse_time(value: str) -> datetime:
    """A lock timestamp (``YYYY-MM-DDTHH:MM:SSZ``) as an aware datetime.

    Raises:
        RolloutError: the text is not such a timestamp.
    """
    try:
        parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise RolloutError(f"not a UTC timestamp like 2026-01-31T12:00:00Z: {value!r}") from None
    return parsed.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """An aware datetime as a lock timestamp."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> str:
    """The current time as a lock timestamp (whole seconds)."""
    return format_time(datetime.now(UTC))


# --- traffic -----------------------------------------------------------------------------


def candidate_share(record: ModelRecord) -> int:
    """The candidate's share of live traffic (0 with no rollout)."""
    rollout = record.rollout
    if rollout is None or rollout.state == "rolled-back":
        return 0
    if rollout.phase == "canary":
        return rollout.steps[rollout.step]
    if rollout.phase == "ab":
        return rollout.ab_split or 0
    return 0


def traffic(record: ModelRecord) -> list[tuple[VersionRecord, int]]:
    """Who gets live traffic and how much: the stable version, then the candidate if it gets any.

    Shadow traffic (mirrored, responses dropped) and a ModelMesh candidate loading beside the
    stable model get no live traffic.
    """
    share = candidate_share(record)
    if share == 0 or record.rollout is None:
        return [(record.stable, 100)]
    return [(record.stable, 100 - share), (record.rollout.candidate, share)]


def mirror_percent(record: ModelRecord) -> int:
    """The share of requests mirrored to the candidate (shadow phase), 0 otherwise."""
    rollout = record.rollout
    if (
        rollout is None
        or rollout.phase != "shadow"
        or rollout.state == "rolled-back"
        or rollout.shadow is None
    ):
        return 0
    return rollout.shadow.percent


def describe(record: ModelRecord) -> str:
    """One line about where a model stands."""
    rollout = record.rollout
    stable = record.stable.version
    if rollout is None:
        return f"steady on {stable}"
    cand = rollout.candidate.version
    if rollout.state == "rolled-back":
        return f"rolled back to {stable} (candidate {cand} held off)"
    paused = " (paused)" if rollout.state == "paused" else ""
    if rollout.phase == "shadow":
        return (
            f"shadowing {cand}: {mirror_percent(record)}% of requests mirrored, {stable} serves all{paused}"
        )
    if rollout.phase == "loading":
        return f"loading {cand} beside {stable}; {stable} serves all{paused}"
    if rollout.phase == "ab":
        return (
            f"A/B test {stable} {100 - candidate_share(record)}% / {cand} {candidate_share(record)}%{paused}"
        )
    return (
        f"canary {cand} at {candidate_share(record)}% "
        f"(step {rollout.step + 1} of {len(rollout.steps)}), {stable} {100 - candidate_share(record)}%{paused}"
    )


# --- apply -------------------------------------------------------------------------------


def _event(
    record: ModelRecord, at: str, kind: EventKind, version: str, share: int, detail: str = ""
) -> list[HistoryEvent]:
    event = HistoryEvent(at=at, event=kind, version=version, traffic_percent=share, detail=detail)
    return [*record.history, event][-HISTORY_LIMIT:]


def _version(wanted: DesiredModel, taken: frozenset[str], neighbours: set[str]) -> VersionRecord:
    """A version record for a model of the stack, with a name that collides with nothing.

    ``<model>-<name>`` names KServe's predictor Deployment and Service in Standard mode and the
    side InferenceService in ModelMesh mode, so it must not be another model's name in the same
    namespace (``neighbours``), whose own objects start with that prefix.
    """
    version = str(wanted.spec["version"])
    model = wanted.model.name
    namespace = wanted.namespace
    name = version_name(version, model=model, digest=wanted.digest, namespace=namespace, taken=taken)
    if f"{model}-{name}" in neighbours:
        name = version_name(
            version, model=model, digest=wanted.digest, namespace=namespace, taken=taken | {name}
        )
    return VersionRecord(version=version, name=name, digest=wanted.digest, spec=dict(wanted.spec))


def start_rollout(
    candidate: VersionRecord, policy: RolloutPolicy, *, mode: str, now: str
) -> RolloutRecord | None:
    """The rollout a policy plans for a candidate; None when it replaces the stable version at once."""
    if policy.strategy == "direct":
        return None
    if mode == "modelmesh":
        phase = "loading"
    elif policy.strategy == "ab":
        phase = "ab"
    elif policy.shadow is not None:
        phase = "shadow"
    elif policy.steps == [100]:
        return None
    else:
        phase = "canary"
    return RolloutRecord(
        candidate=candidate,
        strategy=policy.strategy,
        phase=phase,
        steps=list(policy.steps) if policy.strategy == "canary" else [],
        started_at=now,
        since=now,
        shadow=policy.shadow if phase == "shadow" else None,
        ab_split=policy.ab_split if policy.strategy == "ab" else None,
    )


def _promoted(record: ModelRecord, candidate: VersionRecord) -> VersionRecord:
    """The new stable record when a candidate is promoted.

    In Standard mode KServe's webhook refuses a change of ``predictor.name`` unless the model's
    storage changes too; when it does not, the stable predictor keeps its name and is updated in
    place (a rolling restart) instead of taking over the candidate's Deployment.
    """
    if record.mode == "standard" and candidate.spec.get("storageUri") == record.stable.spec.get("storageUri"):
        return candidate.model_copy(update={"name": record.stable.name})
    return candidate


def apply(
    lock: Lock | None,
    desired: Desired,
    *,
    stack: str,
    now: str,
    decisions: list[ModelDecision] | None = None,
) -> Lock:
    """The lock of ``stack`` after recording what the ``desired`` models decide against ``lock``.

    ``decisions`` are ``model_decisions(desired, lock)`` when the caller has them already.
    """
    records = dict(lock.models) if lock is not None else {}
    neighbours: dict[str, set[str]] = {}
    for key in [*desired, *records]:
        namespace, _, name = key.partition("/")
        neighbours.setdefault(namespace, set()).add(name)
    decisions = decisions if decisions is not None else model_decisions(desired, lock)
    for decision in decisions:
        key = decision.key
        if decision.kind == "removal":
            records.pop(key, None)
            continue
        wanted = desired[key]
        record = records.get(key)
        if decision.kind in ("new", "replace"):
            stable = _version(wanted, frozenset(), neighbours[wanted.namespace])
            base = record or ModelRecord(mode=decision.mode, stable=stable)
            kind: EventKind = "deployed" if decision.kind == "new" else "replaced"
            records[key] = ModelRecord(
                mode=decision.mode,
                stable=stable,
                history=_event(base, now, kind, stable.version, 100, decision.detail),
            )
            continue
        assert record is not None  # every other decision has a record
        if decision.kind in ("steady", "in-place"):
            if record.rollout is not None:  # a rolled-back rollout ends once the stack is stable again
                records[key] = record.model_copy(update={"rollout": None})
            continue
        if decision.kind in ("continue", "held"):
            continue
        if decision.kind == "abort":
            assert record.rollout is not None
            records[key] = record.model_copy(
                update={
                    "rollout": None,
                    "history": _event(
                        record, now, "aborted", record.rollout.candidate.version, 0, decision.detail
                    ),
                }
            )
            continue
        # start or restart
        candidate = _version(wanted, frozenset({record.stable.name}), neighbours[wanted.namespace])
        rollout = start_rollout(candidate, wanted.policy, mode=record.mode, now=now)
        if rollout is None:
            stable = _promoted(record, candidate)
            detail = f"direct from {record.stable.version}" + (
                f" ({decision.detail})" if decision.detail else ""
            )
            records[key] = ModelRecord(
                mode=record.mode,
                stable=stable,
                history=_event(record, now, "promoted", stable.version, 100, detail),
            )
            continue
        updated = record.model_copy(update={"rollout": rollout})
        kind = "started" if decision.kind == "start" else "restarted"
        detail = decision.detail or f"{record.stable.version} -> {candidate.version}"
        records[key] = updated.model_copy(
            update={"history": _event(record, now, kind, candidate.version, candidate_share(updated), detail)}
        )
    stack = lock.stack if lock is not None else stack
    ordered = {key: records[key] for key in sorted(records)}
    return Lock(schema_version=LOCK_SCHEMA_VERSION, stack=stack, models=ordered)


def effective_records(desired: Desired, lock: Lock) -> dict[str, ModelRecord]:
    """What would be deployed if the lock recorded the ``desired`` models now (for a render or a preview)."""
    return apply(lock, desired, stack=lock.stack, now=EPOCH).models


# --- operator commands -------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """Whether a rollout may take its next step now, and why not."""

    ready: bool
    reason: str = ""


def _active(record: ModelRecord, key: str, command: str) -> RolloutRecord:
    rollout = record.rollout
    if rollout is None:
        raise RolloutError(
            f"{key}: no rollout in progress (steady on {record.stable.version}); nothing to {command}"
        )
    if rollout.state == "rolled-back":
        raise RolloutError(
            f"{key}: the rollout of {rollout.candidate.version} was rolled back; "
            f"change the model's version in the stack to start a new one"
        )
    return rollout


def readiness(record: ModelRecord, key: str, policy: RolloutPolicy, *, now: str) -> Readiness:
    """Whether ``advance`` may move a model now: its rollout runs and its time at the step is up."""
    rollout = _active(record, key, "advance")
    if rollout.state == "paused":
        return Readiness(False, "paused; resume it first")
    if rollout.phase == "ab":
        return Readiness(
            False, "an A/B test has a fixed split and no automatic promotion; promote or roll back to end it"
        )
    if rollout.phase == "shadow":
        assert rollout.shadow is not None
        wait = parse_duration(rollout.shadow.duration)
        what = "the shadow phase"
    elif rollout.phase == "canary":
        wait = parse_duration(policy.step_interval)
        what = f"step {rollout.step + 1} ({rollout.steps[rollout.step]}%)"
    else:
        return Readiness(True)
    elapsed = int((parse_time(now) - parse_time(rollout.since)).total_seconds())
    if elapsed < wait:
        return Readiness(
            False, f"{what} has run {elapsed // 60}m{elapsed % 60:02d}s of {wait // 60}m{wait % 60:02d}s"
        )
    return Readiness(True)


def promote(record: ModelRecord, key: str, *, now: str, detail: str = "") -> ModelRecord:
    """The candidate becomes the stable version and takes all traffic; the rollout ends."""
    rollout = _active(record, key, "promote")
    stable = _promoted(record, rollout.candidate)
    return ModelRecord(
        mode=record.mode,
        stable=stable,
        history=_event(
            record, now, "promoted", stable.version, 100, detail or f"from {record.stable.version}"
        ),
    )


def advance(record: ModelRecord, key: str, *, now: str, detail: str = "") -> ModelRecord:
    """Take the next step: shadow → first canary step → ... → promotion; ModelMesh switches.

    The caller checks ``readiness`` and the gates first; this only moves the state.
    """
    rollout = _active(record, key, "advance")
    if rollout.state == "paused":
        raise RolloutError(f"{key}: the rollout of {rollout.candidate.version} is paused; resume it first")
    if rollout.phase == "ab":
        raise RolloutError(
            f"{key}: an A/B test has a fixed split and no automatic promotion; "
            "run `modelplane rollout promote` or `rollback` to end it"
        )
    if rollout.phase == "loading":
        return promote(record, key, now=now, detail=detail or "switched once loaded")
    if rollout.phase == "shadow":
        nxt = rollout.model_copy(update={"phase": "canary", "step": 0, "since": now, "failures": None})
    else:
        nxt = rollout.model_copy(update={"step": rollout.step + 1, "since": now, "failures": None})
    if nxt.steps[nxt.step] >= 100:
        return promote(record, key, now=now, detail=detail)
    updated = record.model_copy(update={"rollout": nxt})
    return updated.model_copy(
        update={
            "history": _event(
                record, now, "advanced", nxt.candidate.version, candidate_share(updated), detail
            )
        }
    )


def hold(record: ModelRecord, key: str, *, now: str, detail: str) -> ModelRecord:
    """Record that gates kept a rollout where it is (no failure counted; see ``fail``)."""
    rollout = _active(record, key, "hold")
    return record.model_copy(
        update={
            "history": _event(record, now, "held", rollout.candidate.version, candidate_share(record), detail)
        }
    )


def fail(record: ModelRecord, key: str, *, now: str, evidence: str, limit: int | None) -> ModelRecord:
    """Record a failed evaluation of a rollout's gates: hold it, or roll it back at ``limit``.

    Failures are counted per step (``rollout.failures``; taking a step or resuming resets the
    count). Consecutive holds of one step share one history event, updated with the latest
    evidence, so a rollout failing every few minutes does not push its start out of the
    history. When the count reaches the policy's ``failureLimit`` the rollout is rolled back,
    and the event says why, with the last evaluation's evidence.
    """
    rollout = _active(record, key, "hold")
    count = (rollout.failures or 0) + 1
    if limit is not None and count >= limit:
        why = f"failureLimit {limit} reached ({count} consecutive failed evaluations); last: {evidence}"
        return rollback(record, key, now=now, detail=why)
    of = f" of {limit}" if limit is not None else ""
    detail = f"failed evaluation {count}{of} at this step: {evidence}"
    previous = record
    if rollout.failures and record.history and record.history[-1].event == "held":
        previous = record.model_copy(update={"history": record.history[:-1]})
    share = candidate_share(record)
    return record.model_copy(
        update={
            "rollout": rollout.model_copy(update={"failures": count}),
            "history": _event(previous, now, "held", rollout.candidate.version, share, detail),
        }
    )


def inconclusive(record: ModelRecord, key: str, *, now: str, detail: str) -> ModelRecord:
    """Record that the gates could not be judged (Prometheus unreachable or erroring).

    Not a failed evaluation: nothing is known about the candidate. Recorded once per spell, so
    a Prometheus outage leaves one event (and an unchanged lock on later runs), not one per run.
    """
    rollout = _active(record, key, "judge")
    share = candidate_share(record)
    last = record.history[-1] if record.history else None
    if (
        last is not None
        and last.event == "inconclusive"
        and last.version == rollout.candidate.version
        and last.traffic_percent == share
    ):
        return record
    return record.model_copy(
        update={"history": _event(record, now, "inconclusive", rollout.candidate.version, share, detail)}
    )


def rollback(record: ModelRecord, key: str, *, now: str, detail: str = "") -> ModelRecord:
    """All traffic back to the stable version; the candidate stays off until the stack changes."""
    rollout = _active(record, key, "roll back")
    updated = record.model_copy(
        update={
            "rollout": rollout.model_copy(update={"state": "rolled-back", "since": now, "failures": None})
        }
    )
    return updated.model_copy(
        update={"history": _event(record, now, "rolled-back", rollout.candidate.version, 0, detail)}
    )


def pause(record: ModelRecord, key: str, *, now: str) -> ModelRecord:
    """Freeze a rollout where it is: traffic stays split, ``advance`` waits."""
    rollout = _active(record, key, "pause")
    if rollout.state == "paused":
        raise RolloutError(f"{key}: the rollout of {rollout.candidate.version} is already paused")
    updated = record.model_copy(update={"rollout": rollout.model_copy(update={"state": "paused"})})
    return updated.model_copy(
        update={"history": _event(record, now, "paused", rollout.candidate.version, candidate_share(record))}
    )


def resume(record: ModelRecord, key: str, *, now: str) -> ModelRecord:
    """Continue a paused rollout; the time at the current step counts again from now."""
    rollout = _active(record, key, "resume")
    if rollout.state != "paused":
        raise RolloutError(f"{key}: the rollout of {rollout.candidate.version} is not paused")
    updated = record.model_copy(
        update={
            "rollout": rollout.model_copy(update={"state": "progressing", "since": now, "failures": None})
        }
    )
    return updated.model_copy(
        update={"history": _event(record, now, "resumed", rollout.candidate.version, candidate_share(record))}
    )

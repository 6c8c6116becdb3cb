"""``modelplane rollout status|apply|advance|promote|rollback|pause|resume FILE [MODEL]``.

``apply`` records in the lock what the stack decides (new models deployed directly, rollouts
started, restarted or cancelled, removed models dropped); it is what CI runs once a change to a
stack is merged. The other commands move rollouts that ``apply`` recorded, and refuse to act on
a model whose stack entry changed since (run ``apply`` first), so the lock never gets ahead of
or behind the stack by accident. ``status`` only reads.

Exit codes: 0 done (or waiting for a step's time to pass); 2 input errors (bad stack, corrupt
lock, a command the rollout's state refuses); 3 ``advance`` held at least one rollout because a
gate failed.
"""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelplane.errors import RolloutError
from modelplane.rollout import state
from modelplane.rollout.diff import DECISION_TEXT, ModelDecision, model_decisions
from modelplane.rollout.lock import Lock, ModelRecord, empty_lock, lock_path, read_lock, same_lock, write_lock

EXIT_GATES_FAILED = 3

SETTLED = ("steady", "in-place", "continue", "held")
"""Decisions that leave a model's lock entry as it is: the lock is current for it."""


class _Context:
    """A stack file, its lock and the decisions between them."""

    def __init__(self, ns: argparse.Namespace) -> None:
        from modelplane.build import desired_models
        from modelplane.stack import load_stack

        self.file = ns.file
        self.args = load_stack(ns.file)
        self.path = Path(ns.lock) if ns.lock else lock_path(ns.file)
        self.lock = read_lock(self.path, stack=self.args.stack.name)
        self.desired = desired_models(self.args)
        self.decisions = {d.key: d for d in model_decisions(self.desired, self.lock)}
        self.now = _now(ns)

    @property
    def current(self) -> Lock:
        return self.lock if self.lock is not None else empty_lock(self.args.stack.name)

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

    def save(self, lock: Lock) -> None:
        if self.lock is not None and same_lock(self.lock, lock):
            return
        write_lock(lock, self.path)


def _now(ns: argparse.Namespace) -> str:
    value: str | None = getattr(ns, "now", None)
    if value is None:
        return state.utc_now()
    state.parse_time(value)
    return value


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Run a batch command without Python's cyclic garbage collector.

    Stacks, locks and rendered objects are large, long-lived and free of reference cycles; at
    20,000 models the collector rescanning them costs more than the work itself (measured in
    ``bench/rollout_bench.py``). Reference counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- apply -------------------------------------------------------------------------------


def _decision_line(decision: ModelDecision, record: ModelRecord | None) -> str:
    versions = f"{decision.from_version or '-'} -> {decision.to_version or '-'}"
    fields = f" [{', '.join(decision.fields)}]" if decision.fields else ""
    where = f": {state.describe(record)}" if record is not None and decision.kind != "removal" else ""
    return f"  {decision.key}: {DECISION_TEXT[decision.kind]} ({versions}){fields}{where}"


def cmd_apply(ns: argparse.Namespace) -> int:
    """Record in the lock what the stack decides for every model."""
    ctx = _Context(ns)
    decisions = list(ctx.decisions.values())
    new = state.apply(ctx.lock, ctx.desired, stack=ctx.args.stack.name, now=ctx.now, decisions=decisions)
    changes = [d for d in decisions if d.kind != "steady"]
    for decision in changes:
        print(_decision_line(decision, new.models.get(decision.key)))
    verb = "would write" if ns.dry_run else "wrote"
    if ctx.lock is not None and same_lock(ctx.lock, new):
        print(f"{ctx.path}: up to date ({len(new.models)} models)")
        return 0
    if not ns.dry_run:
        write_lock(new, ctx.path)
    print(f"{ctx.path}: {verb} ({len(new.models)} models, {len(changes)} changed)")
    return 0


# --- status ------------------------------------------------------------------------------


def cmd_status(ns: argparse.Namespace) -> int:
    """Where each model stands: stable version, rollout, traffic as rendered, next step, gates."""
    from modelplane.build import build
    from modelplane.rollout.compile import rendered_mirrors, rendered_traffic

    ctx = _Context(ns)
    keys = ctx.resolve(ns.model)
    lock = ctx.current
    if ctx.lock is None:
        print(f"{ctx.path}: no lock yet: nothing is deployed")
    rendered = build(ctx.args, lock=lock)
    objects = rendered.objects
    stable = {k: r.stable.version for k, r in (rendered.rollouts or {}).items()}
    routed = rendered_traffic(objects, stable)
    mirrors = rendered_mirrors(objects)
    for key in keys:
        decision = ctx.decisions[key]
        record = lock.models.get(key)
        print(f"{key} ({decision.mode})")
        if record is None:
            print("  not deployed yet")
        else:
            print(f"  {state.describe(record)}")
        if decision.kind not in SETTLED:
            print(f"  pending: {DECISION_TEXT[decision.kind]}; run `modelplane rollout apply {ctx.file}`")
        if key in routed:
            split = ", ".join(f"{v} {p}%" for v, p in routed[key].items())
            mirror = f"; {mirrors[key]}% mirrored to the candidate" if key in mirrors else ""
            print(f"  rendered traffic: {split}{mirror}")
        if record is None or record.rollout is None or decision.kind not in SETTLED:
            continue
        policy = ctx.desired[key].policy
        if record.rollout.state != "rolled-back":
            ready = state.readiness(record, key, policy, now=ctx.now)
            print(f"  next: {'ready to advance' if ready.ready else ready.reason}")
            for gate in _compiled(ctx, key, record):
                query = gate.query if gate.query is not None else f"unmeasurable: {gate.unmeasurable}"
                print(f"  gate {gate.name} [{gate.threshold}]: {query}")
        for event in record.history[-3:]:
            detail = f" ({event.detail})" if event.detail else ""
            print(f"  {event.at} {event.event} {event.version} at {event.traffic_percent}%{detail}")
    return 0


def _compiled(ctx: _Context, key: str, record: ModelRecord) -> list[Any]:
    from modelplane.rollout.gates import Target, compile_gates

    assert record.rollout is not None
    wanted = ctx.desired[key]
    policy = wanted.policy
    target = Target(
        mode=record.mode,
        runtime=wanted.model.runtime,
        namespace=wanted.namespace,
        model=wanted.model.name,
        version=record.rollout.candidate.version,
        name=record.rollout.candidate.name,
        window=policy.step_interval,
    )
    return compile_gates(policy.gates, target)


# --- advance -----------------------------------------------------------------------------


def _probe_candidate(ctx: _Context, key: str, record: ModelRecord, gate: Any) -> Any:
    """The V2 probe of a rollout's candidate (``policy.probe``), with its sample request."""
    from modelplane.kube import side_name
    from modelplane.probe import probe

    assert record.rollout is not None
    wanted = ctx.desired[key]
    model, namespace = wanted.model, wanted.namespace
    candidate = record.rollout.candidate
    url = gate.url_for(model=model.name, namespace=namespace, name=candidate.name, version=candidate.version)
    # The served model name is the InferenceService's (`--model_name={{.Name}}`); a ModelMesh
    # candidate is its own side InferenceService.
    served = side_name(model.name, candidate.name) if record.mode == "modelmesh" else model.name
    return probe(url, served, sample=model.sample_request, timeout=gate.timeout)


def cmd_advance(ns: argparse.Namespace) -> int:
    """Take the next step of rollouts whose time at their step is up and whose gates pass."""
    from modelplane.rollout.prometheus import evaluate

    ctx = _Context(ns)
    lock = ctx.current
    explicit = ns.model is not None
    keys = ctx.resolve(ns.model)
    models = dict(lock.models)
    held = False
    acted = 0
    for key in keys:
        record = models.get(key)
        if not explicit and (
            record is None
            or record.rollout is None
            or record.rollout.state != "progressing"
            or record.rollout.phase == "ab"
        ):
            continue
        record = ctx.settled(key)
        policy = ctx.desired[key].policy
        ready = state.readiness(record, key, policy, now=ctx.now)
        if not ready.ready and not ns.force:
            if explicit and record.rollout is not None and record.rollout.state != "progressing":
                raise RolloutError(f"{key}: {ready.reason}")
            if explicit and record.rollout is not None and record.rollout.phase == "ab":
                raise RolloutError(f"{key}: {ready.reason}")
            print(f"{key}: waiting: {ready.reason}")
            continue
        failed: list[str] = []
        notes: list[str] = []
        if policy.probe is not None:
            report = _probe_candidate(ctx, key, record, policy.probe)
            for check in report.checks:
                print(f"{key}: probe {check.name}: {check.status} ({check.detail})")
            notes.append(f"probe {report.url}: {report.summary()}")
            failed += [] if report.healthy else ["probe"]
        detail = "gates not evaluated: no --prometheus"
        if ns.prometheus:
            at = state.parse_time(ctx.now).timestamp()
            results = evaluate(_compiled(ctx, key, record), ns.prometheus, at=at)
            for result in results:
                print(f"{key}: gate {result.line()}")
            failed += [r.gate.name for r in results if not r.passed]
            detail = "; ".join(r.line() for r in results) or "no gates"
        detail = "; ".join([*notes, detail])
        if failed:
            if policy.dry_run:
                detail = f"dry run, gates not enforced: {detail}"
            else:
                held = True
                names = ", ".join(failed)
                if ns.rollback_on_failure:
                    models[key] = state.rollback(record, key, now=ctx.now, detail=f"gates failed: {detail}")
                    print(f"{key}: rolled back: gates failed ({names})")
                else:
                    models[key] = state.hold(record, key, now=ctx.now, detail=f"gates failed: {detail}")
                    print(f"{key}: held: gates failed ({names})")
                acted += 1
                continue
        if ns.force and not ready.ready and not ns.prometheus:
            detail = f"forced ({ready.reason}); {detail}"
        models[key] = state.advance(record, key, now=ctx.now, detail=detail)
        print(f"{key}: {state.describe(models[key])}")
        acted += 1
    if acted:
        ctx.save(lock.model_copy(update={"models": models}))
    elif not explicit:
        print(f"{ctx.file}: no rollout in progress")
    return EXIT_GATES_FAILED if held else 0


# --- promote / rollback / pause / resume -------------------------------------------------


def _operator(command: str) -> Any:
    def run(ns: argparse.Namespace) -> int:
        ctx = _Context(ns)
        lock = ctx.current
        explicit = ns.model is not None
        models = dict(lock.models)
        acted = 0
        for key in ctx.resolve(ns.model):
            record = models.get(key)
            if not explicit and (
                record is None or record.rollout is None or record.rollout.state == "rolled-back"
            ):
                continue
            record = ctx.settled(key)
            if command == "promote":
                models[key] = state.promote(record, key, now=ctx.now, detail=ns.reason or "")
            elif command == "rollback":
                models[key] = state.rollback(record, key, now=ctx.now, detail=ns.reason or "")
            elif command == "pause":
                if not explicit and record.rollout is not None and record.rollout.state == "paused":
                    continue
                models[key] = state.pause(record, key, now=ctx.now)
            else:
                if not explicit and record.rollout is not None and record.rollout.state != "paused":
                    continue
                models[key] = state.resume(record, key, now=ctx.now)
            print(f"{key}: {state.describe(models[key])}")
            acted += 1
        if not acted:
            print(f"{ctx.file}: no rollout to {command}")
            return 0
        ctx.save(lock.model_copy(update={"models": models}))
        return 0

    run.__doc__ = {
        "promote": "Make the candidate the stable version now, skipping the remaining steps.",
        "rollback": "Send all traffic back to the stable version and hold the candidate off.",
        "pause": "Freeze a rollout at its current traffic split.",
        "resume": "Continue a paused rollout.",
    }[command]
    return run


# --- parser ------------------------------------------------------------------------------


def add_rollout_parser(sub: Any) -> None:
    """Add ``modelplane rollout ...`` to the top-level subcommands."""
    parser = sub.add_parser(
        "rollout", help="canary rollouts recorded in the stack's lock", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="rollout_command", required=True, parser_class=type(parser))

    def common(p: argparse.ArgumentParser, *, model: bool = True, now: bool = True) -> None:
        p.add_argument("file", metavar="FILE", help="stack file")
        if model:
            p.add_argument(
                "model", metavar="MODEL", nargs="?", help="model name or namespace/name (default: all)"
            )
        p.add_argument(
            "--lock", metavar="PATH", help="lock file (default: <FILE stem>.lock.yaml beside FILE)"
        )
        if now:
            p.add_argument(
                "--now", metavar="TIME", help="the time of the event, YYYY-MM-DDTHH:MM:SSZ (default: now)"
            )

    def attach(p: argparse.ArgumentParser, func: Any) -> None:
        p.set_defaults(func=func)

    p = commands.add_parser("status", help="where each model stands", description=cmd_status.__doc__)
    common(p)
    attach(p, cmd_status)

    p = commands.add_parser("apply", help="record what the stack decides", description=cmd_apply.__doc__)
    common(p, model=False)
    p.add_argument("--dry-run", action="store_true", help="print the decisions, do not write the lock")
    attach(p, cmd_apply)

    p = commands.add_parser(
        "advance", help="take the next step where gates pass", description=cmd_advance.__doc__
    )
    common(p)
    p.add_argument("--prometheus", metavar="URL", help="evaluate the gates on this Prometheus (its HTTP API)")
    p.add_argument("--force", action="store_true", help="do not wait for the step interval to pass")
    p.add_argument(
        "--rollback-on-failure", action="store_true", help="roll back (instead of holding) when a gate fails"
    )
    attach(p, cmd_advance)

    for command in ("promote", "rollback", "pause", "resume"):
        func = _operator(command)
        p = commands.add_parser(command, help=func.__doc__.rstrip(".").lower(), description=func.__doc__)
        common(p)
        if command in ("promote", "rollback"):
            p.add_argument("--reason", help="why, recorded in the lock's history")
        attach(p, func)

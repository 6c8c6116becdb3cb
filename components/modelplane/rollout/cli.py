"""modelplane rollout status|apply|advance|promote|rollback|pause|resume|reconcile FILE [MODEL].

``apply`` records in the lock what the stack decides (new models deployed directly, rollouts
started, restarted or cancelled, removed models dropped); it is what CI runs once a change to a
stack is merged. The other commands move rollouts that ``apply`` recorded, and refuse to act on
a model whose stack entry changed since (run ``apply`` first), so the lock never gets ahead of
or behind the stack by accident. ``status`` only reads. ``reconcile`` is the GitOps loop in one
command (``modelplane.gitops``). ``promote``, ``rollback``, ``pause`` and ``resume`` act on the
model named, or on every model in flight only with ``--all``.

A command that writes the lock says which paths to commit together: the lock, and the rendered
``deploy/<stack>/`` once refreshed (``--render`` refreshes it in the same run).

Exit codes: 0 done (or waiting for a step's time to pass); 2 input errors (bad stack, corrupt
lock, a command the rollout's state refuses, gates due with no Prometheus); 3 a gate or probe
failed, so a rollout was held or rolled back; 4 Prometheus could not be asked (unreachable,
failing or not Prometheus), so nothing was judged.
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelplane.errors import RolloutError

EXIT_GATES_FAILED = 3
EXIT_INCONCLUSIVE = 4


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Run a batch command without Python's cyclic garbage collector.

    Stacks, locks and rendered objects are large, long-lived and free of reference cycles; at
    20,000 models the collector rescanning them cost more than the work itself. Reference
    counting still frees everything.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _json(ns: argparse.Namespace) -> bool:
    return getattr(ns, "output", "text") == "json"


def holding_the_lock(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command that reads, changes and writes a lock under the lock's advisory lock.

    Two commands on one lock (a scheduled ``advance`` and an operator's ``rollback``) would
    otherwise both read the same lock and the second write would drop the first one's update;
    the second now waits for the first and reads what it wrote (``modelplane.rollout.lockfile``).
    """

    @functools.wraps(command)
    def run(ns: argparse.Namespace) -> int:
        from modelplane.rollout.lock import exclusive, lock_path

        with exclusive(Path(ns.lock) if ns.lock else lock_path(ns.file)):
            return command(ns)

    return run


def _finish(
    ns: argparse.Namespace, session: Any, lock: Any, report: dict[str, Any], lines: list[str]
) -> None:
    """Write the lock when it changed, refresh the render with ``--render``, say what to commit."""
    from modelplane import gitops
    from modelplane.image_lock import load_image_lock

    dry_run = getattr(ns, "dry_run", False)
    if dry_run and session.changed(lock):
        session.refuse_unrenderable(lock)
    written = False if dry_run else session.save(lock)
    report["lockWritten"] = written
    asked = getattr(ns, "render", None)
    out_dir = Path(asked) if asked else gitops.default_out_dir(session.stack)
    refreshed = None
    if asked is not None and not dry_run:
        images = load_image_lock(session.file, stack=session.stack)
        refreshed = gitops.render_into(session.args, lock, out_dir, engine=ns.gitops, images=images)
        report["render"] = gitops.render_json(out_dir, refreshed)
        if refreshed.changed:
            lines.append(f"{out_dir}/: rendered ({len(refreshed.changed)} files changed)")
    if written or (refreshed is not None and refreshed.changed):
        paths = [str(session.path)]
        if refreshed is not None or out_dir.is_dir():
            paths.append(f"{out_dir}/")
        report["commitPaths"] = paths
        lines.append(f"commit together: {' '.join(paths)}")
        if refreshed is None and out_dir.is_dir():
            images = load_image_lock(session.file, stack=session.stack)
            stale = gitops.stale(session.args, lock, out_dir, engine=ns.gitops, images=images)
            if stale:
                lines.append(
                    f"{out_dir}/ no longer matches the lock ({len(stale)} files): refresh it with "
                    f"`modelplane render {session.file}` (or pass --render) before committing"
                )
    if _json(ns):
        from modelplane.console import write_json

        write_json(report)
    else:
        for line in lines:
            print(line)


# --- apply -------------------------------------------------------------------------------


@holding_the_lock
def cmd_apply(ns: argparse.Namespace) -> int:
    """Record in the lock what the stack decides for every model."""
    from modelplane.rollout.session import Session

    session = Session.from_args(ns)
    new = session.applied()
    report = session.report("apply")
    lines = []
    for entry, text in session.decisions_report(new):
        report["decisions"].append(entry)
        lines.append(f"  {text}")
    if not session.changed(new):
        lines.append(f"{session.path}: up to date ({len(new.models)} models)")
    else:
        verb = "would write" if ns.dry_run else "wrote"
        lines.append(f"{session.path}: {verb} ({len(new.models)} models, {len(report['decisions'])} changed)")
    _finish(ns, session, new, report, lines)
    return 0


# --- status ------------------------------------------------------------------------------


def cmd_status(ns: argparse.Namespace) -> int:
    """Where each model stands: stable version, rollout, traffic as rendered, next step, gates, analysis."""
    from modelplane.console import is_terminal, progress, write_json
    from modelplane.rollout.report import status_data, status_text, watch
    from modelplane.rollout.session import Session

    if ns.watch and ns.now:
        raise RolloutError("--watch follows the rollout as it moves: it takes the current time, not --now")

    def load() -> dict[str, Any]:
        session = Session.from_args(ns)
        return status_data(session, session.resolve(ns.model))

    if ns.watch:
        return watch(load, interval=ns.interval, json_lines=_json(ns))
    with progress(f"reading {ns.file} and its lock") as step:
        data = load()
        step.update(f"writing the status of {len(data['models']):,} models")
        if _json(ns):
            write_json(data)
        else:
            # The bar is for people at a terminal; piped output stays plain lines.
            sys.stdout.write(status_text(data, bar=is_terminal(sys.stdout)))
    return 0


# --- advance -----------------------------------------------------------------------------


def _outcome_line(outcome: Any) -> list[str]:
    from modelplane.rollout import state

    key = outcome.key
    lines = []
    if outcome.probe is not None:
        lines += [f"{key}: probe {c.name}: {c.status} ({c.detail})" for c in outcome.probe.checks]
    lines += [f"{key}: gate {r.line()}" for r in outcome.gates]
    if outcome.skipped:
        lines.append(f"{key}: gates skipped (--skip-gates): {', '.join(outcome.skipped)}")
    if outcome.action == "waiting":
        lines.append(f"{key}: waiting: {outcome.detail}")
    elif outcome.action in ("held", "rolled-back"):
        failed = [r.gate.name for r in outcome.gates if not r.passed]
        if outcome.probe is not None and not outcome.probe.healthy:
            failed.insert(0, "probe")
        verb = "held" if outcome.action == "held" else "rolled back"
        lines.append(f"{key}: {verb}: gates failed ({', '.join(failed)})")
        if outcome.action == "rolled-back":
            lines.append(f"{key}: {state.describe(outcome.record)}")
    elif outcome.action == "inconclusive":
        lines.append(f"{key}: not judged: {outcome.detail}")
    else:
        lines.append(f"{key}: {state.describe(outcome.record)}")
    return lines


def advance_options(ns: argparse.Namespace, session: Any) -> Any:
    """The ``AdvanceOptions`` of a command line: ``--prometheus`` or the stack's, ``--skip-gates``, ..."""
    from modelplane.rollout.session import AdvanceOptions, checked_prometheus

    url = checked_prometheus(ns.prometheus)
    if ns.skip_gates and url is not None:
        raise RolloutError("--skip-gates and --prometheus: choose one (skip the gates, or ask Prometheus)")
    if url is None and not ns.skip_gates:
        url = session.args.rollout.prometheus
    return AdvanceOptions(
        prometheus=url,
        skip_gates=ns.skip_gates,
        force=getattr(ns, "force", False),
        rollback_on_failure=getattr(ns, "rollback_on_failure", False),
    )


def exit_code(result: Any) -> int:
    """An ``advance`` run's exit code: 4 when Prometheus could not be asked, else 3 on a failed gate."""
    if result.inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_GATES_FAILED if result.failed else 0


@holding_the_lock
def cmd_advance(ns: argparse.Namespace) -> int:
    """Take the next step of rollouts whose time at their step is up and whose probe and gates pass."""
    from modelplane.rollout.session import Session, advance, outcome_json

    session = Session.from_args(ns)
    result = advance(session, ns.model, advance_options(ns, session))
    report = session.report("advance")
    report["models"] = [outcome_json(o) for o in result.outcomes]
    lines = [line for outcome in result.outcomes for line in _outcome_line(outcome)]
    if not result.outcomes and ns.model is None:
        lines.append(f"{session.file}: no rollout in progress")
    _finish(ns, session, result.lock, report, lines)
    return exit_code(result)


# --- promote / rollback / pause / resume -------------------------------------------------

OPERATOR_DOCS = {
    "promote": "Make the candidate the stable version now, skipping the remaining steps.",
    "rollback": "Send all traffic back to the stable version and hold the candidate off.",
    "pause": "Freeze a rollout at its current traffic split.",
    "resume": "Continue a paused rollout.",
}
OPERATOR_ACTIONS = {"promote": "promoted", "rollback": "rolled-back", "pause": "paused", "resume": "resumed"}


def _operator(command: str) -> Any:
    @holding_the_lock
    def run(ns: argparse.Namespace) -> int:
        from modelplane.rollout import state
        from modelplane.rollout.session import Outcome, Session, outcome_json

        if ns.model is None and not ns.all:
            raise RolloutError(
                f"name the MODEL to {command}, or pass --all to {command} every model with a rollout"
            )
        if ns.model is not None and ns.all:
            raise RolloutError("MODEL and --all: give one (--all means every model with a rollout)")
        session = Session.from_args(ns)
        lock = session.current
        explicit = ns.model is not None
        models = dict(lock.models)
        outcomes = []
        for key in session.resolve(ns.model):
            record = models.get(key)
            if not explicit and (
                record is None or record.rollout is None or record.rollout.state == "rolled-back"
            ):
                continue
            record = session.settled(key)
            if command == "promote":
                models[key] = state.promote(record, key, now=session.now, detail=ns.reason or "")
            elif command == "rollback":
                models[key] = state.rollback(record, key, now=session.now, detail=ns.reason or "")
            elif command == "pause":
                if not explicit and record.rollout is not None and record.rollout.state == "paused":
                    continue
                models[key] = state.pause(record, key, now=session.now)
            else:
                if not explicit and record.rollout is not None and record.rollout.state != "paused":
                    continue
                models[key] = state.resume(record, key, now=session.now)
            outcomes.append(Outcome(key, OPERATOR_ACTIONS[command], models[key]))  # type: ignore[arg-type]
        report = session.report(command)
        report["models"] = [outcome_json(o) for o in outcomes]
        lines = [f"{o.key}: {state.describe(o.record)}" for o in outcomes]
        if not outcomes:
            lines.append(f"{session.file}: no rollout to {command}")
        _finish(ns, session, lock.model_copy(update={"models": models}), report, lines)
        return 0

    run.__doc__ = OPERATOR_DOCS[command]
    return run


# --- reconcile ---------------------------------------------------------------------------


def cmd_reconcile(ns: argparse.Namespace) -> int:
    """Apply, advance (with --advance), render, and commit lock and render together (with --commit).

    Several stack files (or a directory of them) are reconciled one after another, each in its
    own commit. The exit code is the most serious of all: 2 for input errors, then 4 (Prometheus
    could not be asked), then 3 (a gate failed).
    """
    from modelplane import gitops
    from modelplane.console import write_json
    from modelplane.errors import PlatformError, StackError

    if ns.push and not ns.commit:
        raise RolloutError("--push needs --commit (there is nothing to push otherwise)")
    if not ns.advance and (ns.prometheus or ns.skip_gates or ns.rollback_on_failure):
        raise RolloutError("--prometheus, --skip-gates and --rollback-on-failure judge steps: add --advance")
    files = gitops.stack_files(ns.files)
    if not files:
        raise RolloutError(f"no stack files in {', '.join(ns.files)}")
    if len(files) > 1 and (ns.lock or ns.render_dir):
        raise RolloutError("--lock and --render-dir name one stack's files: give one stack file")
    url = gitops.notify_url(ns.notify)

    def options(session: Any) -> Any:
        return advance_options(ns, session)

    codes = []
    reports = []
    for file in files:
        try:
            result = gitops.reconcile(
                file,
                lock_file=ns.lock,
                now=ns.now,
                out_dir=Path(ns.render_dir) if ns.render_dir else None,
                engine=ns.gitops,
                options=options if ns.advance else None,
                commit=ns.commit,
                push=ns.push,
            )
        except StackError as err:
            if len(files) == 1:
                raise
            print("\n".join(err.problems), file=sys.stderr)
            codes.append(2)
            continue
        except PlatformError as err:
            if len(files) == 1:
                raise
            print("\n".join(f"modelplane: {line}" for line in str(err).splitlines()), file=sys.stderr)
            codes.append(2)
            continue
        reports.append(result.report)
        if not _json(ns):
            for line in result.lines:
                print(line if len(files) == 1 else f"{file}: {line}")
        gitops.notify_if_asked(url, result)
        codes.append(result.exit_code)
    if _json(ns):
        write_json({"schemaVersion": 1, "command": "reconcile", "stacks": reports})
    for code in (2, EXIT_INCONCLUSIVE, EXIT_GATES_FAILED):
        if code in codes:
            return code
    return 0


# --- parser ------------------------------------------------------------------------------


def add_rollout_parser(sub: Any) -> None:
    """Add ``modelplane rollout ...`` to the top-level subcommands."""
    parser = sub.add_parser(
        "rollout",
        help="canary rollouts recorded in the stack's lock",
        description="Canary rollouts recorded in the stack's lock: "
        "status, apply, advance, promote, rollback, pause, resume, reconcile.",
    )
    commands = parser.add_subparsers(
        dest="rollout_command", required=True, parser_class=type(parser), metavar="COMMAND"
    )

    def common(p: argparse.ArgumentParser, *, model: str | None = "all", now: bool = True) -> None:
        p.add_argument("file", metavar="FILE", help="stack file")
        if model is not None:
            p.add_argument(
                "model", metavar="MODEL", nargs="?", help=f"model name or namespace/name ({model})"
            )
        p.add_argument(
            "--lock", metavar="PATH", help="lock file (default: <FILE stem>.lock.yaml beside FILE)"
        )
        if now:
            p.add_argument(
                "--now", metavar="TIME", help="the time of the event, YYYY-MM-DDTHH:MM:SSZ (default: now)"
            )
        p.add_argument(
            "--output", choices=("text", "json"), default="text", help="report format (default text)"
        )

    def render_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--render",
            metavar="DIR",
            nargs="?",
            const="",
            default=None,
            help="refresh the GitOps render after writing the lock (default DIR: deploy/<stack>)",
        )
        p.add_argument(
            "--gitops",
            choices=("flux", "argocd"),
            default=None,
            help="GitOps engine of the render (default: the existing render's, else flux)",
        )

    def gate_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--prometheus",
            metavar="URL",
            help="ask the gates on this Prometheus (default: the stack's rollout.prometheus)",
        )
        p.add_argument(
            "--skip-gates",
            action="store_true",
            help="advance without asking the gates; recorded in the lock's history",
        )
        p.add_argument(
            "--rollback-on-failure",
            action="store_true",
            help="roll back at the first failed evaluation (a failureLimit of 1 for this run)",
        )

    p = commands.add_parser("status", help="where each model stands", description=cmd_status.__doc__)
    common(p, model="default: all")
    p.add_argument("--watch", action="store_true", help="follow the rollout until it ends (Ctrl-C stops)")
    p.add_argument(
        "--interval",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="seconds between refreshes with --watch (default 5)",
    )
    p.set_defaults(func=cmd_status)

    p = commands.add_parser("apply", help="record what the stack decides", description=cmd_apply.__doc__)
    common(p, model=None)
    p.add_argument("--dry-run", action="store_true", help="print the decisions, do not write the lock")
    render_options(p)
    p.set_defaults(func=cmd_apply)

    p = commands.add_parser(
        "advance", help="take the next step where gates pass", description=cmd_advance.__doc__
    )
    common(p, model="default: every rollout in progress")
    gate_options(p)
    p.add_argument("--force", action="store_true", help="do not wait for the step interval to pass")
    render_options(p)
    p.set_defaults(func=cmd_advance)

    for command in ("promote", "rollback", "pause", "resume"):
        func = _operator(command)
        doc = OPERATOR_DOCS[command]
        p = commands.add_parser(command, help=doc.rstrip(".").lower(), description=doc)
        common(p, model="or --all")
        p.add_argument("--all", action="store_true", help=f"{command} every model with a rollout")
        if command in ("promote", "rollback"):
            p.add_argument("--reason", help="why, recorded in the lock's history")
        render_options(p)
        p.set_defaults(func=func)

    p = commands.add_parser(
        "reconcile",
        help="the GitOps loop: apply, advance, render, commit",
        description=cmd_reconcile.__doc__,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="stack files, or directories of them")
    p.add_argument("--lock", metavar="PATH", help="lock file (default: <FILE stem>.lock.yaml beside FILE)")
    p.add_argument(
        "--now", metavar="TIME", help="the time of the events, YYYY-MM-DDTHH:MM:SSZ (default: now)"
    )
    p.add_argument("--output", choices=("text", "json"), default="text", help="report format (default text)")
    p.add_argument("--advance", action="store_true", help="also take the steps that are due (gates judged)")
    gate_options(p)
    p.add_argument(
        "--render-dir", metavar="DIR", help="where the GitOps render lives (default deploy/<stack>)"
    )
    p.add_argument(
        "--gitops",
        choices=("flux", "argocd"),
        default=None,
        help="GitOps engine of the render (default: the existing render's, else flux)",
    )
    p.add_argument(
        "--commit", action="store_true", help="commit the lock and the render together when changed"
    )
    p.add_argument(
        "--push",
        metavar="REMOTE",
        help="push the commit to REMOTE; if another run pushed first, start again from its commit",
    )
    p.add_argument(
        "--notify",
        metavar="URL",
        help="POST a JSON summary to this webhook when something happened (default: $MODELPLANE_NOTIFY_URL)",
    )
    p.set_defaults(func=cmd_reconcile)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 3600 seconds (got {text})")
    return value

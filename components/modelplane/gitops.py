"""The GitOps loop in one command: record, step, render, and commit the lock with its render.

``modelplane rollout reconcile FILE`` is what CI runs after a merge and on a schedule. It

1. records in the lock what the stack decides (``rollout apply``),
2. with ``--advance``, takes the steps that are due once their probe and gates pass
   (``rollout advance``; gates are never skipped silently),
3. renders ``deploy/<stack>/`` under the new lock (``render``), and
4. with ``--commit``, commits the lock and the render together in one commit when either
   changed, so every commit of the repository is a state where ``render --check`` passes and
   what Flux or Argo CD applies is exactly what the lock says; ``--push REMOTE`` pushes it.

Every run is complete and idempotent, like a controller's reconcile: a run that finds nothing
to do commits nothing, and runs can be repeated or retried at will. Runs that overlap never
both commit one step: see ``modelplane.git``.

The same steps are the jobs of ``.github/workflows/gitops.yml``; other CI systems run the
command as it is. ``--notify URL`` posts a JSON summary of what happened to a webhook (Slack
and Teams incoming webhooks read its ``text``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelplane import console
from modelplane.build import PlatformObjects, build
from modelplane.errors import PlatformError
from modelplane.git import GitError, Repo, find_repo
from modelplane.image_lock import ImageLock, image_lock_path
from modelplane.render import GitOpsEngine, StaleKind, detect_engine, gitops_tree, stale_files, write_tree
from modelplane.rollout import state
from modelplane.rollout.lock import Lock, exclusive, lock_path
from modelplane.rollout.session import AdvanceOptions, AdvanceResult, Session, advance, outcome_json
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import stack_sources

PUSH_ATTEMPTS = 5
"""Times a run starts again from the remote's tip when another run pushed first."""

NOTIFY_ENV = "MODELPLANE_NOTIFY_URL"
NOTIFY_TIMEOUT = 10.0

EXIT_GATES_FAILED = 3
EXIT_INCONCLUSIVE = 4


def stack_files(paths: list[str]) -> list[str]:
    """Stack files named on a command line: a directory stands for the stack files directly in it.

    Locks (``*.lock.yaml``) and Pulumi's own stack settings (``Pulumi.*.yaml``) are not stack
    files; neither are files in subdirectories, where shared fragments that stacks include live.
    """
    result: list[str] = []
    for path in paths:
        directory = Path(path)
        if not directory.is_dir():
            result.append(path)
            continue
        result.extend(str(file) for file in sorted(directory.glob("*.yaml")) if _is_stack_name(file.name))
    return result


@dataclass(frozen=True)
class ChangedStack:
    """A stack file whose preview a change affects, and the changed files that make it so."""

    file: str
    because: tuple[str, ...]
    deleted: bool


def _is_stack_name(name: str) -> bool:
    return name.endswith(".yaml") and not name.endswith(".lock.yaml") and not name.startswith("Pulumi.")


def changed_stacks(paths: list[str], base: str) -> list[ChangedStack]:
    """The stack files among ``paths`` that the change from ``base`` to the working tree touches.

    A stack is touched when its own file, its lock, its image lock, its Pulumi settings
    (``Pulumi.<stack>.yaml``) or any file it includes changed, or when it was deleted. The change is counted from where the
    working tree's branch left ``base`` (their merge base, as a pull request's diff is), and
    includes uncommitted and untracked files. A stack that no longer loads counts as touched
    through its own file only; its preview reports why it does not load.

    Raises:
        GitError: not in a Git repository, or ``base`` is not a revision.
    """
    repo = find_repo(Path(paths[0]))
    if repo is None:
        raise GitError(f"{paths[0]}: not in a Git repository")
    if repo.git("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False).returncode != 0:
        raise GitError(f"--base {base!r} is not a Git revision")
    fork = repo.git("merge-base", base, "HEAD").stdout.strip()
    diff = repo.git("diff", "--name-only", "--no-renames", "-z", fork, "--").stdout.split("\0")
    untracked = repo.git("ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0")
    changed = {name for name in (*diff, *untracked) if name}
    result: list[ChangedStack] = []
    for file in stack_files(paths):
        path = Path(file)
        if not path.exists():
            if repo.relative(path) in changed:
                result.append(ChangedStack(file, (repo.relative(path),), deleted=True))
            continue
        try:
            sources = stack_sources(path)
        except PlatformError:
            sources = [path]
        settings = path.with_name(f"Pulumi.{path.stem}.yaml")
        touched = [*sources, lock_path(path), image_lock_path(path), settings]
        because = sorted({repo.relative(p) for p in touched} & changed)
        if because:
            result.append(ChangedStack(file, tuple(because), deleted=False))
    seen = {Path(c.file).resolve() for c in result}
    for directory in (Path(p) for p in paths if Path(p).is_dir()):
        listed = repo.git("ls-tree", "-z", "--name-only", fork, "--", repo.relative(directory) + "/")
        for name in sorted(n for n in listed.stdout.split("\0") if n):
            path = repo.root / name
            if _is_stack_name(path.name) and not path.exists() and path.resolve() not in seen:
                result.append(ChangedStack(str(directory / path.name), (name,), deleted=True))
    return sorted(result, key=lambda c: c.file)


def default_out_dir(stack: str) -> Path:
    """Where a stack's render lives by default: ``deploy/<stack>`` under the working directory."""
    return Path("deploy") / stack


def repository_path(out_dir: Path, stack: str) -> str:
    """The render directory as Flux finds it: relative to the Git repository's top (or the working directory).

    Flux Kustomizations name their path relative to the repository root, so the paths in
    ``sync.yaml`` follow the directory; a directory outside the repository keeps the default.
    """
    repo = find_repo(out_dir if out_dir.exists() else out_dir.parent)
    top = repo.root if repo is not None else Path.cwd().resolve()
    try:
        relative = out_dir.resolve().relative_to(top)
    except ValueError:
        return f"./deploy/{stack}"
    return f"./{relative.as_posix()}"


def engine_for(out_dir: Path, engine: GitOpsEngine | None) -> GitOpsEngine:
    """The engine asked for, else the one the existing render was written for, else Flux."""
    return engine or detect_engine(out_dir) or "flux"


def tree_files(
    stack: str, rendered: PlatformObjects, out_dir: Path, *, engine: GitOpsEngine | None
) -> dict[str, str]:
    """The files of a stack's rendered objects as written to ``out_dir``."""
    return gitops_tree(
        rendered.objects,
        rendered.charts,
        stack=stack,
        engine=engine_for(out_dir, engine),
        path_prefix=repository_path(out_dir, stack),
    )


def render_files(
    args: ServingPlatformArgs,
    lock: Lock | None,
    out_dir: Path,
    *,
    engine: GitOpsEngine | None,
    images: ImageLock | None = None,
) -> dict[str, str]:
    """The files a render of the stack under ``lock`` (and its image lock) writes to ``out_dir``."""
    with console.progress(f"rendering {args.stack.name}"):
        return tree_files(args.stack.name, build(args, lock=lock, images=images), out_dir, engine=engine)


@dataclass(frozen=True)
class Rendered:
    """A render written to a directory: its files and those that changed."""

    files: dict[str, str]
    changed: list[tuple[str, StaleKind]]


def stale(
    args: ServingPlatformArgs,
    lock: Lock | None,
    out_dir: Path,
    *,
    engine: GitOpsEngine | None,
    images: ImageLock | None = None,
) -> list[tuple[str, StaleKind]]:
    """Where ``out_dir`` differs from the render of the stack under ``lock`` (``render --check``)."""
    return list(stale_files(render_files(args, lock, out_dir, engine=engine, images=images), out_dir))


def render_into(
    args: ServingPlatformArgs,
    lock: Lock | None,
    out_dir: Path,
    *,
    engine: GitOpsEngine | None,
    images: ImageLock | None = None,
) -> Rendered:
    """Render into ``out_dir`` when it is stale; what changed (nothing is written when nothing did)."""
    files = render_files(args, lock, out_dir, engine=engine, images=images)
    changed = list(stale_files(files, out_dir))
    if changed:
        write_tree(files, out_dir)
    return Rendered(files, changed)


def render_json(out_dir: Path, rendered: Rendered) -> dict[str, Any]:
    """A render as the JSON reports carry it."""
    return {
        "directory": out_dir.as_posix(),
        "files": len(rendered.files),
        "changed": [{"path": path, "kind": kind} for path, kind in rendered.changed],
    }


# --- reconcile ---------------------------------------------------------------------------


@dataclass
class ReconcileResult:
    """What a reconcile run did: its report, its lines for a terminal and its exit code."""

    report: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    exit_code: int = 0
    commit: str | None = None
    events: list[str] = field(default_factory=list)
    """One line per model event worth telling people about (for ``--notify`` and the commit's body)."""
    summaries: list[str] = field(default_factory=list)
    """The same events, short (for the commit's subject)."""


def _commit_message(stack: str, result: ReconcileResult, rendered_only: bool) -> str:
    if rendered_only or not result.events:
        return f"modelplane: {stack}: render refreshed\n"
    subject = "; ".join(result.summaries)
    if len(subject) > 60:
        subject = f"{len(result.summaries)} model events"
    body = "".join(f"- {event}\n" for event in result.events)
    return f"modelplane: {stack}: {subject}\n\n{body}"


def _once(file: str, *, lock_file: str | None, **rest: Any) -> ReconcileResult:
    """One stack's reconcile under its lock's advisory lock, held from reading the lock to writing it."""
    with exclusive(Path(lock_file) if lock_file else lock_path(file)):
        return _once_locked(file, lock_file=lock_file, **rest)


def _once_locked(
    file: str,
    *,
    lock_file: str | None,
    now: str | None,
    out_dir: Path | None,
    engine: GitOpsEngine | None,
    options: Callable[[Session], AdvanceOptions] | None,
    repo: Repo | None,
    sources: list[Path],
) -> ReconcileResult:
    session = Session(file, lock=lock_file, now=now)
    target = out_dir if out_dir is not None else default_out_dir(session.stack)
    if repo is not None:
        _refuse_uncommitted(repo, session, target, sources)
    report = session.report("reconcile")
    result = ReconcileResult(report)
    applied = session.applied()
    for entry, text in session.decisions_report(applied):
        report["decisions"].append(entry)
        result.lines.append(text)
        if entry["decision"] not in ("continue", "held"):
            result.events.append(text)
            result.summaries.append(f"{entry['model']} {entry['decision']} {entry['to'] or ''}".rstrip())
    lock = applied
    if options is not None:
        stepped = session.with_lock(applied)
        outcome: AdvanceResult = _advance(stepped, options(stepped))
        lock = outcome.lock
        for item in outcome.outcomes:
            report["models"].append(outcome_json(item))
            line = f"{item.key}: {item.action}: {state.describe(item.record)}"
            if item.action in ("waiting", "held", "rolled-back", "inconclusive"):
                line = f"{item.key}: {item.action}: {item.detail}"
            result.lines.append(line)
            if item.action != "waiting":
                result.events.append(line)
                result.summaries.append(f"{item.key} {item.action}")
        if outcome.inconclusive:
            result.exit_code = EXIT_INCONCLUSIVE
        elif outcome.failed:
            result.exit_code = EXIT_GATES_FAILED
    report["lockWritten"] = session.save(lock)
    if report["lockWritten"]:
        result.lines.append(f"{session.path}: written ({len(lock.models)} models)")
    rendered = render_into(session.args, lock, target, engine=engine)
    report["render"] = render_json(target, rendered)
    if rendered.changed:
        result.lines.append(f"{target}/: rendered ({len(rendered.changed)} files changed)")
    changed_paths = ([str(session.path)] if report["lockWritten"] else []) + (
        [f"{target}/"] if rendered.changed else []
    )
    report["commitPaths"] = changed_paths
    if repo is not None and changed_paths:
        paths = [repo.relative(session.path), repo.relative(target)]
        message = _commit_message(session.stack, result, not report["lockWritten"])
        sha = repo.commit(paths, message)
        result.commit = sha
        if sha is not None:
            report["commit"] = {
                "sha": sha,
                "message": message,
                "pushed": False,
                "remote": None,
                "attempts": 1,
            }
            result.lines.append(f"committed {sha[:12]}: {message.splitlines()[0]}")
    if repo is not None and result.commit is None:
        result.lines.append("nothing to commit")
    elif repo is None and not changed_paths:
        result.lines.append(f"{session.file}: up to date")
    return result


def _advance(session: Session, options: AdvanceOptions) -> AdvanceResult:
    return advance(session, None, options)


def _refuse_uncommitted(repo: Repo, session: Session, target: Path, sources: list[Path]) -> None:
    """Refuse to commit a lock computed from uncommitted input, or over uncommitted output."""
    inputs = [repo.relative(p) for p in sources]
    dirty_inputs = repo.dirty(inputs)
    if dirty_inputs:
        raise GitError(
            f"{', '.join(dirty_inputs)}: uncommitted changes; commit the stack before reconciling "
            "(the lock must follow what the repository says)"
        )
    outputs = [repo.relative(session.path), repo.relative(target)]
    dirty_outputs = repo.dirty(outputs)
    if dirty_outputs:
        shown = ", ".join(dirty_outputs[:3]) + (", ..." if len(dirty_outputs) > 3 else "")
        raise GitError(f"{shown}: uncommitted changes to what reconcile writes; commit or discard them first")
    ignored = repo.ignored(outputs)
    if ignored:
        raise GitError(f"{', '.join(ignored)}: ignored by .gitignore; un-ignore it to commit it")


def reconcile(
    file: str,
    *,
    lock_file: str | None = None,
    now: str | None = None,
    out_dir: Path | None = None,
    engine: GitOpsEngine | None = None,
    options: Callable[[Session], AdvanceOptions] | None = None,
    commit: bool = False,
    push: str | None = None,
    sources: list[Path] | None = None,
) -> ReconcileResult:
    """One reconcile run (see the module docstring); ``options`` turns on ``--advance``.

    Raises:
        GitError: not in a Git repository, uncommitted input or output, or the push failed.
        PlatformError: the stack or lock is invalid, or a state refuses a step.
    """
    repo = find_repo(Path(file)) if commit else None
    if commit and repo is None:
        raise GitError(f"{file}: not in a Git repository; --commit needs one")
    branch = repo.branch() if repo is not None and push else None
    inputs = sources if sources is not None else (stack_sources(file) if repo is not None else [])
    with repo.exclusive() if repo is not None else nullcontext():
        for attempt in range(1, PUSH_ATTEMPTS + 1):
            result = _once(
                file,
                lock_file=lock_file,
                now=now,
                out_dir=out_dir,
                engine=engine,
                options=options,
                repo=repo,
                sources=inputs,
            )
            if push is None or result.commit is None:
                return result
            assert repo is not None and branch is not None
            commit_report = result.report["commit"]
            commit_report.update({"remote": push, "attempts": attempt})
            refused = repo.push(push, branch)
            if refused is None:
                commit_report["pushed"] = True
                result.lines.append(f"pushed to {push}/{branch}")
                return result
            tip = repo.remote_tip(push, branch)
            parent = repo.git("rev-parse", f"{result.commit}^").stdout.strip()
            if tip == parent:
                raise GitError(f"git push to {push}/{branch} was refused: {refused}")
            repo.catch_up(tip)
            console.note(
                f"{push}/{branch} moved on (another run committed first); "
                f"dropped {result.commit[:12]} and starting again from {tip[:12]}"
            )
    raise GitError(f"{push}/{branch} moved on {PUSH_ATTEMPTS} times while reconciling; run again")


def notify(url: str, result: ReconcileResult) -> None:
    """POST a JSON summary of a run to a webhook; a failure is reported, never fatal."""
    report = result.report
    text = f"modelplane {report['stack']}: " + ("; ".join(result.events) or "no change")
    body = {
        "text": text,
        "stack": report["stack"],
        "exitCode": result.exit_code,
        "events": result.events,
        "commit": report["commit"],
        "report": report,
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body, sort_keys=True).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT) as response:
            response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        console.note(f"modelplane: warning: the notification was not delivered: {reason}")


def notify_url(given: str | None) -> str | None:
    """The webhook to notify: ``--notify``, else ``$MODELPLANE_NOTIFY_URL``; refused unless http(s).

    Raises:
        PlatformError: the URL is not http(s).
    """
    url = given or os.environ.get(NOTIFY_ENV) or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise PlatformError("--notify: the webhook URL must start with http:// or https://")
    return url


def notify_if_asked(url: str | None, result: ReconcileResult) -> None:
    """Notify when a webhook is configured and the run did something or needs a look."""
    if url is not None and (result.events or result.exit_code):
        notify(url, result)

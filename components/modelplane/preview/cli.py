"""``modelplane preview FILE --base GIT_REV|FILE [--format markdown|json] [--fail-on destructive]``.

The base is a file when that path exists, otherwise a Git revision: the stack and its lock are
read with ``git show REV:path`` from the repository that holds FILE, so a preview needs the
repository and nothing else (no cluster, no credentials). A stack that does not exist at the
base revision previews as entirely new.

Exit codes: 0 previewed; 2 input errors (an unreadable stack or lock, an unknown revision);
3 with ``--fail-on destructive`` when the change deletes or recreates something live.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from modelplane.errors import PreviewError
from modelplane.git import GitError, run_git

EXIT_DESTRUCTIVE = 3
GIT_TIMEOUT = 30.0


def _git(cwd: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return run_git(cwd, *argv, timeout=GIT_TIMEOUT)
    except GitError as error:
        raise PreviewError(f"{error}; pass --base FILE instead of a revision") from None


def git_show(file: Path, rev: str, relative: PurePosixPath | None = None) -> tuple[bytes | None, str]:
    """The bytes of ``file`` (or of ``relative`` to the repository root) at revision ``rev``.

    Returns (bytes, source name); the bytes are None when the revision does not have the file.

    Raises:
        PreviewError: not in a Git repository, or ``rev`` is not a revision.
    """
    directory = file.resolve().parent
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise PreviewError(
            f"{file}: --base {rev!r} is neither a file nor usable as a Git revision (not in a Git repository)"
        )
    root = Path(top.stdout.decode().strip())
    check = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if check.returncode != 0:
        raise PreviewError(f"--base {rev!r} is neither an existing file nor a Git revision")
    rel = relative or PurePosixPath(file.resolve().relative_to(root.resolve()).as_posix())
    source = f"{rev}:{rel}"
    shown = _git(root, "show", source)
    if shown.returncode != 0:
        return None, source
    return shown.stdout, source


def _lock_reader(head_lock: Path) -> Any:
    """Reads a lock from its bytes, reusing the head's lock when the bytes are the head lock's.

    A pull request that does not touch the lock (most of them) then has one lock, read once,
    whose records both sides share.
    """
    from modelplane.rollout.lock import lock_from_bytes

    try:
        head_raw: bytes | None = head_lock.read_bytes()
    except OSError:
        head_raw = None
    head: list[Any] = []

    def read(raw: bytes, source: str, *, stack: str) -> Any:
        if raw == head_raw:
            if not head:
                head.append(lock_from_bytes(raw, str(head_lock), stack=stack))
            if head[0].stack == stack:
                return head[0]
        return lock_from_bytes(raw, source, stack=stack)

    return read


def _read_lock_file(path: Path, read: Any, *, stack: str) -> Any:
    """A lock file through ``read`` (None when it does not exist)."""
    from modelplane.rollout.lock import read_lock

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return read_lock(path, stack=stack)  # reports why it cannot be read
    return read(raw, str(path), stack=stack)


def read_base(file: Path, base: str, read_lock_bytes: Any = None) -> Any:
    """The base side of a preview: from a file when ``base`` is one, else from Git."""
    from modelplane.image_lock import image_lock_from_bytes, load_image_lock
    from modelplane.preview.preview import Side
    from modelplane.rollout.lock import lock_from_bytes, lock_path
    from modelplane.stack import load_stack

    read_lock_bytes = read_lock_bytes or lock_from_bytes
    candidate = Path(base)
    if candidate.is_file():
        args = load_stack(candidate)
        lock = _read_lock_file(lock_path(candidate), read_lock_bytes, stack=args.stack.name)
        return Side(args, lock, str(candidate), load_image_lock(candidate, stack=args.stack.name))
    raw, source = git_show(file, base)
    if raw is None:
        return Side(None, None, source)
    rel = PurePosixPath(source.split(":", 1)[1])
    top = file.as_posix()

    def read(path: str) -> tuple[bytes | None, str]:
        # Files the stack includes, at the same revision: their paths relative to the stack file's.
        if path == top:
            return raw, source
        inside = PurePosixPath(
            posixpath.normpath(rel.parent / posixpath.relpath(path, posixpath.dirname(top)))
        )
        return git_show(file, base, inside)

    args = load_stack(file, read=read)
    lock_raw, lock_source = git_show(file, base, rel.with_name(f"{rel.stem}.lock.yaml"))
    lock = read_lock_bytes(lock_raw, lock_source, stack=args.stack.name) if lock_raw is not None else None
    images_raw, images_source = git_show(file, base, rel.with_name(f"{rel.stem}.images.lock.yaml"))
    images = (
        image_lock_from_bytes(images_raw, images_source, stack=args.stack.name)
        if images_raw is not None
        else None
    )
    return Side(args, lock, source, images)


def cmd_preview(ns: argparse.Namespace) -> int:
    """Preview what merging a change to a stack does: rollouts, objects, capacity, warnings."""
    from modelplane import rules
    from modelplane.console import progress
    from modelplane.errors import StackError
    from modelplane.image_lock import load_image_lock
    from modelplane.preview.markdown import to_markdown
    from modelplane.preview.preview import Side, build_preview, is_destructive
    from modelplane.rollout.lock import lock_path
    from modelplane.stack import load_stack
    from modelplane.stack_yaml import problem_line

    # Input errors (stack, lock, base) reach modelplane.cli.main, which reports them (exit 2).
    file = Path(ns.file)
    with progress(f"loading {file}") as step:
        args = load_stack(file)
        read = _lock_reader(lock_path(file))
        head = Side(
            args,
            _read_lock_file(lock_path(file), read, stack=args.stack.name),
            str(file),
            load_image_lock(file, stack=args.stack.name),
        )
        step.update(f"loading the base {ns.base}")
        base = read_base(file, ns.base, read)
        if base.args is not None:
            refused = rules.stack_removals(base.args, args)
            if refused:
                raise StackError([problem_line(str(file), p.path, p.message) for p in refused])
        step.update(f"rendering and comparing {len(args.models):,} models")
        preview = build_preview(head, base)
        step.update(f"writing the preview ({len(preview['objects']):,} objects changed)")
        if ns.format == "json":
            sys.stdout.write(json.dumps(preview, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(to_markdown(preview))
    if ns.fail_on == "destructive" and is_destructive(preview):
        print(
            f"{ns.file}: destructive changes ({preview['summary']['destructive']}); failing as asked",
            file=sys.stderr,
        )
        return EXIT_DESTRUCTIVE
    return 0


def add_preview_parser(sub: Any) -> None:
    """Add ``modelplane preview`` to the top-level subcommands."""
    p = sub.add_parser(
        "preview",
        help="preview a change to a stack (for pull requests)",
        description="Preview what merging a change to a stack does: model rollouts with their gates, "
        "capacity, the object diff. The base is a file, or a Git revision of the repository that holds "
        "FILE; no cluster is needed.",
    )
    p.add_argument("file", metavar="FILE", help="stack file (the head of the change)")
    p.add_argument(
        "--base",
        metavar="GIT_REV|FILE",
        required=True,
        help="the stack before the change: a file, or a Git revision",
    )
    p.add_argument(
        "--output",
        "--format",
        dest="format",
        choices=("markdown", "json"),
        default="markdown",
        help="report format (default markdown)",
    )
    p.add_argument("--fail-on", choices=("destructive",), help="exit 3 when the change is destructive")
    p.set_defaults(func=cmd_preview)

"""The Git operations of the GitOps loop: find the repository, commit exact paths, push safely.

``modelplane rollout reconcile --commit --push REMOTE`` runs in CI, where several runs can start
at once (a merge and a scheduled advance). Two guards keep them from both committing the same
step: runs in one clone are serialised by an exclusive lock file in the Git directory, and a
push is never forced, so a run whose parent commit is no longer the remote's tip is rejected by
Git itself; it then moves to the remote's tip and works the state out again from there (where
the step it meant to take has usually been taken already).

Only the paths modelplane writes are staged and committed (``git commit --only``), so nothing
else in the working tree is swept into a commit, and a path with uncommitted changes of its own
is refused before anything is written.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelplane.errors import PlatformError

GIT_TIMEOUT = 120.0
"""Seconds any one Git command may take (a push or fetch over a slow network included)."""

LOCK_WAIT = 600.0
"""Seconds a run waits for another run in the same clone to finish."""


class GitError(PlatformError):
    """A Git command failed, or the repository is not in a state the command can work in."""


def run_git(cwd: Path, *argv: str, timeout: float = GIT_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """Run ``git`` in ``cwd`` (no prompt, C locale) and return its bytes, whatever its exit code.

    Raises:
        GitError: git is not installed, or it took longer than ``timeout`` seconds.
    """
    try:
        return subprocess.run(
            ["git", *argv],
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {argv[0]} took longer than {timeout:.0f}s") from None


@dataclass(frozen=True)
class Repo:
    """A Git working tree, by its top directory."""

    root: Path

    def git(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``git`` in the repository; raise ``GitError`` with its message when it fails and ``check``."""
        raw = run_git(self.root, *argv)
        done = subprocess.CompletedProcess(
            raw.args,
            raw.returncode,
            raw.stdout.decode("utf-8", "replace"),
            raw.stderr.decode("utf-8", "replace"),
        )
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise GitError(f"git {argv[0]} failed: {message[-1] if message else f'exit {done.returncode}'}")
        return done

    def relative(self, path: Path) -> str:
        """A path as Git names it in this repository (POSIX, relative to the top)."""
        return path.resolve().relative_to(self.root).as_posix()

    def head(self) -> str:
        """The commit HEAD points at."""
        return self.git("rev-parse", "HEAD").stdout.strip()

    def branch(self) -> str:
        """The checked-out branch.

        Raises:
            GitError: HEAD is detached (a push needs a branch to move).
        """
        done = self.git("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if done.returncode != 0:
            raise GitError("HEAD is detached; check out the branch to commit to")
        return done.stdout.strip()

    def dirty(self, paths: Sequence[str]) -> list[str]:
        """Paths (among ``paths``) with changes not committed, staged or not."""
        done = self.git("status", "--porcelain=v1", "--untracked-files=all", "--", *paths)
        return sorted({line[3:].strip('"') for line in done.stdout.splitlines() if line})

    def ignored(self, paths: Sequence[str]) -> list[str]:
        """Paths (among ``paths``) that ``.gitignore`` keeps out of commits."""
        done = self.git("check-ignore", "--no-index", "--", *paths, check=False)
        return sorted(done.stdout.split())

    def commit(self, paths: Sequence[str], message: str) -> str | None:
        """Commit exactly ``paths`` (additions, changes and deletions); the new commit, or None when unchanged."""
        self.git("add", "--all", "--", *paths)
        staged = self.git("diff", "--cached", "--quiet", "--", *paths, check=False)
        if staged.returncode == 0:
            return None
        self.git("commit", "--quiet", "--no-verify", "--only", "-m", message, "--", *paths)
        return self.head()

    def push(self, remote: str, branch: str) -> str | None:
        """Push HEAD to ``remote``'s ``branch`` without forcing; None when pushed, else Git's reason.

        Whether a refusal means the remote moved on (another run pushed first) or something
        else (a protected branch) is for the caller to tell, by looking at the remote's tip.
        """
        done = self.git("push", "--porcelain", remote, f"HEAD:refs/heads/{branch}", check=False)
        if done.returncode == 0:
            return None
        lines = [line for line in (done.stdout + done.stderr).strip().splitlines() if line.strip()]
        refused = [line for line in lines if line.startswith("!")]
        return (refused or lines or [f"exit {done.returncode}"])[-1].strip()

    def remote_tip(self, remote: str, branch: str) -> str:
        """The commit ``remote``'s ``branch`` points at now (fetched)."""
        self.git("fetch", "--quiet", remote, branch)
        return self.git("rev-parse", "FETCH_HEAD").stdout.strip()

    def catch_up(self, tip: str) -> None:
        """Move the branch to ``tip``, dropping local commits not pushed.

        ``reset --keep`` refuses to lose uncommitted changes to files the move touches.
        """
        self.git("reset", "--quiet", "--keep", tip)

    @contextmanager
    def exclusive(self, name: str = "modelplane-reconcile.lock") -> Iterator[None]:
        """Hold an exclusive lock on this clone while the block runs (waits up to ``LOCK_WAIT``)."""
        git_dir = Path(self.git("rev-parse", "--absolute-git-dir").stdout.strip())
        path = git_dir / name
        with path.open("a") as handle:
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitError(
                            f"another modelplane run has held {path.name} for {LOCK_WAIT:.0f}s; try again"
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def find_repo(start: Path) -> Repo | None:
    """The Git working tree that holds ``start`` (a file or a directory), or None."""
    directory = start if start.is_dir() else start.parent
    directory = directory.resolve()
    while not directory.exists():
        directory = directory.parent
    try:
        done = run_git(directory, "rev-parse", "--show-toplevel")
    except GitError:
        return None
    if done.returncode != 0:
        return None
    return Repo(Path(done.stdout.decode().strip()).resolve())

"""What every command prints besides its result: progress on a terminal, JSON reports, quiet mode.

One helper for all commands, so they behave alike: a step that takes more than a second shows
a one-line spinner on stderr while it runs, only when stderr is a terminal, never when it is
piped or redirected (CI logs stay clean) and never with ``--quiet``. Results go to stdout and
are the same bytes whether or not progress was shown. ``--output json`` reports are written
with sorted keys, so the same result gives the same bytes.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

DEFAULT_DELAY = 1.0
"""Seconds a step runs before its progress line appears (``MODELPLANE_PROGRESS_DELAY`` overrides)."""

_FRAMES = "|/-\\"
_TICK = 0.1


@dataclass
class _Settings:
    quiet: bool = False


_settings = _Settings()


def configure(*, quiet: bool) -> None:
    """Set how chatty commands are for the rest of the process (the CLI calls this once)."""
    _settings.quiet = quiet


def quiet() -> bool:
    """Whether ``--quiet`` was given."""
    return _settings.quiet


def is_terminal(stream: TextIO) -> bool:
    """Whether a stream is an interactive terminal that can redraw a line."""
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("MODELPLANE_PROGRESS_DELAY", DEFAULT_DELAY)))
    except ValueError:
        return DEFAULT_DELAY


class Progress:
    """A spinner line for one step; ``update`` changes what it says."""

    def __init__(self, message: str, stream: TextIO, *, enabled: bool) -> None:
        self.message = message
        self._stream = stream
        self._enabled = enabled
        self._done = threading.Event()
        self._shown = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start = time.monotonic()

    def update(self, message: str) -> None:
        """Say what the step does now (shown at the next tick)."""
        self.message = message

    def _run(self) -> None:
        if self._done.wait(_delay()):
            return
        frame = 0
        while not self._done.is_set():
            elapsed = time.monotonic() - self._start
            with self._lock:
                if self._done.is_set():
                    break
                self._stream.write(f"\r\033[K{_FRAMES[frame % len(_FRAMES)]} {self.message} ({elapsed:.1f}s)")
                self._stream.flush()
                self._shown = True
            frame += 1
            self._done.wait(_TICK)

    def __enter__(self) -> Progress:
        if self._enabled:
            self._thread = threading.Thread(target=self._run, name="modelplane-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if self._shown:
                # Leave the terminal as it was: the line is erased, results follow on stdout.
                self._stream.write("\r\033[K")
                self._stream.flush()


@contextmanager
def progress(message: str, stream: TextIO | None = None) -> Iterator[Progress]:
    """Show ``message`` with a spinner on stderr while the block runs longer than a second.

    Shown only on a terminal and without ``--quiet``; otherwise the block runs silently.
    """
    out = stream if stream is not None else sys.stderr
    with Progress(message, out, enabled=not _settings.quiet and is_terminal(out)) as step:
        yield step


def note(message: str) -> None:
    """A hint for a person (what to run next, what to commit) on stderr; silent with ``--quiet``."""
    if not _settings.quiet:
        print(message, file=sys.stderr)


def dump_json(data: Any) -> str:
    """A JSON report as text: sorted keys, two-space indent, UTF-8 kept, a final newline."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(data: Any) -> None:
    """Write a JSON report to stdout."""
    sys.stdout.write(dump_json(data))

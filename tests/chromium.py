"""Headless Chromium (Debian's ``chromium``) for tests and the README screenshot: open a page, read what it says.

Started with the flags this machine needs (no sandbox as root, no GPU, no network services, a
throw-away profile), on a local file only, stopped whatever happens (a process group, killed on
a timeout). ``open_page`` returns the DOM Chromium built and the page's console messages;
``screenshot`` writes a PNG. Tests skip with the reason when ``chromium`` is missing
(``make system-deps`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
)
CONSOLE = re.compile(r":CONSOLE:?\(?\d*\)?\] (.*)")


@dataclass(frozen=True)
class Page:
    """What Chromium made of a page."""

    dom: str
    console: list[str]
    """Every console message the page logged (errors, uncaught exceptions, warnings)."""


def binary() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium not installed (Debian package `chromium`; `make system-deps`)")
    return found


def _run(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = subprocess.Popen(
            [binary(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def open_page(page: Path) -> Page:
    """The DOM after loading ``page``, and its console messages."""
    result = _run(page, "--enable-logging=stderr", "--log-level=0", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return Page(result.stdout, [m.group(1) for m in CONSOLE.finditer(result.stderr)])


def screenshot(page: Path, png: Path, *, width: int = 1200, height: int = 1200) -> None:
    """A PNG of ``page`` at ``width`` x ``height``."""
    result = _run(page, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
    assert result.returncode == 0 and png.is_file(), result.stderr[-2000:]

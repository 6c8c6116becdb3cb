"""The watchdog ends a server's whole process group when the test run is gone or time is up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.servers.harness import HERE

WATCHDOG = str(HERE / "watchdog.py")


def _gone(pid: int) -> bool:
    """Whether a process no longer runs (absent, or a zombie nobody has reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "zombie" in next(line for line in status.splitlines() if line.startswith("State:"))


def _eventually(condition: object, what: str) -> None:
    for _ in range(120):
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within 30 s")


def _server(pidfile: Path) -> list[str]:
    return ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 300"]


def test_watchdog_ends_the_server_when_its_deadline_passes(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    process = subprocess.Popen(
        [sys.executable, WATCHDOG, str(os.getpid()), "2", "--", *_server(pidfile)], start_new_session=True
    )
    try:
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert _gone(int(pidfile.read_text()))


def test_watchdog_ends_the_server_when_the_test_run_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    # A stand-in for the test run: it starts the watchdog watching itself, then gets SIGKILL, so
    # no fixture of its own could stop the server.
    run = (
        "import os, subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, {WATCHDOG!r}, str(os.getpid()), '600', '--', *{_server(pidfile)!r}],"
        " start_new_session=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    test_run = subprocess.Popen([sys.executable, "-c", run], stdout=subprocess.PIPE, text=True)
    try:
        assert test_run.stdout is not None
        watchdog = int(test_run.stdout.readline())
        _eventually(lambda: pidfile.is_file() and pidfile.read_text().strip(), "the server start")
        server = int(pidfile.read_text())
        assert not _gone(server)
        test_run.kill()
        test_run.wait(timeout=30)
        _eventually(lambda: _gone(server) and _gone(watchdog), "the server's end")
    finally:
        if test_run.poll() is None:
            test_run.kill()

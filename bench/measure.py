"""Measuring whole processes: wall time, CPU time and peak resident memory of one command.

What a user waits for is a whole process: interpreter start, imports, reading files, the work,
writing the output. So every figure of the scale benchmark is one child process, measured by
the kernel (``wait4``'s resource usage: user + system CPU, peak RSS) and by the wall clock
around it. The child runs in its own process group, which is killed whole if anything goes
wrong or it runs past its timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One run of one command."""

    wall: float
    """Seconds from start to exit."""
    cpu: float
    """User plus system CPU seconds of the process (and of children it waited for)."""
    peak_mib: float
    """Peak resident set size, MiB."""
    returncode: int
    stdout_bytes: int


class CommandFailedError(RuntimeError):
    """A measured command exited with an unexpected code."""


def run(
    argv: list[str],
    *,
    cwd: Path,
    timeout: float = 1800.0,
    expect: tuple[int, ...] = (0,),
    stdout: Path | None = None,
) -> Sample:
    """Run ``argv`` once and measure it; its stdout goes to ``stdout`` (or is counted and dropped)."""
    out_path = stdout or cwd / ".bench-stdout"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    with open(out_path, "wb") as out, open(cwd / ".bench-stderr", "wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            status, usage = _wait(process.pid, timeout)
        except BaseException:
            _kill(process.pid)
            process.wait()
            raise
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    size = out_path.stat().st_size
    if stdout is None:
        out_path.unlink()
    if process.returncode not in expect:
        tail = (cwd / ".bench-stderr").read_text(errors="replace")[-2000:]
        raise CommandFailedError(f"{' '.join(argv)}: exit {process.returncode}\n{tail}")
    return Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_mib=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        stdout_bytes=size,
    )


def _wait(pid: int, timeout: float) -> tuple[int, os.struct_rusage]:  # type: ignore[name-defined]
    deadline = time.monotonic() + timeout
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {pid} ran longer than {timeout:.0f}s")
        time.sleep(0.01)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def best(samples: list[Sample]) -> Sample:
    """The fastest of several runs (the least disturbed by the rest of the machine)."""
    return min(samples, key=lambda s: s.wall)

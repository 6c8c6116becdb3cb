"""Rollout commands on one lock, run at once: every update lands, or a command fails saying why.

Each command is a forked process running the real command line, so the commands compete for
the lock file exactly as a scheduled ``advance`` and an operator's ``rollback`` would.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from modelplane.cli import main
from modelplane.rollout.lock import exclusive, lock_path, read_lock
from modelplane.rollout.lockfile import WAIT_ENV
from tests.rollout.builders import T0, T1, bump, model_data, stack_data, write_stack

COMMANDS = 50


def _stack(directory: Path, models: int) -> Path:
    """A stack of ``models`` standard-mode models, each with a canary rollout under way."""
    data = stack_data("standard")
    data["models"] = [model_data(f"m{i}", "standard") for i in range(models)]
    path = write_stack(directory, data)
    assert main(["--quiet", "rollout", "apply", str(path), "--now", T0]) == 0
    for i in range(models):
        data = bump(data, f"m{i}", "v2")
    write_stack(directory, data)
    assert main(["--quiet", "rollout", "apply", str(path), "--now", T0]) == 0
    return path


def _promote(path: str, model: str, start: multiprocessing.synchronize.Event) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    start.wait()
    os._exit(main(["--quiet", "rollout", "promote", path, model, "--now", T1]))


def test_fifty_concurrent_promotions_lose_no_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WAIT_ENV, "600")
    path = _stack(tmp_path, COMMANDS)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    processes = [context.Process(target=_promote, args=(str(path), f"m{i}", start)) for i in range(COMMANDS)]
    try:
        for process in processes:
            process.start()
        start.set()
        for process in processes:
            process.join(timeout=600)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    assert [p.exitcode for p in processes] == [0] * COMMANDS
    lock = read_lock(lock_path(path))
    assert lock is not None
    promoted = [
        key for key, record in lock.models.items() if record.rollout is None and record.stable.version == "v2"
    ]
    assert len(promoted) == COMMANDS, f"{COMMANDS - len(promoted)} promotions were lost"


def test_a_command_that_cannot_get_the_lock_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(WAIT_ENV, "0")
    path = _stack(tmp_path, 1)
    before = lock_path(path).read_bytes()
    capsys.readouterr()
    with exclusive(lock_path(path), wait=0):
        assert main(["rollout", "promote", str(path), "m0", "--now", T1]) == 2
    assert lock_path(path).read_bytes() == before
    assert capsys.readouterr().err.splitlines() == [
        f"{lock_path(path)}: <root>: another modelplane command is changing this lock (waited 0s); run "
        f"this one again once it has finished ({WAIT_ENV} sets how long to wait)"
    ]

"""A lock is untrusted input: whatever a pull request puts in it ends in a ``LockError`` naming the
file, the path and the problem (exit 2), never in an internal error, a hang or a wrong render."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.errors import LockError
from modelplane.rollout.lock import LOCK_SCHEMA_VERSION, lock_path, read_lock, write_lock
from modelplane.rollout.lockfile import MAX_LOCK_BYTES, MAX_LOCK_DEPTH
from modelplane.rollout.state import apply
from modelplane.rollout.version import digest_of
from tests.rollout.builders import STACK, T0, bump, desired, stack_data, write_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rolling(tmp_path: Path) -> Path:
    """A stack file whose standard-mode model is in a canary rollout, and its lock beside it."""
    data = stack_data("standard")
    write_stack(tmp_path, data)
    before = apply(None, desired(data), stack=STACK, now=T0)
    after = bump(data, "std", "v2")
    stack = write_stack(tmp_path, after)
    write_lock(apply(before, desired(after), stack=STACK, now=T0), lock_path(stack))
    return stack


def _data(stack: Path) -> dict[str, Any]:
    text = lock_path(stack).read_text()
    data: dict[str, Any] = json.loads(text[text.index("{") :])
    return data


def _write(stack: Path, data: Any) -> None:
    lock_path(stack).write_text(json.dumps(data))


def _problems(stack: Path) -> list[str]:
    with pytest.raises(LockError) as err:
        read_lock(lock_path(stack))
    return err.value.problems


def _cli(stack: Path, capsys: pytest.CaptureFixture[str], *command: str) -> list[str]:
    capsys.readouterr()
    assert main([*(command or ("render", "-o", "-")), str(stack)]) == 2
    err = capsys.readouterr().err
    assert "internal error" not in err
    return err.splitlines()


def _rollout(data: dict[str, Any]) -> dict[str, Any]:
    rollout: dict[str, Any] = data["models"]["team/std"]["rollout"]
    return rollout


@pytest.mark.parametrize(
    ("steps", "step", "message"),
    [
        ([10, 150], 0, "rollout.steps: each step is a traffic share from 1 to 100"),
        ([50, 25, 100], 0, "rollout.steps: steps must be strictly increasing"),
        ([10, 50], 0, "rollout.steps: the last step must be 100 (reaching it is promotion)"),
        ([10, 100], 1, "rollout.step: is past the last step before promotion (1 of 2 steps)"),
        ([], 0, "rollout.steps: a canary has steps"),
    ],
)
def test_a_rollout_plan_out_of_range_is_refused(
    rolling: Path, capsys: pytest.CaptureFixture[str], steps: list[int], step: int, message: str
) -> None:
    data = _data(rolling)
    _rollout(data).update(steps=steps, step=step)
    _write(rolling, data)
    assert _cli(rolling, capsys) == [f'{lock_path(rolling)}: models["team/std"].{message}']


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("step", 100, "input should be less than 100"),
        ("step", -1, "input should be greater than or equal to 0"),
        ("step", "1", "input should be a valid integer"),
        ("phase", "live", "input should be 'shadow', 'canary', 'ab' or 'loading'"),
        ("failures", 10**9, "input should be less than or equal to 10000"),
    ],
)
def test_a_rollout_field_out_of_range_is_refused(rolling: Path, field: str, value: Any, message: str) -> None:
    data = _data(rolling)
    _rollout(data)[field] = value
    _write(rolling, data)
    assert _problems(rolling) == [f'{lock_path(rolling)}: models["team/std"].rollout.{field}: {message}']


def test_an_unknown_runtime_in_a_lock_is_named_not_an_internal_error(
    rolling: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(rolling)
    stable = data["models"]["team/std"]["stable"]
    stable["spec"]["runtime"] = "no-such-runtime"
    stable["digest"] = digest_of(stable["spec"])
    _write(rolling, data)
    lines = _cli(rolling, capsys)
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{rolling}: models[0].runtime: the stable version 'v1' (runtime 'no-such-runtime') keeps serving"
    )
    assert "unknown runtime (catalog: " in lines[0]


def test_deep_nesting_is_refused_before_parsing(rolling: Path) -> None:
    lock_path(rolling).write_text('{"schemaVersion": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert _problems(rolling) == [f"{lock_path(rolling)}: <root>: nested deeper than {MAX_LOCK_DEPTH} levels"]


def test_a_lone_surrogate_is_refused_where_it_sits(rolling: Path) -> None:
    text = lock_path(rolling).read_text().replace('"version": "v2"', '"version": "v2\\ud800"', 1)
    lock_path(rolling).write_text(text)
    problems = _problems(rolling)
    assert len(problems) == 1
    assert problems[0].endswith("not valid Unicode (a lone surrogate)")
    assert problems[0].startswith(f'{lock_path(rolling)}: models["team/std"].')


@pytest.mark.parametrize(
    ("yaml_value", "kind"), [("2026-03-01", "date"), ("!!set {a: null}", "set"), ("!!binary aGk=", "bytes")]
)
def test_yaml_values_a_lock_cannot_hold_are_refused(rolling: Path, yaml_value: str, kind: str) -> None:
    data = _data(rolling)
    text = yaml.safe_dump(data).replace("version: v2\n", f"version: {yaml_value}\n", 1)
    lock_path(rolling).write_text(text)
    problems = _problems(rolling)
    assert any(f"a YAML {kind} is not allowed; a lock holds plain JSON data" in p for p in problems), problems


def test_a_lock_from_an_older_modelplane_is_migrated_and_written_in_the_current_version(
    rolling: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Version 1 locks froze a rollout's gates; they read, and the next write is version 2."""
    data = _data(rolling)
    data["schemaVersion"] = 1
    _rollout(data)["gates"] = [{"name": "error-rate", "query": "up", "max": 0.01}]
    _write(rolling, data)
    lock = read_lock(lock_path(rolling))
    assert lock is not None and lock.models["team/std"].rollout is not None
    assert main(["rollout", "pause", str(rolling), "std", "--now", T0]) == 0
    assert _data(rolling)["schemaVersion"] == LOCK_SCHEMA_VERSION == 2
    assert "gates" not in _rollout(_data(rolling))


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (0, "unknown lock schema version 0 (modelplane wrote 1, 2)"),
        ("2", "must be the lock's schema version, a whole number (this modelplane writes 2)"),
        (True, "must be the lock's schema version, a whole number (this modelplane writes 2)"),
    ],
)
def test_a_schema_version_modelplane_never_wrote_is_named(rolling: Path, version: Any, message: str) -> None:
    data = _data(rolling)
    data["schemaVersion"] = version
    _write(rolling, data)
    assert _problems(rolling) == [f"{lock_path(rolling)}: schemaVersion: {message}"]


def test_a_symlink_is_refused(rolling: Path) -> None:
    target = lock_path(rolling)
    target.unlink()
    target.symlink_to("/dev/zero")
    assert _problems(rolling) == [
        f"{target}: <root>: is a symbolic link; a lock is a regular file that modelplane writes"
    ]


def test_a_fifo_is_refused_without_blocking(rolling: Path) -> None:
    target = lock_path(rolling)
    target.unlink()
    os.mkfifo(target)
    assert _problems(rolling) == [f"{target}: <root>: is not a regular file (a FIFO)"]


def test_a_lock_larger_than_the_cap_is_refused_unread(rolling: Path) -> None:
    target = lock_path(rolling)
    with target.open("r+b") as handle:
        handle.truncate(MAX_LOCK_BYTES + 1)
    assert _problems(rolling) == [
        f"{target}: <root>: file is {MAX_LOCK_BYTES + 1:,} bytes; locks are limited to {MAX_LOCK_BYTES:,}"
    ]


def test_a_rewrite_keeps_the_file_mode(rolling: Path) -> None:
    target = lock_path(rolling)
    target.chmod(0o644)
    old = os.umask(0o077)
    try:
        assert main(["rollout", "pause", str(rolling), "std", "--now", T0]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_a_temporary_file_a_crash_left_is_removed_and_ignored_meanwhile(rolling: Path) -> None:
    target = lock_path(rolling)
    stale = target.parent / f".{target.name}.abc123.tmp"
    stale.write_text("half a lock")
    subprocess.run(["git", "init", "-q", str(target.parent)], check=True)
    (target.parent / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    ignored = subprocess.run(
        ["git", "-C", str(target.parent), "check-ignore", "-q", stale.name], check=False
    ).returncode
    assert ignored == 0, "the project's .gitignore ignores a crashed write's temporary file"
    assert main(["rollout", "pause", str(rolling), "std", "--now", T0]) == 0
    assert not stale.exists()
    assert sorted(p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")) == []


def test_every_problem_is_one_line(rolling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(rolling)
    _rollout(data).update(steps=[10, 150], phase="ab")
    _write(rolling, data)
    lines = _cli(rolling, capsys)
    assert len(lines) >= 2
    assert all(line.startswith(f"{lock_path(rolling)}: ") for line in lines), lines


def test_newlines_in_a_key_cannot_forge_a_workflow_command(
    rolling: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _data(rolling)
    data["models"]["team/x\n::error title=forged::all good\r\n::notice::"] = data["models"]["team/std"]
    _write(rolling, data)
    lines = _cli(rolling, capsys)
    assert lines, "the key is refused"
    assert not [line for line in lines if not line.startswith(f"{lock_path(rolling)}: ")], lines
    assert all(not line.startswith("::") for line in lines)

"""``modelplane rollout ...`` end to end on files: exit codes, messages, the lock on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, read_lock
from modelplane.rollout.report import BAR_GLYPHS, traffic_bar
from tests.rollout.builders import T0, T1, T2, T3, bump, stack_data, write_stack

CANARY = {"strategy": "canary", "steps": [10, 50, 100], "stepInterval": "10m"}


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    return write_stack(tmp_path, stack_data("standard", "knative", rollout=CANARY))


def run(*argv: str) -> int:
    return main(list(argv))


def lock_of(path: Path) -> Any:
    lock = read_lock(lock_path(path))
    assert lock is not None
    return lock


def rolling(stack: Path) -> Path:
    assert run("rollout", "apply", str(stack), "--now", T0) == 0
    data = yaml.safe_load(stack.read_text())
    stack.write_text(yaml.safe_dump(bump(data, "std", "v2"), sort_keys=False))
    assert run("rollout", "apply", str(stack), "--now", T1) == 0
    return stack


def test_apply_writes_the_lock(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rollout", "apply", str(stack), "--now", T0) == 0
    assert sorted(lock_of(stack).models) == ["team/kn", "team/std"]
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"{lock_path(stack)}: wrote (2 models, 2 changed)",
        f"commit together: {lock_path(stack)}",
    ]


def test_apply_twice_changes_nothing(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("rollout", "apply", str(stack), "--now", T0)
    before = lock_path(stack).read_bytes()
    assert run("rollout", "apply", str(stack), "--now", T1) == 0
    assert lock_path(stack).read_bytes() == before
    assert capsys.readouterr().out.splitlines()[-1] == f"{lock_path(stack)}: up to date (2 models)"


def test_apply_dry_run_writes_nothing(stack: Path) -> None:
    assert run("rollout", "apply", str(stack), "--dry-run", "--now", T0) == 0
    assert not lock_path(stack).exists()


def test_apply_reports_the_rollout_it_starts(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    out = capsys.readouterr().out
    assert (
        "  team/std: starts a rollout (v1 -> v2) [version, storageUri]: canary v2 at 10% (step 1 of 3), v1 90%"
        in out
    )


def test_advance_twice_then_promoted(stack: Path) -> None:
    rolling(stack)
    assert run("rollout", "advance", str(stack), "std", "--skip-gates", "--now", T2) == 0
    assert state.candidate_share(lock_of(stack).models["team/std"]) == 50
    assert run("rollout", "advance", str(stack), "std", "--skip-gates", "--now", T3) == 0
    record = lock_of(stack).models["team/std"]
    assert (record.stable.version, record.rollout) == ("v2", None)


def test_advance_waits_for_the_step_interval(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    assert run("rollout", "advance", str(stack), "--now", "2026-03-01T10:25:00Z") == 0
    assert "team/std: waiting: step 1 (10%) has run 5m00s of 10m00s" in capsys.readouterr().out
    assert state.candidate_share(lock_of(stack).models["team/std"]) == 10


def test_advance_force_skips_the_wait(stack: Path) -> None:
    rolling(stack)
    assert (
        run(
            "rollout",
            "advance",
            str(stack),
            "std",
            "--force",
            "--skip-gates",
            "--now",
            "2026-03-01T10:21:00Z",
        )
        == 0
    )
    assert (
        lock_of(stack).models["team/std"].history[-1].detail.startswith("forced (step 1 (10%) has run 1m00s")
    )


@pytest.mark.parametrize(
    ("command", "share", "state_name"),
    [("pause", 10, "paused"), ("rollback", 0, "rolled-back")],
)
def test_operator_commands(stack: Path, command: str, share: int, state_name: str) -> None:
    rolling(stack)
    assert run("rollout", command, str(stack), "std", "--now", T2) == 0
    record = lock_of(stack).models["team/std"]
    assert (state.candidate_share(record), record.rollout.state) == (share, state_name)


def test_promote_with_reason(stack: Path) -> None:
    rolling(stack)
    assert run("rollout", "promote", str(stack), "std", "--reason", "looks good", "--now", T2) == 0
    record = lock_of(stack).models["team/std"]
    assert (record.stable.version, record.history[-1].detail) == ("v2", "looks good")


def test_resume_after_pause(stack: Path) -> None:
    rolling(stack)
    run("rollout", "pause", str(stack), "std", "--now", T2)
    assert run("rollout", "resume", str(stack), "std", "--now", T3) == 0
    assert lock_of(stack).models["team/std"].rollout.state == "progressing"


def test_command_on_a_stale_lock_is_refused(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("rollout", "apply", str(stack), "--now", T0)
    data = yaml.safe_load(stack.read_text())
    stack.write_text(yaml.safe_dump(bump(data, "std", "v2"), sort_keys=False))
    assert run("rollout", "promote", str(stack), "std", "--now", T1) == 2
    assert capsys.readouterr().err == (
        "modelplane: team/std: the stack changed since the lock was written (starts a rollout); "
        f"run `modelplane rollout apply {stack}` first\n"
    )


def test_command_refused_by_the_state_exits_2(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("rollout", "apply", str(stack), "--now", T0)
    assert run("rollout", "rollback", str(stack), "std", "--now", T1) == 2
    assert capsys.readouterr().err == (
        "modelplane: team/std: no rollout in progress (steady on v1); nothing to roll back\n"
    )


def test_unknown_model_exits_2(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run("rollout", "apply", str(stack), "--now", T0)
    assert run("rollout", "status", str(stack), "nope") == 2
    assert capsys.readouterr().err == f"modelplane: {stack}: no model 'nope' in the stack or its lock\n"


def test_corrupt_lock_exits_2_without_traceback(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock_path(stack).write_text("schemaVersion: 1\nstack: test\nmodels: [\n")
    assert run("rollout", "status", str(stack)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{lock_path(stack)}: line 4, column 1: YAML error")
    assert "Traceback" not in err


def test_render_refuses_a_corrupt_lock(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock_path(stack).write_text("schemaVersion: 1\nstack: other\nmodels: {}\n")
    assert run("render", str(stack), "-o", "-") == 2
    assert (
        capsys.readouterr().err == f"{lock_path(stack)}: stack: the lock is for stack 'other', not 'test'\n"
    )


def test_bad_now_exits_2(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rollout", "apply", str(stack), "--now", "tomorrow") == 2
    assert "not a UTC timestamp like 2026-01-31T12:00:00Z: 'tomorrow'" in capsys.readouterr().err


def test_status_shows_the_rendered_split_and_gates(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    capsys.readouterr()
    assert run("rollout", "status", str(stack), "std", "--now", T2) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == [
        "team/std (standard)",
        "  canary v2 at 10% (step 1 of 3), v1 90%",
        "  rendered traffic: v1 90%, v2 10%",
        "  next: ready to advance",
    ]
    assert lines[4].startswith(
        "  gate error-rate [<= 0.01]: unmeasurable: runtime 'sklearn' counts no failed"
    )


def test_status_without_lock(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rollout", "status", str(stack), "kn") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{lock_path(stack)}: no lock yet: nothing is deployed",
        "team/kn (knative)",
        "  not deployed yet",
        f"  pending: new model, deployed directly; run `modelplane rollout apply {stack}`",
        "  rendered traffic: v1 100%",
    ]


def test_render_follows_the_lock(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    run("rollout", "advance", str(stack), "std", "--skip-gates", "--now", T2)
    capsys.readouterr()
    assert run("render", str(stack), "-o", "-") == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d and d["kind"] == "InferenceService"]
    std = next(d for d in docs if d["metadata"]["name"] == "std")
    assert [(c["predictor"]["name"], c["trafficPercent"]) for c in std["spec"]["canary"]] == [("v2", 50)]


def test_help_exits_0() -> None:
    assert run("rollout", "advance", "--help") == 0


def test_status_on_a_terminal_draws_the_split_as_a_bar(
    stack: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rolling(stack)
    capsys.readouterr()
    monkeypatch.setattr("modelplane.console.is_terminal", lambda stream: True)
    assert run("rollout", "status", str(stack), "std", "--now", T2) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2:4] == [
        "  rendered traffic: v1 90%, v2 10%",
        "  [" + "█" * 36 + "▒" * 4 + "]  █ v1 90%  ▒ v2 10%",
    ]


def test_piped_status_has_no_bar(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    capsys.readouterr()
    assert run("rollout", "status", str(stack), "std", "--now", T2) == 0
    assert not any("█" in line for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize(
    ("split", "cells"),
    [
        ([("v1", 90), ("v2", 10)], [36, 4]),
        ([("v1", 99), ("v2", 1)], [39, 1]),
        ([("v1", 100), ("v2", 0)], [40, 0]),
        ([("v1", 33), ("v2", 33), ("v3", 34)], [13, 13, 14]),
        ([("v1", 1), ("v2", 1), ("v3", 98)], [1, 1, 38]),
    ],
)
def test_the_bar_fills_its_width_and_shows_every_version_with_traffic(
    split: list[tuple[str, int]], cells: list[int]
) -> None:
    bar = traffic_bar(split).split("]")[0].removeprefix("[")
    assert [bar.count(BAR_GLYPHS[i]) for i in range(len(split))] == cells

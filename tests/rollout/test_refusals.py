"""What ``modelplane rollout`` refuses: gates nobody can ask, implicit scope, flags that make no sense.

Every refusal exits 2, says why in one place, and writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.cli import main
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, read_lock
from tests.rollout.builders import T0, T2, T3, edit, stack_data, write_stack
from tests.rollout.test_cli import rolling
from tests.rollout.test_cli import stack as stack


def _lock_bytes(path: Path) -> bytes:
    return lock_path(path).read_bytes()


def test_gates_due_without_a_prometheus_are_refused(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    before = _lock_bytes(stack)
    capsys.readouterr()
    assert main(["rollout", "advance", str(stack), "--now", T2]) == 2
    assert _lock_bytes(stack) == before
    assert capsys.readouterr().err.splitlines() == [
        "modelplane: team/std: gates error-rate, latency-p99 need a Prometheus to judge them",
        f"modelplane: {stack}: pass --prometheus URL or set rollout.prometheus in the stack; or pass "
        "--skip-gates to advance without them (the lock's history records it)",
    ]


def test_nothing_due_needs_no_prometheus(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    assert main(["rollout", "advance", str(stack), "--now", "2026-03-01T10:25:00Z"]) == 0
    assert "team/std: waiting: step 1 (10%) has run 5m00s of 10m00s" in capsys.readouterr().out


def test_skip_gates_is_printed_and_recorded(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    capsys.readouterr()
    assert main(["rollout", "advance", str(stack), "--skip-gates", "--now", T2]) == 0
    assert "team/std: gates skipped (--skip-gates): error-rate, latency-p99" in capsys.readouterr().out
    lock = read_lock(lock_path(stack))
    assert lock is not None
    event = lock.models["team/std"].history[-1]
    assert (event.event, event.detail) == (
        "advanced",
        "gates skipped (--skip-gates): error-rate, latency-p99",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--skip-gates", "--prometheus", "http://127.0.0.1:9"],
            "modelplane: --skip-gates and --prometheus: choose one (skip the gates, or ask Prometheus)",
        ),
        (
            ["--prometheus", "ftp://prometheus.example"],
            "modelplane: --prometheus: the Prometheus URL must start with http:// or https:// "
            "(Prometheus's HTTP API)",
        ),
        (
            ["--prometheus", "https://admin:s3cret@prometheus.example"],
            "modelplane: --prometheus: the Prometheus URL must not carry credentials; set "
            "MODELPLANE_PROMETHEUS_TOKEN for a bearer token",
        ),
        (["--prometheus", "http://"], "modelplane: --prometheus: the Prometheus URL has no host"),
    ],
)
def test_bad_gate_flags_exit_2_and_write_nothing(
    stack: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rolling(stack)
    before = _lock_bytes(stack)
    capsys.readouterr()
    assert main(["rollout", "advance", str(stack), *argv, "--now", T2]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [message]
    assert "s3cret" not in err
    assert _lock_bytes(stack) == before


@pytest.mark.parametrize("command", ["promote", "rollback", "pause", "resume"])
def test_operator_commands_need_a_model_or_all(
    stack: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    rolling(stack)
    before = _lock_bytes(stack)
    capsys.readouterr()
    assert main(["rollout", command, str(stack), "--now", T2]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"modelplane: name the MODEL to {command}, or pass --all to {command} every model with a rollout"
    ]
    assert main(["rollout", command, str(stack), "std", "--all", "--now", T2]) == 2
    assert "MODEL and --all: give one" in capsys.readouterr().err
    assert _lock_bytes(stack) == before


def test_all_acts_on_every_model_in_flight(stack: Path) -> None:
    rolling(stack)
    assert main(["rollout", "pause", str(stack), "--all", "--now", T2]) == 0
    lock = read_lock(lock_path(stack))
    assert lock is not None
    assert lock.models["team/std"].rollout is not None
    assert lock.models["team/std"].rollout.state == "paused"
    assert lock.models["team/kn"].rollout is None  # steady: nothing to pause
    assert main(["rollout", "promote", str(stack), "--all", "--now", T3]) == 0
    lock = read_lock(lock_path(stack))
    assert lock is not None
    assert state.describe(lock.models["team/std"]) == "steady on v2"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--push", "origin"], "--push needs --commit"),
        (["--skip-gates"], "judge steps: add --advance"),
        (["--advance", "--notify", "ftp://hooks.example"], "the webhook URL must start with http://"),
    ],
)
def test_reconcile_flag_combinations_exit_2(
    stack: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["rollout", "reconcile", str(stack), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not lock_path(stack).exists()


def test_watch_with_a_fixed_time_exits_2(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "status", str(stack), "--watch", "--now", T2]) == 2
    assert "--watch follows the rollout as it moves" in capsys.readouterr().err


def test_a_lock_of_another_stack_exits_2(
    stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rolling(stack)
    other = tmp_path / "other.lock.yaml"
    other.write_text(_lock_bytes(stack).decode().replace('"stack": "test"', '"stack": "prod"'))
    capsys.readouterr()
    assert main(["rollout", "advance", str(stack), "--lock", str(other), "--skip-gates", "--now", T2]) == 2
    assert f"{other}: stack: the lock is for stack 'prod', not 'test'" in capsys.readouterr().err


ONNX = {"name": "onnx", "version": "1"}


def _runtime_and_metric_change(directory: Path) -> Path:
    """A standard-mode model deployed on sklearn, then moved to triton (and ONNX) together with a
    metric only triton has a query for (queue-depth): a rollout whose stable version cannot
    scale that way."""
    data = stack_data("standard")
    path = write_stack(directory, data)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    changed = edit(data, "std", runtime="triton", format=ONNX, scaling={"minReplicas": 2, "maxReplicas": 6})
    changed["models"][0]["scaling"]["metric"] = "queue-depth"
    return write_stack(directory, changed)


def test_a_change_the_stable_version_cannot_render_is_refused_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _runtime_and_metric_change(tmp_path)
    before = _lock_bytes(path)
    capsys.readouterr()
    for argv in (["rollout", "apply", str(path), "--now", T2], ["rollout", "apply", str(path), "--dry-run"]):
        assert main(argv) == 2
        assert _lock_bytes(path) == before
        err = capsys.readouterr().err
        assert err.splitlines() == [
            f"{path}: models[0].scaling.metric: the stable version 'v1' (runtime 'sklearn') keeps serving "
            "until the rollout is promoted, and for it: standard mode scales on 'queue-depth' through KEDA "
            "and a Prometheus query, but runtime 'sklearn' exposes no metric for it; it can scale on "
            "concurrency, gpu-utilization, rps (KEDA), cpu or memory (HPA); make this change once the "
            'rollout is promoted, or roll it out with strategy direct (got "queue-depth")'
        ]


@pytest.mark.parametrize(
    "command", [["validate"], ["render", "-o", "-"], ["render", "--check"], ["rollout", "status"]]
)
def test_a_lock_the_stack_cannot_render_under_is_an_input_error_not_an_internal_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """Such a lock written by an older modelplane (or by hand) names the field, exit 2."""
    data = stack_data("standard")
    path = write_stack(tmp_path, data)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    assert (
        main(
            [
                "rollout",
                "apply",
                str(write_stack(tmp_path, edit(data, "std", runtime="triton", format=ONNX))),
                "--now",
                T0,
            ]
        )
        == 0
    )
    changed = edit(
        data,
        "std",
        runtime="triton",
        format=ONNX,
        scaling={"minReplicas": 2, "maxReplicas": 6, "metric": "queue-depth"},
    )
    write_stack(tmp_path, changed)
    capsys.readouterr()
    assert main([*command, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: models[0].scaling.metric: the stable version 'v1' (runtime 'sklearn')"), (
        err
    )
    assert "internal error" not in err

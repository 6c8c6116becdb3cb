"""``modelplane probe``: its input checks, its report, and the probe gate of a rollout.

The checks against answering servers run on the real model servers (``tests/servers``); these
run everywhere and cover what needs no server: bad input, a server that is not there, the
missing gRPC client.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.errors import StackError
from modelplane.inference import SampleRequest
from modelplane.probe import GRPC_EXTRA_HINT, ProbeError, load_sample, probe
from modelplane.rollout.lock import lock_path, read_lock
from modelplane.stack import load_stack
from tests.rollout.builders import T0, T1, T2, bump, stack_data, write_stack


def _closed_port() -> int:
    """A loopback port nothing listens on (bound and released, so connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


GOOD = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}


def test_sample_request_body_is_the_v2_request() -> None:
    request = SampleRequest.model_validate(GOOD | {"outputs": [{"name": "y"}]})
    assert request.body() == {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}],
        "outputs": [{"name": "y"}],
    }


@pytest.mark.parametrize(
    ("request_data", "message"),
    [
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
            "{file}: inputs.0: Value error, input 'x': shape [2, 2] holds 4 values, data has 3",
        ),
        ({"inputs": []}, "{file}: inputs: List should have at least 1 item after validation, not 0"),
        (
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]},
            "{file}: inputs.0.datatype: Input should be 'BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', "
            "'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64' or 'BYTES'",
        ),
        (GOOD | {"input": []}, "{file}: input: Extra inputs are not permitted"),
    ],
)
def test_a_bad_request_file_names_the_file_and_field(
    tmp_path: Path, request_data: dict[str, Any], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_data), encoding="utf-8")
    with pytest.raises(ProbeError) as err:
        load_sample(str(path))
    assert str(err.value) == message.format(file=path)
    assert main(["probe", "http://127.0.0.1:1", "--model", "m", "--request", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [message.format(file=path)] and captured.out == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["ftp://host", "--model", "m"],
            "modelplane probe: url: 'ftp://host' must start with http://, https://, grpc:// or grpcs://",
        ),
        (["http://", "--model", "m"], "modelplane probe: url: 'http://' has no host"),
        (
            ["http://host", "--model", "m", "--request", "/nonexistent/request.json"],
            "/nonexistent/request.json: cannot read: No such file or directory",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", *argv]) == 2
    assert capsys.readouterr().err.splitlines() == [message]


def test_a_model_not_in_the_stack_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_stack(tmp_path, stack_data("standard"))
    assert main(["probe", "http://host", "--model", "nope", "--stack", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"{path}: no model 'nope' in the stack"]


def test_a_server_that_is_not_there_fails_every_check_and_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    assert main(["probe", url, "--model", "m", "--output", "json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is False
    assert [(c["name"], c["status"]) for c in report["checks"]] == [
        ("server-live", "fail"),
        ("server-ready", "fail"),
        ("model-ready", "fail"),
        ("model-metadata", "fail"),
        ("infer", "skip"),
    ]
    assert report["checks"][0]["detail"].startswith(f"cannot reach {url}: ")
    assert sorted(report) == ["checks", "healthy", "model", "transport", "url", "version"]


def test_grpc_without_tritonclient_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A None entry makes `import tritonclient.grpc` raise ImportError, as when it is not installed.
    monkeypatch.setitem(sys.modules, "tritonclient.grpc", None)
    with pytest.raises(ProbeError, match=r"pip install 'modelplane\[grpc\]'"):
        probe("grpc://127.0.0.1:1", "m")
    assert main(["probe", "grpc://127.0.0.1:1", "--model", "m"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"modelplane probe: {GRPC_EXTRA_HINT}"]


# --- the stack: sampleRequest and rollout.probe --------------------------------------------


def test_stack_refuses_a_bad_probe_url_and_sample_request(tmp_path: Path) -> None:
    data = stack_data(
        "standard", rollout={"strategy": "canary", "steps": [10, 100], "probe": {"url": "ftp://{model}"}}
    )
    data["models"][0]["sampleRequest"] = {
        "inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1]}]
    }
    path = write_stack(tmp_path, data)
    with pytest.raises(StackError) as err:
        load_stack(path)
    assert err.value.problems == [
        f"{path}: rollout.probe: url 'ftp://{{model}}' must start with http://, https://, grpc:// or grpcs://",
        f"{path}: models[0].sampleRequest.inputs[0]: input 'a': shape [2] holds 2 values, data has 1",
    ]


def test_probe_url_placeholders_are_checked(tmp_path: Path) -> None:
    data = stack_data(
        "standard", rollout={"strategy": "canary", "steps": [10, 100], "probe": {"url": "http://{modle}.svc"}}
    )
    with pytest.raises(StackError) as err:
        load_stack(write_stack(tmp_path, data))
    assert err.value.problems[0].endswith(
        "rollout.probe: url 'http://{modle}.svc': unknown placeholder; use {model}, {namespace}, {name}, {version}"
    )


def test_advance_holds_when_the_candidate_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    rollout = {
        "strategy": "canary",
        "steps": [10, 50, 100],
        "stepInterval": "10m",
        "probe": {"url": f"http://127.0.0.1:{port}/{{namespace}}/{{model}}/{{name}}"},
    }
    data = stack_data("standard", rollout=rollout)
    path = write_stack(tmp_path, data)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    path.write_text(yaml.safe_dump(bump(data, "std", "v2"), sort_keys=False))
    assert main(["rollout", "apply", str(path), "--now", T1]) == 0
    capsys.readouterr()
    assert main(["rollout", "advance", str(path), "--skip-gates", "--now", T2]) == 3
    out = capsys.readouterr().out
    lock = read_lock(lock_path(path))
    assert lock is not None
    record = lock.models["team/std"]
    name = record.rollout.candidate.name if record.rollout else ""
    url = f"http://127.0.0.1:{port}/team/std/{name}"
    assert f"team/std: probe server-live: fail (cannot reach {url}: " in out
    assert "team/std: held: gates failed (probe)" in out.splitlines()
    assert record.history[-1].event == "held"
    assert record.history[-1].detail == (
        f"failed evaluation 1 at this step: gates failed (probe): probe {url}: failing: server-live, "
        "server-ready, model-ready, model-metadata; gates skipped (--skip-gates): error-rate, latency-p99"
    )


def test_dry_run_reports_a_failing_probe_and_advances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = {
        "strategy": "canary",
        "steps": [10, 50, 100],
        "stepInterval": "10m",
        "dryRun": True,
        "probe": {"url": f"http://127.0.0.1:{_closed_port()}"},
    }
    data = stack_data("standard", rollout=rollout)
    path = write_stack(tmp_path, data)
    main(["rollout", "apply", str(path), "--now", T0])
    path.write_text(yaml.safe_dump(bump(data, "std", "v2"), sort_keys=False))
    main(["rollout", "apply", str(path), "--now", T1])
    assert main(["rollout", "advance", str(path), "--skip-gates", "--now", T2]) == 0
    lock = read_lock(lock_path(path))
    assert lock is not None
    assert lock.models["team/std"].history[-1].detail.startswith("dry run, gates not enforced: probe ")

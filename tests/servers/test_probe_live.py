"""``modelplane probe`` and the rollout probe gate against the real model servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, read_lock
from tests.rollout.builders import T0, T1, T2, bump, stack_data, write_stack
from tests.servers.conftest import Served

BAD_REQUEST = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]}]}
"""Three features where the model was trained on four: the server must refuse it."""


def _probe(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["probe", *argv, "--output", "json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return code, report


def _statuses(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


ALL_PASS = {
    "server-live": "pass",
    "server-ready": "pass",
    "model-ready": "pass",
    "model-metadata": "pass",
    "infer": "pass",
}


def _request_file(tmp_path: Path, request: dict[str, Any]) -> str:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    return str(path)


def test_probe_rest_passes_on_a_healthy_mlserver(
    mlserver: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = _request_file(tmp_path, mlserver.sample["request"])
    code, report = _probe(capsys, mlserver.server.url(), "--model", mlserver.name, "--request", request)
    assert (code, report["healthy"], _statuses(report)) == (0, True, ALL_PASS)
    assert report["transport"] == "rest"


def test_probe_grpc_passes_on_a_healthy_mlserver(
    mlserver: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")
    request = _request_file(tmp_path, mlserver.sample["request"])
    url = f"grpc://127.0.0.1:{mlserver.grpc_port}"
    code, report = _probe(capsys, url, "--model", mlserver.name, "--request", request)
    assert (code, _statuses(report)) == (0, ALL_PASS)
    assert report["transport"] == "grpc"


def test_probe_passes_on_the_kserve_server(
    kserve_server: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = _request_file(tmp_path, kserve_server.sample["request"])
    code, report = _probe(
        capsys, kserve_server.server.url(), "--model", kserve_server.name, "--request", request
    )
    assert (code, _statuses(report)) == (0, ALL_PASS)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_probe_of_a_model_the_server_does_not_have_fails_with_exit_3(
    mlserver: Served, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if transport == "grpc":
        pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")
    url = mlserver.server.url() if transport == "rest" else f"grpc://127.0.0.1:{mlserver.grpc_port}"
    code, report = _probe(capsys, url, "--model", "no-such-model")
    assert code == 3 and report["healthy"] is False
    assert _statuses(report) == {
        "server-live": "pass",
        "server-ready": "pass",
        "model-ready": "fail",
        "model-metadata": "fail",
        "infer": "skip",
    }


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_probe_with_a_request_the_model_refuses_fails_the_inference(
    mlserver: Served, transport: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if transport == "grpc":
        pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")
    url = mlserver.server.url() if transport == "rest" else f"grpc://127.0.0.1:{mlserver.grpc_port}"
    request = _request_file(tmp_path, BAD_REQUEST)
    code, report = _probe(capsys, url, "--model", mlserver.name, "--request", request)
    assert code == 3
    assert _statuses(report) == ALL_PASS | {"infer": "fail"}


def test_probe_text_report_names_each_check(mlserver: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", mlserver.server.url(), "--model", mlserver.name]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"probe {mlserver.name} at {mlserver.server.url()} (rest)"
    assert [line.split()[:2] for line in lines[1:6]] == [
        ["pass", "server-live"],
        ["pass", "server-ready"],
        ["pass", "model-ready"],
        ["pass", "model-metadata"],
        ["skip", "infer"],
    ]
    assert lines[-1] == f"{mlserver.name}: healthy"


# --- the probe as a rollout gate ------------------------------------------------------------


def _rolling_stack(tmp_path: Path, served: Served, request: dict[str, Any]) -> Path:
    """A Standard-mode MLServer model mid-rollout whose policy probes the real server."""
    rollout = {
        "strategy": "canary",
        "steps": [10, 50, 100],
        "stepInterval": "10m",
        "probe": {"url": served.server.url(), "timeout": 10},
        "gates": [],  # the probe alone judges; Prometheus gates are tested in tests/rollout
    }
    data = stack_data("standard", rollout=rollout)
    data["models"][0] |= {"name": served.name, "runtime": "mlserver", "sampleRequest": request}
    path = write_stack(tmp_path, data)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    path.write_text(yaml.safe_dump(bump(data, served.name, "v2"), sort_keys=False))
    assert main(["rollout", "apply", str(path), "--now", T1]) == 0
    return path


def _record(path: Path) -> Any:
    lock = read_lock(lock_path(path))
    assert lock is not None
    return next(iter(lock.models.values()))


def test_a_passing_probe_lets_the_rollout_take_its_step(
    mlserver: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rolling_stack(tmp_path, mlserver, mlserver.sample["request"])
    assert state.candidate_share(_record(path)) == 10
    capsys.readouterr()
    assert main(["rollout", "advance", str(path), mlserver.name, "--now", T2]) == 0
    out = capsys.readouterr().out
    assert f"team/{mlserver.name}: probe infer: pass" in out
    assert state.candidate_share(_record(path)) == 50


def test_a_failing_probe_holds_the_rollout(
    mlserver: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rolling_stack(tmp_path, mlserver, BAD_REQUEST)
    capsys.readouterr()
    assert main(["rollout", "advance", str(path), mlserver.name, "--now", T2]) == 3
    out = capsys.readouterr().out
    assert f"team/{mlserver.name}: probe infer: fail" in out
    assert f"team/{mlserver.name}: held: gates failed (probe)" in out
    record = _record(path)
    last = record.history[-1]
    assert (last.event, last.version) == ("held", "v2")
    assert last.detail.startswith(
        f"failed evaluation 1 at this step: gates failed (probe): probe {mlserver.server.url()}: failing: infer"
    )
    assert state.candidate_share(record) == 10

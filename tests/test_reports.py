"""Every ``--output json`` report validates against its JSON Schema in ``modelplane/schemas/``.

The schemas are contracts for scripts and CI: a field renamed or retyped fails here first.
Each schema is also shown to reject a report that breaks it, so none of them accepts anything.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelplane import status
from modelplane.build import build
from modelplane.cli import main
from modelplane.stack import load_stack
from tests.conftest import ROOT, STACKS
from tests.rollout.builders import T0, T1, T2, bump, stack_data, write_stack

SCHEMAS = ROOT / "components" / "modelplane" / "schemas"
PROD = str(STACKS / "prod.yaml")


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return data


def problems(report: Any, name: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(name))
    return sorted(f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(report))


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    capsys.readouterr()
    assert main(list(argv)) == code
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_each_schema_is_a_valid_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.fixture
def rolling(tmp_path: Path) -> Path:
    path = write_stack(tmp_path, stack_data("standard", "knative"))
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    path.write_text(yaml.safe_dump(bump(yaml.safe_load(path.read_text()), "std", "v2"), sort_keys=False))
    return path


REPORTS: list[tuple[str, str]] = []


def checked(report: Any, name: str) -> Any:
    assert problems(report, name) == []
    broken = copy.deepcopy(report)
    broken.pop(next(iter(schema(name)["required"])))
    assert problems(broken, name) != []  # the schema rejects a report without a required field
    return report


def test_validate(capsys: pytest.CaptureFixture[str]) -> None:
    report = checked(run_json(capsys, "validate", PROD, "--output", "json"), "validate")
    assert report["files"][0]["valid"] is True


def test_validate_with_problems(capsys: pytest.CaptureFixture[str]) -> None:
    broken = str(ROOT / "docs" / "examples" / "broken.yaml")
    report = checked(run_json(capsys, "validate", broken, "--output", "json", code=2), "validate")
    assert report["valid"] is False and report["files"][0]["problems"]


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    checked(run_json(capsys, "summary", PROD, "--output", "json"), "summary")


def test_plan(capsys: pytest.CaptureFixture[str]) -> None:
    checked(run_json(capsys, "plan", PROD, "--output", "json"), "plan")


def test_rollout_commands(rolling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    apply = checked(
        run_json(capsys, "rollout", "apply", str(rolling), "--now", T1, "--output", "json"), "rollout"
    )
    assert [d["decision"] for d in apply["decisions"]] == ["start"]
    advance = checked(
        run_json(capsys, "rollout", "advance", str(rolling), "--skip-gates", "--now", T2, "--output", "json"),
        "rollout",
    )
    assert advance["models"][0]["skippedGates"] == ["error-rate", "latency-p99"]
    checked(
        run_json(capsys, "rollout", "pause", str(rolling), "std", "--now", T2, "--output", "json"), "rollout"
    )
    status_report = checked(
        run_json(capsys, "rollout", "status", str(rolling), "--now", T2, "--output", "json"), "rollout-status"
    )
    assert status_report["models"][1]["rollout"]["state"] == "paused"


def test_reconcile(rolling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["rollout", "reconcile", str(rolling), "--now", T1, "--render-dir", str(rolling.parent / "deploy")]
    report = checked(run_json(capsys, *argv, "--output", "json"), "reconcile")
    assert report["stacks"][0]["render"]["files"] > 0


def test_render_check(rolling: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(rolling.parent / "deploy")
    assert main(["render", str(rolling), "-o", out]) == 0
    checked(
        run_json(capsys, "render", str(rolling), "-o", out, "--check", "--format", "json"), "render-check"
    )


def test_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    dev = STACKS / "dev.yaml"
    live = [o for o in build(load_stack(dev)).objects if o["kind"] == "InferenceService"][1:]
    monkeypatch.setattr(status, "read_live", lambda namespaces, *, context=None: live)
    report = checked(run_json(capsys, "status", str(dev), "--output", "json", code=3), "status")
    assert report["inSync"] is False and report["missing"][0]["kind"] == "InferenceService"


def test_probe(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["probe", f"http://127.0.0.1:{port}", "--model", "m", "--timeout", "2", "--output", "json"]
    report = checked(run_json(capsys, *argv, code=3), "probe")
    assert report["healthy"] is False


def test_preview_takes_output_json(capsys: pytest.CaptureFixture[str]) -> None:
    report = run_json(capsys, "preview", PROD, "--base", PROD, "--output", "json")
    preview_schema = json.loads((SCHEMAS.parent / "preview" / "preview.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(preview_schema).iter_errors(report)) == []


def test_changed(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_stack(tmp_path, stack_data("standard"))
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main"], check=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet"]
    subprocess.run([*git, "--allow-empty", "-m", "base"], check=True)
    report = checked(run_json(capsys, "changed", str(path), "--base", "main", "--output", "json"), "changed")
    assert report["stacks"][0]["because"] == [path.name]

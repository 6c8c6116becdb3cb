"""``modelplane preview``: the JSON against its schema, Markdown, Git bases, exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelplane.cli import main
from modelplane.preview.preview import Side, build_preview
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, write_lock
from tests.rollout.builders import STACK, T0, bump, desired, edit, load, stack_data, write_stack

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "components/modelplane/preview/preview.schema.json").read_text()
)
CANARY = {"strategy": "canary", "steps": [5, 25, 50, 100], "stepInterval": "15m"}
BASE = stack_data("standard", "knative", "modelmesh", rollout=CANARY)


def preview(
    head: dict[str, Any], base: dict[str, Any] | None = BASE, *, locked: bool = True
) -> dict[str, Any]:
    lock = state.apply(None, desired(BASE), stack=STACK, now=T0) if locked else None
    return build_preview(
        Side(load(head), lock, "head.yaml"),
        Side(load(base) if base is not None else None, lock, "base.yaml"),
    )


def valid(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize(
    "head",
    [
        BASE,
        bump(BASE, "std", "v2"),
        bump(bump(BASE, "kn", "v2"), "mesh", "v2"),
        edit(BASE, "std", deploymentMode="knative"),
        {**BASE, "models": BASE["models"][:1]},
    ],
    ids=["unchanged", "canary", "knative-and-mesh", "mode-change", "removal"],
)
def test_json_matches_its_schema(head: dict[str, Any]) -> None:
    assert valid(preview(head)) == []


def test_head_against_itself_shows_no_change() -> None:
    result = preview(BASE)
    assert (result["objects"], result["rollouts"], result["summary"]["destructive"]) == ([], [], 0)
    assert result["capacity"]["total"]["delta"] == {"podsMin": 0, "podsMax": 0, "gpusMin": 0, "gpusMax": 0}


def test_version_bump_previews_its_first_canary_step() -> None:
    (rollout,) = preview(bump(BASE, "std", "v2"))["rollouts"]
    assert {
        k: rollout[k] for k in ("model", "namespace", "from", "to", "strategy", "step", "trafficPercent")
    } == {
        "model": "std",
        "namespace": "team",
        "from": "v1",
        "to": "v2",
        "strategy": "canary",
        "step": 1,
        "trafficPercent": 5,
    }
    assert [g["name"] for g in rollout["gates"]] == ["error-rate", "latency-p99"]


def test_version_bump_changes_only_the_inference_service() -> None:
    (change,) = preview(bump(BASE, "std", "v2"))["objects"]
    assert (change["kind"], change["name"], change["action"]) == ("InferenceService", "std", "changed")
    assert [(c["op"], c["field"]) for c in change["changes"]] == [("add", "spec.canary")]


def test_modelmesh_bump_adds_the_side_object() -> None:
    result = preview(bump(BASE, "mesh", "v2"))
    assert [(o["name"], o["action"]) for o in result["objects"]] == [("mesh-v2", "added")]
    assert result["rollouts"][0]["phase"] == "loading"


def test_mode_change_is_destructive() -> None:
    result = preview(edit(BASE, "std", deploymentMode="knative"))
    assert result["summary"]["destructive"] == 1
    assert [(r["decision"], r["destructive"]) for r in result["rollouts"]] == [("replace", True)]
    (change,) = [o for o in result["objects"] if o["name"] == "std" and o["kind"] == "InferenceService"]
    assert change["action"] == "replaced"


def test_removal_is_destructive() -> None:
    result = preview({**BASE, "models": BASE["models"][:1]})
    assert sorted((r["model"], r["decision"]) for r in result["rollouts"]) == [
        ("kn", "removal"),
        ("mesh", "removal"),
    ]
    assert result["summary"]["destructive"] >= 2


def test_scaling_change_is_in_place_with_capacity() -> None:
    result = preview(edit(BASE, "std", scaling={"minReplicas": 4, "maxReplicas": 8}))
    (rollout,) = result["rollouts"]
    assert (rollout["decision"], rollout["fields"]) == ("in-place", ["scaling"])
    assert result["capacity"]["total"]["delta"] == {"podsMin": 2, "podsMax": 2, "gpusMin": 0, "gpusMax": 0}


def test_missing_lock_treats_every_model_as_new() -> None:
    result = preview(BASE, None, locked=False)
    assert {r["decision"] for r in result["rollouts"]} == {"new"}
    assert result["warnings"][0] == "test: no lock file: every model is treated as new (nothing deployed yet)"


def test_unmeasurable_gate_is_a_warning() -> None:
    assert preview(bump(BASE, "std", "v2"))["warnings"] == [
        "team/std: gate error-rate cannot be measured (runtime 'sklearn' counts no failed requests in standard "
        "mode; use a custom gate or dryRun); it will hold the rollout at its first step"
    ]


def test_summary_line() -> None:
    assert preview(bump(BASE, "std", "v2"))["summary"]["text"] == (
        "test: std v1 → v2 (canary at 5%); 1 object changed; 0 destructive changes; +0 pods / +0 GPUs at min replicas"
    )


# --- the command line, with a real Git repository ---


def git(repo: Path, *argv: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *argv],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    path = write_stack(stacks, BASE)
    write_lock(state.apply(None, desired(BASE), stack=STACK, now=T0), lock_path(path))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "base")
    return path


def run_preview(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["preview", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_preview_against_head_revision(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_text(yaml.safe_dump(bump(BASE, "std", "v2"), sort_keys=False))
    code, out, _ = run_preview(capsys, str(repo), "--base", "HEAD", "--format", "json")
    result = json.loads(out)
    assert code == 0
    assert valid(result) == []
    assert result["base"] == {"source": "HEAD:stacks/test.yaml", "exists": True}
    assert [r["to"] for r in result["rollouts"]] == ["v2"]


def test_preview_of_unchanged_head_is_empty(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_preview(capsys, str(repo), "--base", "HEAD", "--format", "json")
    assert (code, json.loads(out)["objects"]) == (0, [])


def test_stack_new_at_the_revision_previews_everything_as_added(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_stack(repo.parent, BASE, "other.yaml")
    code, out, _ = run_preview(capsys, str(other), "--base", "HEAD", "--format", "json")
    result = json.loads(out)
    assert (code, result["base"]["exists"]) == (0, False)
    assert {o["action"] for o in result["objects"]} == {"added"}


def test_unknown_revision_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_preview(capsys, str(repo), "--base", "no-such-branch")
    assert (code, err) == (
        2,
        "modelplane: --base 'no-such-branch' is neither an existing file nor a Git revision\n",
    )


def test_base_file(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = write_stack(tmp_path, bump(BASE, "kn", "v2"), "head.yaml")
    lock_path(head).write_bytes(lock_path(repo).read_bytes())
    code, out, _ = run_preview(capsys, str(head), "--base", str(repo), "--format", "json")
    assert code == 0
    assert [r["model"] for r in json.loads(out)["rollouts"]] == ["kn"]


def test_fail_on_destructive_exits_3(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_text(yaml.safe_dump({**BASE, "models": BASE["models"][:2]}, sort_keys=False))
    code, _, err = run_preview(capsys, str(repo), "--base", "HEAD", "--fail-on", "destructive")
    assert code == 3
    assert "destructive changes" in err


def test_fail_on_destructive_passes_a_safe_change(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo.write_text(yaml.safe_dump(bump(BASE, "std", "v2"), sort_keys=False))
    assert run_preview(capsys, str(repo), "--base", "HEAD", "--fail-on", "destructive")[0] == 0


def test_corrupt_lock_at_the_revision_exits_2(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock_path(repo).write_text("schemaVersion: 1\nstack: test\nmodels: 3\n")
    git(repo.parent.parent, "commit", "-qam", "broken lock")
    code, _, err = run_preview(capsys, str(repo), "--base", "HEAD")
    assert code == 2
    assert err.startswith(f"{lock_path(repo)}: models: input should be a valid dictionary")

"""``modelplane changed``: the stacks a change touches, through their locks, settings and includes.

The pull-request workflow previews exactly these files. A git pathspec such as ``stacks/*.yaml``
cannot say it: it also matches the shared fragments stacks include (which are not stacks, so
their preview fails), and it misses a stack whose only change is in a file it includes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelplane.cli import main
from tests.rollout.builders import T0, stack_data

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two stacks; ``a`` takes its models from a shared fragment, ``b`` has a lock and Pulumi settings."""
    stacks = tmp_path / "stacks"
    (stacks / "shared").mkdir(parents=True)
    a = stack_data("standard")
    models = a.pop("models")
    a["include"] = ["shared/models.yaml"]
    (stacks / "shared" / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    (stacks / "a.yaml").write_text(yaml.safe_dump(a, sort_keys=False))
    b = stack_data("knative")
    b["stack"]["name"] = "b"
    (stacks / "b.yaml").write_text(yaml.safe_dump(b, sort_keys=False))
    assert main(["--quiet", "rollout", "apply", str(stacks / "b.yaml"), "--now", T0]) == 0
    (stacks / "Pulumi.b.yaml").write_text("config: {}\n")
    (tmp_path / "README.md").write_text("x\n")
    _git(tmp_path, "init", "--quiet", "--initial-branch=main")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "--quiet", "-m", "base")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def changed(capsys: pytest.CaptureFixture[str], *paths: str) -> list[str]:
    capsys.readouterr()
    assert main(["changed", *(paths or ("stacks",)), "--base", "main"]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_stack_is_loadable_where_the_test_builds_it(repo: Path) -> None:
    assert main(["validate", "stacks/a.yaml", "stacks/b.yaml"]) == 0


def test_nothing_changed_lists_nothing(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert changed(capsys) == []
    (repo / "README.md").write_text("y\n")
    assert changed(capsys) == []


def test_a_change_to_an_included_file_previews_the_stack_that_includes_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fragment = repo / "stacks" / "shared" / "models.yaml"
    fragment.write_text(fragment.read_text().replace("v1", "v2"))
    # The fragment itself is not a stack: `git diff -- 'stacks/*.yaml'` would have listed it.
    assert changed(capsys) == ["stacks/a.yaml"]
    capsys.readouterr()
    assert main(["changed", "stacks", "--base", "main", "--output", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stacks"] == [
        {"file": "stacks/a.yaml", "deleted": False, "because": ["stacks/shared/models.yaml"]}
    ]


def test_a_lock_image_lock_or_pulumi_settings_change_previews_its_stack(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = repo / "stacks" / "b.lock.yaml"
    lock.write_text(lock.read_text() + "# a comment\n")
    assert changed(capsys) == ["stacks/b.yaml"]
    _git(repo, "checkout", "--quiet", "--", "stacks/b.lock.yaml")
    (repo / "stacks" / "Pulumi.b.yaml").write_text("config: {a: 1}\n")
    assert changed(capsys) == ["stacks/b.yaml"]
    _git(repo, "checkout", "--quiet", "--", "stacks/Pulumi.b.yaml")
    (repo / "stacks" / "b.images.lock.yaml").write_text("# a new image lock\n")
    assert changed(capsys) == ["stacks/b.yaml"]


def test_committed_changes_count_from_where_the_branch_left_the_base(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _git(repo, "checkout", "--quiet", "-b", "feature")
    lock = repo / "stacks" / "b.lock.yaml"
    lock.write_text(lock.read_text() + "# feature\n")
    _git(repo, "commit", "--quiet", "-am", "feature")
    _git(repo, "checkout", "--quiet", "main")
    fragment = repo / "stacks" / "shared" / "models.yaml"
    fragment.write_text(fragment.read_text().replace("v1", "v3"))
    _git(repo, "commit", "--quiet", "-am", "main moves on")
    _git(repo, "checkout", "--quiet", "feature")
    # main's own later change to a's fragment is not this branch's change.
    assert changed(capsys) == ["stacks/b.yaml"]


def test_a_deleted_stack_and_a_new_one_are_listed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "stacks" / "b.yaml").unlink()
    (repo / "stacks" / "b.lock.yaml").unlink()
    shutil.copy(repo / "stacks" / "a.yaml", repo / "stacks" / "c.yaml")
    assert changed(capsys) == ["stacks/b.yaml", "stacks/c.yaml"]
    capsys.readouterr()
    assert main(["changed", "stacks", "--base", "main", "--output", "json"]) == 0
    stacks = json.loads(capsys.readouterr().out)["stacks"]
    assert [(s["file"], s["deleted"]) for s in stacks] == [("stacks/b.yaml", True), ("stacks/c.yaml", False)]


def test_a_stack_that_no_longer_loads_is_still_listed(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "stacks" / "a.yaml").write_text("stack: [not, a, mapping\n")
    assert changed(capsys) == ["stacks/a.yaml"]


def test_an_unknown_base_is_an_input_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["changed", "stacks", "--base", "no-such-rev"]) == 2
    assert "--base 'no-such-rev' is not a Git revision" in capsys.readouterr().err


def test_outside_a_repository_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    monkeypatch.chdir(alone)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    capsys.readouterr()
    assert main(["changed", ".", "--base", "main"]) == 2
    assert "not in a Git repository" in capsys.readouterr().err

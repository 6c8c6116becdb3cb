"""``render --check`` finds a stale ``deploy/<stack>/``; rollout commands say what to commit or refresh it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from modelplane.cli import main
from modelplane.rollout.lock import lock_path
from tests.rollout.builders import T0, T1, T2, bump, stack_data, write_stack

CANARY = {"strategy": "canary", "steps": [10, 50, 100], "stepInterval": "10m"}


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project directory holding stacks/test.yaml, as the working directory."""
    (tmp_path / "stacks").mkdir()
    write_stack(tmp_path / "stacks", stack_data("standard", rollout=CANARY))
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


STACK = "stacks/test.yaml"
DEPLOY = Path("deploy/test")


def test_a_fresh_render_is_up_to_date(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", STACK]) == 0
    capsys.readouterr()
    assert main(["render", STACK, "--check"]) == 0
    assert capsys.readouterr().out.startswith("deploy/test/: up to date (")


def test_every_kind_of_staleness_is_listed_and_nothing_is_written(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", STACK]) == 0
    isvc = DEPLOY / "platform" / "team--inferenceservice--std.yaml"
    isvc.write_text(isvc.read_text().replace("minReplicas: 2", "minReplicas: 3"))
    (DEPLOY / "platform" / "team--serviceaccount--storage-default.yaml").unlink(missing_ok=True)
    gone = sorted((DEPLOY / "platform").glob("team--networkpolicy--*.yaml"))[0]
    gone.unlink()
    (DEPLOY / "platform" / "stray.yaml").write_text("kind: ConfigMap\n")
    capsys.readouterr()
    assert main(["render", STACK, "--check"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert f"deploy/test/{gone.relative_to(DEPLOY).as_posix()}: missing" in err
    assert "deploy/test/platform/stray.yaml: not rendered" in err
    assert "deploy/test/platform/team--inferenceservice--std.yaml: differs" in err
    assert err[-1].startswith("deploy/test/: ")
    assert err[-1].endswith(
        " stale files; run `modelplane render stacks/test.yaml` and commit the result with the lock"
    )
    assert (DEPLOY / "platform" / "stray.yaml").exists()  # --check writes nothing


def test_check_as_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", STACK]) == 0
    (DEPLOY / "platform" / "kustomization.yaml").unlink()
    capsys.readouterr()
    assert main(["render", STACK, "--check", "--format", "json"]) == 3
    report = yaml.safe_load(capsys.readouterr().out)
    assert (report["upToDate"], report["stale"]) == (
        False,
        [{"path": "deploy/test/platform/kustomization.yaml", "kind": "missing"}],
    )


def test_a_lock_change_makes_the_render_stale_and_render_refreshes_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "apply", STACK, "--now", T0, "--render"]) == 0
    assert main(["render", STACK, "--check"]) == 0
    Path(STACK).write_text(yaml.safe_dump(bump(yaml.safe_load(Path(STACK).read_text()), "std", "v2")))
    assert main(["rollout", "apply", STACK, "--now", T1]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        f"commit together: {lock_path(STACK)} deploy/test/",
        "deploy/test/ no longer matches the lock (1 files): refresh it with `modelplane render stacks/test.yaml` "
        "(or pass --render) before committing",
    ]
    assert main(["render", STACK, "--check"]) == 3
    assert main(["rollout", "advance", STACK, "--skip-gates", "--now", T2, "--render"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "deploy/test/: rendered (1 files changed)",
        f"commit together: {lock_path(STACK)} deploy/test/",
    ]
    assert main(["render", STACK, "--check"]) == 0


def test_the_engine_of_an_existing_render_is_kept(project: Path) -> None:
    assert main(["render", STACK, "--gitops", "argocd"]) == 0
    assert not (DEPLOY / "sync.yaml").exists()
    assert main(["render", STACK, "--check"]) == 0
    assert main(["render", STACK]) == 0
    assert not (DEPLOY / "sync.yaml").exists()
    assert main(["render", STACK, "--check", "--gitops", "flux"]) == 3


def test_check_of_a_stream_makes_no_sense(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", STACK, "-o", "-", "--check"]) == 2
    assert "--check compares a directory" in capsys.readouterr().err

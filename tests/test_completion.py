"""Shell completion: the generated script, run by the real bash, completes what the parser accepts."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from modelplane.cli import main


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "modelplane.bash"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["completion", "bash"]) == 0
    path.write_text(out.getvalue())
    return path


def complete(script: Path, line: str, cwd: Path | None = None) -> list[str]:
    """What bash completes for the command line ``line`` (the cursor at its end)."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    words = line.split(" ")
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_modelplane_complete\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=cwd,
    )
    return sorted(filter(None, done.stdout.splitlines()))


def test_the_script_is_valid_bash(script: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)


def test_top_level_commands(script: Path) -> None:
    assert complete(script, "modelplane ro") == ["rollout"]
    assert {"validate", "render", "rollout", "preview", "init", "import", "completion"} <= set(
        complete(script, "modelplane ")
    )


def test_nested_commands_and_their_options(script: Path) -> None:
    assert complete(script, "modelplane rollout re") == ["reconcile", "resume"]
    assert complete(script, "modelplane rollout advance stacks/prod.yaml --sk") == ["--skip-gates"]
    assert "--all" in complete(script, "modelplane rollout promote --")
    assert "--all" not in complete(script, "modelplane rollout advance --")


def test_option_values_with_choices(script: Path) -> None:
    assert complete(script, "modelplane render stacks/prod.yaml --gitops ") == ["argocd", "flux"]
    assert complete(script, "modelplane rollout status f.yaml --output j") == ["json"]


def test_files_elsewhere(script: Path, tmp_path: Path) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "prod.yaml").write_text("")
    assert complete(script, "modelplane validate stacks/p", cwd=tmp_path) == ["stacks/prod.yaml"]


def test_zsh_script_wraps_the_bash_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert "autoload -U +X bashcompinit && bashcompinit\n" in out
    assert "complete -o filenames -F _modelplane_complete modelplane" in out

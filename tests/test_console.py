"""The command line's manners: progress on a terminal only, plain help texts, --version."""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from modelplane.cli import main, make_parser, version
from tests.conftest import ROOT, STACKS

MODELPLANE = str(Path(sys.executable).parent / "modelplane")
PROD = str(STACKS / "prod.yaml")


def _stderr_on_a_terminal(*argv: str) -> tuple[int, str]:
    """Run modelplane with stderr on a pseudo-terminal; its exit code and what the terminal showed."""
    leader, follower = pty.openpty()
    env = {**os.environ, "MODELPLANE_PROGRESS_DELAY": "0", "TERM": "xterm"}
    process = subprocess.Popen(
        [MODELPLANE, *argv], stdout=subprocess.DEVNULL, stderr=follower, env=env, cwd=ROOT
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return process.wait(timeout=120), shown.decode("utf-8", "replace")


def test_progress_shows_on_a_terminal() -> None:
    code, shown = _stderr_on_a_terminal("validate", PROD)
    assert code == 0
    assert f"loading {PROD}" in shown or f"rendering {PROD}" in shown
    assert shown.endswith("\r\x1b[K")  # the line is erased when the step ends


@pytest.mark.parametrize(
    ("argv", "phase"),
    [
        (["render", PROD, "-o", "-"], "rendering stacks/prod.yaml ("),
        (["plan", PROD], "planning stacks/prod.yaml ("),
        (["rollout", "status", PROD], "reading stacks/prod.yaml and its lock"),
        (["preview", PROD, "--base", PROD], "loading stacks/prod.yaml"),
    ],
    ids=["render", "plan", "rollout-status", "preview"],
)
def test_long_commands_show_their_phase_and_count(argv: list[str], phase: str) -> None:
    code, shown = _stderr_on_a_terminal(*argv)
    assert code == 0
    assert phase.replace("stacks/prod.yaml", PROD) in shown
    assert " models)" in shown or "lock" in shown or "loading" in shown


def test_no_progress_with_quiet_on_a_terminal() -> None:
    code, shown = _stderr_on_a_terminal("validate", PROD, "--quiet")
    assert (code, shown) == (0, "")


def test_no_progress_when_piped() -> None:
    env = {**os.environ, "MODELPLANE_PROGRESS_DELAY": "0"}
    done = subprocess.run(
        [MODELPLANE, "validate", PROD], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"{PROD}: valid (")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def test_help_texts_carry_no_raw_markup() -> None:
    marked = {
        p.prog: p.format_help()
        for p in _parsers(make_parser())
        if any(mark in p.format_help() for mark in ("`", "**", "::"))
    }
    assert marked == {}


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for parser in _parsers(make_parser()):
        assert main([*parser.prog.split()[1:], "--help"]) == 0
        assert capsys.readouterr().out.startswith(f"usage: {parser.prog}")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"modelplane {version()}\n"
    assert version().count(".") >= 2

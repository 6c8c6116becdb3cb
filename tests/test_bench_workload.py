"""The benchmark's generated workload stays a stack every command accepts.

``make bench`` times commands on a generated stack, its lock and a changed head; a stack the
commands refuse makes the benchmark stop (or, worse, time refusals). That happened once: prod
began to pin images by digest and the generated prod stack had no image lock. Here a small
workload goes through the same commands the benchmark times, and each must succeed.
"""

from __future__ import annotations

import sys

import pytest

from modelplane.cli import main
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import catalog


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> catalog.Workload:
    return catalog.generate(tmp_path_factory.mktemp("bench") / "w", 200)


@pytest.mark.parametrize(
    "command",
    [
        ["validate", "STACK"],
        ["validate", "JSON"],
        ["render", "STACK", "-o", "-"],
        ["plan", "STACK"],
        ["rollout", "status", "STACK"],
        ["preview", "HEAD", "--base", "STACK", "--format", "json"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_the_benchmark_commands_accept_the_generated_workload(
    workload: catalog.Workload, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"STACK": workload.stack, "JSON": workload.stack_json, "HEAD": workload.head}
    argv = [str(files[a]) if a in files else a for a in command]
    capsys.readouterr()
    assert main(["--quiet", *argv]) == 0, capsys.readouterr().err[-2000:]

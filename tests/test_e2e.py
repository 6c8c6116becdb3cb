"""`make e2e`: the kind + `pulumi up -s dev` run, where docker, kind and pulumi exist.

It takes many minutes, so beyond the tools it also needs MODELPLANE_E2E=1. Everywhere else it
skips with the reason; the script's own input handling is still checked. The script's other
path, the local control plane, is ``tests/cluster/test_pulumi.py`` (run by ``make test`` too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "e2e.sh"
CHECK = ROOT / "scripts" / "e2e_check.py"


def _missing_tools() -> list[str]:
    missing = []
    docker = shutil.which("docker")
    if docker is None:
        missing.append("docker is not installed")
    elif subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False).returncode != 0:
        missing.append("the Docker engine is not reachable (docker info failed)")
    for tool in ("kind", "pulumi"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} is not installed")
    return missing


def test_e2e_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0


def test_e2e_check_shows_usage() -> None:
    result = subprocess.run(
        [sys.executable, str(CHECK), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "InferenceService exists" in result.stdout


def _script(mode: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPLANE_E2E_MODE": mode}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def test_e2e_script_names_what_kind_mode_is_missing() -> None:
    missing = _missing_tools()
    if not missing:
        pytest.skip("docker, kind and pulumi are all present; test_kind_pulumi_up covers the run")
    result = _script("kind")
    assert result.returncode == 2
    assert result.stderr.startswith("e2e: missing: ")


def test_e2e_local_mode_without_go_names_both_ways_out(tmp_path: Path) -> None:
    # A PATH with bash and the coreutils the script uses, and no go.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "printf"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    result = _script("local", str(bin_dir))
    assert (result.returncode, result.stderr) == (
        2,
        "e2e: missing: go (for the local control plane and Pulumi), or docker, kind and pulumi (for kind)\n",
    )


def test_e2e_refuses_an_unknown_mode() -> None:
    result = _script("minikube")
    assert (result.returncode, result.stderr) == (
        2,
        "e2e: MODELPLANE_E2E_MODE must be auto, kind or local (got 'minikube')\n",
    )


def test_kind_pulumi_up() -> None:
    missing = _missing_tools()
    if missing:
        pytest.skip("e2e cannot run here: " + "; ".join(missing))
    if os.environ.get("MODELPLANE_E2E") != "1":
        pytest.skip("e2e takes many minutes; set MODELPLANE_E2E=1 to run it")
    result = subprocess.run(
        ["bash", str(SCRIPT)], timeout=3600, check=False, env={**os.environ, "MODELPLANE_E2E_MODE": "kind"}
    )
    assert result.returncode == 0

"""The rollout and preview packages are pure: importing them never imports Pulumi."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "modelplane.rollout.version",
    "modelplane.rollout.lock",
    "modelplane.rollout.diff",
    "modelplane.rollout.state",
    "modelplane.rollout.compile",
    "modelplane.rollout.gates",
    "modelplane.rollout.cli",
    "modelplane.preview.preview",
    "modelplane.preview.markdown",
    "modelplane.preview.capacity",
    "modelplane.preview.cli",
]


def test_importing_rollout_and_preview_does_not_import_pulumi() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pulumi'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

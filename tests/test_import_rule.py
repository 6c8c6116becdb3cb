"""The pure core never imports Pulumi: stack loading, objects(), render, rollout and preview are data in, data out."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "components" / "modelplane"
PULUMI_ALLOWED = PACKAGE / "resources"


def _pure_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if PULUMI_ALLOWED not in p.parents)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pure_modules_do_not_import_pulumi_or_resources() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n
            for n in _imports(path)
            if n.split(".")[0] in ("pulumi", "pulumi_kubernetes") or n.startswith("modelplane.resources")
        )
        for path in _pure_modules()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_the_package_and_cli_loads_no_pulumi() -> None:
    code = (
        "import sys, modelplane, modelplane.cli, modelplane.stack, modelplane.render, modelplane.serving_platform;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_kubernetes')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_platform_directory_holds_only_the_program() -> None:
    files = sorted(
        p.name
        for p in (ROOT / "platform").iterdir()
        if not p.name.startswith(".") and p.name != "__pycache__"
    )
    assert files == ["__main__.py"]

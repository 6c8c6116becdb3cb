"""The house of docs/architecture.md: every module in a layer, no import cycle, no Pulumi at start-up.

Which layer may import which is checked by the import-linter contracts in ``pyproject.toml``
(``make lint`` runs them). These tests keep the contracts honest: a module outside every layer
would be checked by none, and a cycle inside a layer whose modules may import each other would
slip through. Importing the package and the CLI is checked at run time, too: the contracts see
imports, not what Python loads.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "components" / "modelplane"
CONTAINERS = frozenset({"modelplane", "modelplane.rollout", "modelplane.preview"})
"""Packages that only hold modules of several layers: they import nothing themselves."""


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layers() -> list[list[str]]:
    (layered,) = [c for c in _contracts() if c["type"] == "layers"]
    return [[m.strip() for m in line.replace(":", "|").split("|")] for line in layered["layers"]]


def _modules() -> set[str]:
    """Every module of the package, by its import name."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _graph() -> grimp.ImportGraph:
    # Imports under TYPE_CHECKING count: a reader and mypy see them.
    return grimp.build_graph("modelplane", cache_dir=None)


def test_every_module_sits_in_exactly_one_layer() -> None:
    layers = [module for line in _layers() for module in line]
    assert len(layers) == len(set(layers))
    homes = {m: [layer for layer in layers if m == layer or m.startswith(layer + ".")] for m in _modules()}
    assert {m: found for m, found in homes.items() if len(found) != 1 and m not in CONTAINERS} == {}


def test_packages_that_span_layers_import_nothing_themselves() -> None:
    graph = _graph()
    imports = {p: graph.find_modules_directly_imported_by(p) for p in CONTAINERS - {"modelplane"}}
    assert imports == {p: set() for p in imports}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert _cycles(edges) == []


def test_no_part_and_no_rollout_engine_module_mentions_the_whole_stack() -> None:
    (contract,) = [c for c in _contracts() if "never import the whole" in c["name"]]
    sources = {m: PACKAGE.parent / (m.replace(".", "/") + ".py") for m in contract["source_modules"]}
    assert all(path.is_file() for path in sources.values())
    assert [
        m for m, path in sources.items() if "ServingPlatformArgs" in path.read_text(encoding="utf-8")
    ] == []


def test_importing_the_package_the_cli_and_every_pure_module_loads_no_pulumi() -> None:
    pure = sorted(m for m in _modules() if not m.startswith("modelplane.resources"))
    code = (
        "import importlib, sys\n"
        f"for name in {pure!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_kubernetes')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "modelplane.cli" in pure
    assert out.stdout.strip() == "[]"


def test_platform_directory_holds_only_the_program() -> None:
    files = sorted(
        p.name
        for p in (ROOT / "platform").iterdir()
        if not p.name.startswith(".") and p.name != "__pycache__"
    )
    assert files == ["__main__.py"]

"""The real Mermaid parser for tests: npm's ``mermaid`` (with ``jsdom`` for its DOM), cached outside the repository.

``ensure()`` installs the pinned packages with npm into
``${XDG_CACHE_HOME:-~/.cache}/modelplane/mermaid`` once; ``parse`` runs ``tests/js/mermaid_parse.mjs``
there with Node on each text and returns, per text, the diagram type or Mermaid's parse error.
``make test`` installs them before pytest (``python -m tests.mermaid``); tests skip with the
reason when Node or npm is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGES = ("mermaid@11.17.2", "jsdom@26.1.0")
SCRIPT = Path(__file__).parent / "js" / "mermaid_parse.mjs"


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "modelplane" / "mermaid"


def ensure() -> Path:
    """The directory holding the pinned packages, installed with npm when missing."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        raise FileNotFoundError(f"{' and '.join(missing)} not installed (Debian packages nodejs, npm)")
    root = cache_dir()
    stamp = root / f".installed-{'-'.join(PACKAGES).replace('/', '_')}"
    if not stamp.exists():
        root.mkdir(parents=True, exist_ok=True)
        (root / "package.json").write_text('{"private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", *PACKAGES],
            cwd=root,
            check=True,
            capture_output=True,
            timeout=600,
        )
        stamp.write_text("")
    return root


def parse(texts: list[str]) -> list[dict[str, str | bool]]:
    """Each text as Mermaid parses it: ``{"ok": True, "type": ...}`` or ``{"ok": False, "error": ...}``."""
    try:
        root = ensure()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    shutil.copyfile(SCRIPT, root / SCRIPT.name)
    result = subprocess.run(
        ["node", SCRIPT.name, json.dumps(texts)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answers: list[dict[str, str | bool]] = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(texts), result.stdout + result.stderr
    return answers


if __name__ == "__main__":
    try:
        print(f"mermaid parser: {ensure()}")
    except FileNotFoundError as err:
        print(f"mermaid parser: {err}; the diagram tests will skip", file=sys.stderr)

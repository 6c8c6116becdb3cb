"""The README's preview diagrams are what ``modelplane preview`` draws today (``python -m tests.readme_preview``)."""

from __future__ import annotations

import re

from tests.mermaid import parse
from tests.readme_preview import BEGIN, END, README, block


def test_the_diagrams_are_current() -> None:
    current = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), README.read_text(), re.DOTALL)
    assert current is not None
    assert current.group(0) == block(), "stale: run python -m tests.readme_preview"


def test_the_diagrams_parse_with_mermaid() -> None:
    diagrams = re.findall(r"```mermaid\n(.*?)\n```", block(), flags=re.S)
    assert [a.get("type") for a in parse(diagrams)] == ["flowchart-v2", "xychart"]

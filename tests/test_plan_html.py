"""``modelplane plan --format html``: one self-contained page, opened by headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelplane.capacity import plan, to_dict
from modelplane.cli import main
from modelplane.plan_html import to_html
from modelplane.stack import load_stack
from tests.chromium import open_page, screenshot
from tests.conftest import EXAMPLE_STACKS, STACKS


def _page(tmp_path: Path, stack: Path) -> Path:
    path = tmp_path / f"{stack.stem}.html"
    path.write_text(to_html(to_dict(plan(load_stack(stack)))))
    return path


@pytest.mark.parametrize("stack", EXAMPLE_STACKS, ids=[p.stem for p in EXAMPLE_STACKS])
def test_each_plan_page_renders_in_chromium_without_console_messages(tmp_path: Path, stack: Path) -> None:
    page = open_page(_page(tmp_path, stack))
    assert page.console == []
    data = to_dict(plan(load_stack(stack)))
    # Chromium built the charts: two bars (min, max) per figure, and a mesh runtime's memory bar.
    bars = 2 * (1 + len(data["quotas"])) + 3 * len(data["mesh"])
    bars += sum(2 * (2 + len(set(p["min"]["units"]) | set(p["max"]["units"]))) for p in data["pools"])
    assert page.dom.count("<svg") == bars
    assert f"Capacity plan: {data['stack']}" in page.dom


def test_the_console_check_sees_a_broken_page(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><p>x</p><script>undefinedFunction()</script>")
    assert any("Uncaught ReferenceError" in m for m in open_page(broken).console)


def test_the_page_fetches_nothing() -> None:
    text = to_html(to_dict(plan(load_stack(STACKS / "prod.yaml"))))
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls == {"http://www.w3.org/2000/svg"}  # the SVG namespace name, never fetched
    assert "<script" not in text and "<link" not in text and "<img" not in text


def test_text_from_the_stack_is_escaped() -> None:
    data = to_dict(plan(load_stack(STACKS / "prod.yaml")))
    data["warnings"] = ["<script>alert(1)</script>"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in to_html(data)
    assert "<script>" not in to_html(data)


def test_the_same_plan_gives_the_same_page() -> None:
    data = to_dict(plan(load_stack(STACKS / "prod.yaml")))
    assert to_html(data) == to_html(data)


def test_the_command_writes_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(STACKS / "prod.yaml"), "--format", "html"]) == 0
    assert capsys.readouterr().out == to_html(to_dict(plan(load_stack(STACKS / "prod.yaml"))))


def test_a_screenshot_shows_the_page(tmp_path: Path) -> None:
    png = tmp_path / "plan.png"
    screenshot(_page(tmp_path, STACKS / "prod.yaml"), png, width=800, height=600)
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (800, 600)

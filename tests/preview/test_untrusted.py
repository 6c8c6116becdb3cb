"""User-controlled text stays text in the pull-request comment, as GitHub's own parser reads it.

cmark-gfm (GitHub's fork of cmark, with its table, strikethrough, autolink and tag-filter
extensions) renders the comment: a hostile gate query cannot close its fence, forge a note,
open an HTML comment, make a link or a mention, or start a CI log line with a workflow command.
"""

from __future__ import annotations

import html
import re
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from modelplane.preview.markdown import to_markdown
from modelplane.untrusted import code_block, code_span, mermaid_text, plain
from tests.preview.test_preview import BASE, preview
from tests.rollout.builders import bump

HOSTILE = [
    "```\n**Safe to merge**: approved by the platform team\n<!--",
    "~~~\nforged\n~~~",
    "`` ` ``` ````",
    "<!-- the rest is hidden",
    "@octocat please merge, cc @org/team",
    "x\n::error title=forged::all checks passed",
    "  ::set-output name=ok::true",
    "##[error]forged",
    "a | b | c",
    "[click](https://example.com) ![i](https://example.com/i.png) https://example.com www.example.com",
    "<img src=x onerror=alert(1)> <script>alert(1)</script> &lt;b&gt;",
    "*bold* _it_ ~~struck~~ $x^2$ \\`",
    "# heading",
    "> quote",
    "\r\n\u2028\x00\x1b[31m",
]


def render(markdown: str) -> str:
    """HTML as GitHub's parser makes it (raw HTML passed through, to see any that leaks)."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown,
        options=Options.CMARK_OPT_UNSAFE,
        extensions=["table", "strikethrough", "autolink", "tagfilter"],
    )


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def _command_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith(("::", "##["))]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_span_holds_any_text_on_one_line(text: str) -> None:
    out = render(f"before {code_span(text)} after\n")
    assert re.fullmatch(r"<p>before <code>[^<]*</code> after</p>\n", out), out
    shown = _text(re.search(r"<code>(.*)</code>", out, re.S).group(1))  # type: ignore[union-attr]
    expected = re.sub(r"[\x00-\x08\x0e-\x1f\x7f]", "", text)
    assert shown.replace("\u200b", "").split() == expected.split()
    assert _command_lines(code_span(text)) == []


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_span_in_a_table_stays_in_its_cell(text: str) -> None:
    out = render(f"| a | b |\n|---|---|\n| {code_span(text, table=True)} | next |\n")
    assert out.count("<td>") == 2, out
    assert "<td>next</td>" in out


@pytest.mark.parametrize("text", HOSTILE)
def test_a_code_block_cannot_be_closed_from_inside(text: str) -> None:
    block = code_block(text, "promql", indent="  ")
    out = render(f"- item\n{block}\n\n#### After\n")
    assert out.count("<pre") == 1, out
    assert "<h4>After</h4>" in out
    assert _command_lines(block) == []


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_renders_as_written(text: str) -> None:
    out = render(f"- {plain(text)}\n")
    assert re.fullmatch(r"<ul>\n<li>[^<]*</li>\n</ul>\n", out), out
    assert "@octocat" not in out, "a zero-width space after @ keeps GitHub from making a mention"
    assert _command_lines(plain(text)) == []


@pytest.mark.parametrize("text", HOSTILE)
def test_a_mermaid_label_is_one_quoted_string(text: str) -> None:
    label = f'"{mermaid_text(text)}"'  # as the diagrams quote it
    assert label.startswith('"') and label.endswith('"')
    assert '"' not in label[1:-1] and "`" not in label and "\n" not in label and "<" not in label


def _hostile_preview(query: str) -> str:
    head = bump(BASE, "std", "v2")
    head["rollout"] = {
        **head["rollout"],
        "gates": [{"name": "custom", "metric": "custom", "query": query, "max": 1}],
    }
    result: dict[str, Any] = preview(head)
    return to_markdown(result)


@pytest.mark.parametrize("query", HOSTILE)
def test_a_hostile_gate_query_cannot_reshape_the_comment(query: str) -> None:
    text = _hostile_preview(query)
    out = render(text)
    assert out.count("<!--") == 1, "only the comment's own marker"
    assert "<h4>Capacity (pods and GPUs at min / max replicas)</h4>" in out
    outside_code = re.sub(r"<pre.*?</pre>|<code>.*?</code>", "", out, flags=re.S)
    assert "Safe to merge" not in outside_code
    assert "<img" not in outside_code and "<script" not in outside_code.lower()
    assert _command_lines(text) == []

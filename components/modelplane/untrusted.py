r"""User-controlled text placed in Markdown, Mermaid or a CI log, so that it stays text.

A pull-request preview is posted as a comment on a public pull request and printed in CI logs,
and most of what it shows comes from the stack (gate queries, names, descriptions, reasons) or
the command line (``--base``). Placed raw, a gate query can close the code fence it sits in,
forge a "safe to merge" note, hide the rest of the comment behind ``<!--``, notify people with
``@name``, or start a CI log line with ``::`` (a workflow command). Every template that shows
such text goes through one of these functions:

- ``code_span``: inline code whose fence is longer than any backtick run in the text (CommonMark
  0.31 section 6.1, "Code spans"), on one line; in a table, ``|`` is escaped as ``\\|``, which
  GitHub's table extension honours even inside a code span.
- ``code_block``: a fenced block whose fence is longer than any backtick run in the text
  (CommonMark section 4.5: a closing fence is at least as long as the opening one).
- ``plain``: prose on one line with the characters that start inline markup backslash-escaped
  (CommonMark section 2.4: emphasis, code, links, strikethrough, math, tables, a heading's
  ``#``), ``<`` and ``&`` as entities (so no HTML, comment or autolink), ``scheme://`` and ``www.`` escaped (no link), and ``@`` followed by a
  zero-width space so no mention is made.
- ``mermaid_text``: text inside a quoted Mermaid label, where every
  character outside a small safe set is written as Mermaid's decimal entity code (``#34;``,
  ``#96;``, ``#10;``...; Mermaid's flowchart syntax, "Entity codes to escape characters"), so a
  label can neither end its quotes, break its line, nor close the fence around the diagram.

Each also breaks a line that would start with ``::`` or ``##[`` after leading whitespace: GitHub's
runner reads such a line in a log as a command (actions/runner ``ActionCommand.TryParseV2``
trims leading whitespace, then tests the ``::`` prefix); a zero-width space, which .NET does not
count as whitespace, goes in front. The Markdown guarantees are checked with GitHub's own parser
(cmark-gfm) in ``tests/preview/test_untrusted.py``; GitHub's mention and Mermaid rendering run
only on github.com, so those two are taken from the documentation cited above.
"""

from __future__ import annotations

import re

__all__ = ["code_block", "code_span", "mermaid_text", "plain"]

_ZWSP = "\u200b"
_COMMAND_LINE = re.compile(r"^(\s*)(::|##\[)", re.MULTILINE)
_BACKTICKS = re.compile(r"`+")
_MARKUP = re.compile(r"([\\`*_\[\]|~#$>])")
_AUTOLINK = re.compile(r"(?i)(?<=[a-z])(:)(?=//)|(?<=www)(\.)")
"""What GitHub's autolink extension would turn into a link: ``scheme://`` and ``www.``."""
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def _no_commands(text: str) -> str:
    """``text`` with a zero-width space before a ``::`` or ``##[`` that would start a log line."""
    return _COMMAND_LINE.sub(lambda m: f"{m.group(1)}{_ZWSP}{m.group(2)}", text)


def _one_line(text: str) -> str:
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", text))


def _fence_for(text: str, minimum: int) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(minimum, longest + 1)


def code_span(text: str, *, table: bool = False) -> str:
    """``text`` as inline code on one line; ``table`` escapes ``|`` for a table cell."""
    body = _one_line(text)
    if table:
        body = body.replace("|", "\\|")
    fence = _fence_for(body, 1)
    # A span that starts or ends with a backtick (or is all spaces) needs a space of padding,
    # which CommonMark strips again.
    if body.startswith("`") or body.endswith("`") or not body.strip():
        body = f" {body} "
    return _no_commands(f"{fence}{body}{fence}")


def code_block(text: str, info: str = "", *, indent: str = "") -> str:
    """``text`` as a fenced code block (``info`` names its language), every line indented by ``indent``."""
    body = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    fence = _fence_for(body, 3)
    lines = [f"{fence}{re.sub(r'[^A-Za-z0-9_+-]', '', info)}", *body.split("\n"), fence]
    return _no_commands("\n".join(f"{indent}{line}" for line in lines))


def plain(text: str) -> str:
    """``text`` as Markdown prose that renders exactly as written: no markup, HTML, mention or link."""
    escaped = _MARKUP.sub(r"\\\1", _one_line(text)).replace("&", "&amp;").replace("<", "&lt;")
    escaped = _AUTOLINK.sub(lambda m: "\\" + m.group(), escaped)
    return _no_commands(escaped.replace("@", "@" + _ZWSP))


_MERMAID_SAFE = re.compile(r"[A-Za-z0-9 .,:/%=+()_\-…]")
"""Characters a Mermaid label shows as they are; every other one is written as an entity code."""


def mermaid_text(text: str) -> str:
    """``text`` for inside a quoted Mermaid label: safe characters kept, every other one as ``#<code>;``.

    A whitelist, so no character that could end the quotes, start a directive (``%%``), a click
    statement or HTML, or break the line survives as itself: a newline is ``#10;``.
    """
    return "".join(ch if _MERMAID_SAFE.fullmatch(ch) else f"#{ord(ch)};" for ch in text)

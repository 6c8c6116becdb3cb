"""Shell completion for ``modelplane``: generated from the command line's own parser."""

from __future__ import annotations

from typing import Any


def add_completion_parser(sub: Any) -> None:
    """Add ``modelplane completion SHELL``."""

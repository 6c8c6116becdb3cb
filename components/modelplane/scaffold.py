"""Starting and importing stacks."""

from __future__ import annotations

from typing import Any


def add_init_parser(sub: Any) -> None:
    """Add ``modelplane init``."""


def add_import_parser(sub: Any) -> None:
    """Add ``modelplane import``."""

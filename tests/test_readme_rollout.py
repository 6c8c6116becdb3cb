"""The README's rollout walkthrough is what the commands print today (``python -m tests.readme_rollout``)."""

from __future__ import annotations

import re

from tests.readme_rollout import BEGIN, END, README, block


def test_the_walkthrough_is_current() -> None:
    current = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), README.read_text(), re.DOTALL)
    assert current is not None
    assert current.group(0) == block(), "stale: run python -m tests.readme_rollout"

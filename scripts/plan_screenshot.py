"""Regenerate the README's picture of the capacity plan page: docs/images/plan.png.

Renders ``modelplane plan stacks/prod.yaml --format html`` and photographs it with headless
Chromium (Debian's ``chromium``). Run from the project root: ``python scripts/plan_screenshot.py``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modelplane.capacity import plan, to_dict  # noqa: E402
from modelplane.plan_html import to_html  # noqa: E402
from modelplane.stack import load_stack  # noqa: E402
from tests.chromium import screenshot  # noqa: E402

OUT = ROOT / "docs" / "images" / "plan.png"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "plan.html"
        page.write_text(to_html(to_dict(plan(load_stack(ROOT / "stacks" / "prod.yaml")))))
        OUT.parent.mkdir(parents=True, exist_ok=True)
        screenshot(page, OUT, width=1200, height=1240)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Write the JSON Schemas of stack files, generated from the models: python scripts/gen_schemas.py.

``tests/test_stack_schema.py`` fails when the checked-in files differ from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from modelplane.stack_schema import schema_text

OUT = Path(__file__).resolve().parent.parent / "components" / "modelplane" / "schemas"

if __name__ == "__main__":
    for name, fragment in (("stack", False), ("stack-fragment", True)):
        path = OUT / f"{name}.schema.json"
        path.write_text(schema_text(fragment=fragment), encoding="utf-8")
        print(f"wrote {path.relative_to(OUT.parent.parent.parent)}")

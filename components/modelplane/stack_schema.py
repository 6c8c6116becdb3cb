"""The JSON Schema of stack files, generated from the pydantic models that validate them.

Editors with the YAML language server complete and check a stack file that names it on its
first line (``# yaml-language-server: $schema=...``). The schema is generated, never written by
hand, so it cannot drift from what ``modelplane validate`` accepts: ``make test`` fails when the
checked-in copy (``modelplane/schemas/stack.schema.json``) is stale, and
``python scripts/gen_schemas.py`` rewrites it. It checks what a single field can say; the rules
between fields (a model's tenant exists, a runtime serves its format) are ``validate``'s.

A file that includes others, or is included, holds only part of a stack, so it names the
fragment schema instead: the same fields, nothing required.
"""

from __future__ import annotations

import json
from typing import Any

from modelplane.serving_platform import ServingPlatformArgs

DRAFT = "https://json-schema.org/draft/2020-12/schema"

INCLUDE_SCHEMA: dict[str, Any] = {
    "description": "Stack files merged under this one, in order (paths relative to this file): mappings "
    "merge key by key, lists of named items (models, tenants, gpuPools) merge by name, other lists and "
    "values are replaced by the later file. See docs/gitops.md.",
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
    ],
}


def _without_required(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_required(v) for k, v in node.items() if k != "required"}
    if isinstance(node, list):
        return [_without_required(v) for v in node]
    return node


def stack_schema(*, fragment: bool = False) -> dict[str, Any]:
    """The JSON Schema (2020-12) of a stack file, or of a fragment of one."""
    schema = ServingPlatformArgs.model_json_schema(by_alias=True, mode="validation")
    schema["properties"] = {"include": INCLUDE_SCHEMA, **schema["properties"]}
    if fragment:
        schema = _without_required(schema)
        schema["title"] = "modelplane stack file fragment"
    else:
        schema["title"] = "modelplane stack file"
    return {"$schema": DRAFT, **schema}


def schema_text(*, fragment: bool = False) -> str:
    """The schema as the checked-in file holds it: sorted keys, two-space indent, a final newline."""
    return json.dumps(stack_schema(fragment=fragment), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

"""The JSON Schema of stack files: generated from the models, checked in, named by the example stacks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelplane.cli import main
from modelplane.stack_schema import schema_text
from tests.conftest import EXAMPLE_STACKS, ROOT

SCHEMAS = ROOT / "components" / "modelplane" / "schemas"
LANGUAGE_SERVER = "# yaml-language-server: $schema="


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


@pytest.mark.parametrize(("name", "fragment"), [("stack", False), ("stack-fragment", True)])
def test_the_checked_in_schema_is_what_the_models_generate(name: str, fragment: bool) -> None:
    assert (SCHEMAS / f"{name}.schema.json").read_text() == schema_text(fragment=fragment), (
        "stale: run python scripts/gen_schemas.py"
    )


@pytest.mark.parametrize("path", EXAMPLE_STACKS, ids=lambda p: p.stem)
def test_example_stacks_name_the_schema_and_match_it(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(LANGUAGE_SERVER)
    assert (path.parent / first.removeprefix(LANGUAGE_SERVER)).resolve() == SCHEMAS / "stack.schema.json"
    data: Any = yaml.safe_load(path.read_text())
    assert list(validator("stack").iter_errors(data)) == []


def test_the_schema_catches_a_misspelt_field() -> None:
    data = yaml.safe_load((ROOT / "docs" / "examples" / "broken.yaml").read_text())
    messages = [e.message for e in validator("stack").iter_errors(data)]
    assert any("'minReplica' was unexpected" in m for m in messages), messages


def test_a_fragment_needs_nothing_but_still_refuses_unknown_fields() -> None:
    fragment = {"include": ["shared/base.yaml"], "models": [{"name": "fraud", "version": "v2"}]}
    assert list(validator("stack-fragment").iter_errors(fragment)) == []
    assert list(validator("stack").iter_errors(fragment)) != []  # the whole stack needs `stack`
    assert list(validator("stack-fragment").iter_errors({"modles": []})) != []


def test_the_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schemas", "stack"]) == 0
    assert capsys.readouterr().out == (SCHEMAS / "stack.schema.json").read_text()

"""The committed stack-file reference matches the models, and the models give it something to say."""

from __future__ import annotations

import importlib.util
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from modelplane.serving_platform import ServingPlatformArgs
from tests.conftest import ROOT

GENERATOR = ROOT / "scripts" / "gen_reference.py"
DOC = ROOT / "docs" / "stack-reference.md"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _load_generator()


@pytest.fixture(scope="module")
def reference(generator: ModuleType) -> str:
    text: str = generator.render()
    return text


def _models(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> Iterator[type[BaseModel]]:
    """Every model reachable from ``model``, through lists, mappings, optionals and unions."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    yield model
    for info in model.model_fields.values():
        pending = [info.annotation]
        while pending:
            annotation = pending.pop()
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                yield from _models(annotation, seen)
            else:
                pending.extend(typing.get_args(annotation))


SCHEMA_MODELS = list(_models(ServingPlatformArgs))


def test_committed_reference_is_current(reference: str) -> None:
    assert DOC.read_text(encoding="utf-8") == reference, (
        "docs/stack-reference.md is out of date; run: python scripts/gen_reference.py"
    )


def test_reference_is_deterministic(reference: str) -> None:
    assert _load_generator().render() == reference


@pytest.mark.parametrize("model", SCHEMA_MODELS, ids=lambda m: m.__name__)
def test_every_section_is_in_the_reference(reference: str, model: type[BaseModel]) -> None:
    assert f'<a id="{model.__name__.lower()}"></a>' in reference


@pytest.mark.parametrize("model", SCHEMA_MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    undocumented = [name for name, info in model.model_fields.items() if not (info.description or "").strip()]
    assert undocumented == []


def test_check_mode_reports_a_stale_file(generator: ModuleType, tmp_path: Path) -> None:
    stale = tmp_path / "stack-reference.md"
    stale.write_text("# outdated\n", encoding="utf-8")
    assert generator.main(["--check", "-o", str(stale)]) == 1


def test_check_mode_accepts_a_current_file(generator: ModuleType, tmp_path: Path) -> None:
    current = tmp_path / "stack-reference.md"
    current.write_text(generator.render(), encoding="utf-8")
    assert generator.main(["--check", "-o", str(current)]) == 0

"""Every example stack validates and renders to objects that pass both schema checks."""

from __future__ import annotations

from modelplane.build import build
from modelplane.render import flux_objects, flux_sync
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.validation import CrdSchemas
from tests.conftest import schema_problems


def test_example_stack_objects_pass_schemas(
    example_stack: ServingPlatformArgs, crd_schemas: CrdSchemas
) -> None:
    objects = build(example_stack).objects
    assert objects, "a stack renders at least its tenants and models"
    assert schema_problems(objects, example_stack, crd_schemas) == []


def test_example_stack_gitops_objects_pass_schemas(
    example_stack: ServingPlatformArgs, crd_schemas: CrdSchemas
) -> None:
    rendered = build(example_stack)
    carried = [obj for chart in rendered.charts for obj in chart.objects]
    gitops = (
        flux_objects(rendered.charts, stack=example_stack.stack.name)
        + flux_sync(example_stack.stack.name, "./deploy/x", staged=bool(carried))
        + carried
    )
    assert schema_problems(gitops, example_stack, crd_schemas) == []

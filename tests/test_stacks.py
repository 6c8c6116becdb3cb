"""Invariants across the example environments: what dev, staging and prod must agree on."""

from __future__ import annotations

import re

import pytest

from modelplane.control_plane import controller_replicas
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from tests.conftest import EXAMPLE_STACKS, STACKS


def _stack(name: str) -> ServingPlatformArgs:
    return load_stack(STACKS / f"{name}.yaml")


def _version_number(label: str) -> int:
    match = re.fullmatch(r"v(\d+)", label)
    assert match, f"example model versions are vN labels, got {label!r}"
    return int(match.group(1))


def test_the_three_environments_exist() -> None:
    assert [p.stem for p in EXAMPLE_STACKS] == ["dev", "prod", "staging"]


@pytest.mark.parametrize("path", EXAMPLE_STACKS, ids=lambda p: p.stem)
def test_stack_name_and_tier_match_the_file(path) -> None:  # type: ignore[no-untyped-def]
    stack = load_stack(path)
    assert stack.stack.name == path.stem
    assert stack.stack.tier == path.stem


def test_staging_and_prod_pin_the_same_upstream_versions() -> None:
    assert _stack("staging").versions == _stack("prod").versions


def test_dev_is_cpu_only_and_scales_to_zero() -> None:
    dev = _stack("dev")
    assert dev.gpu_pools == []
    assert all(m.resources.gpu == 0 for m in dev.models)
    assert len(dev.models) == 3
    assert all(m.scaling.min_replicas == 0 for m in dev.models)


@pytest.mark.parametrize("name", ["staging", "prod"])
def test_non_dev_tiers_are_highly_available(name: str) -> None:
    stack = _stack(name)
    assert controller_replicas(stack.control_plane, stack.stack.tier) >= 2
    for model in stack.models:
        if stack.mode(model) != "modelmesh":
            assert model.scaling.min_replicas >= 1, f"{model.name} must not scale to zero in {name}"


def test_every_staging_model_runs_in_prod_with_the_same_runtime_and_format() -> None:
    prod = {(m.tenant, m.name): m for m in _stack("prod").models}
    for model in _stack("staging").models:
        assert (model.tenant, model.name) in prod, f"{model.name} is tested in staging but not served in prod"
        counterpart = prod[(model.tenant, model.name)]
        assert (counterpart.runtime, counterpart.format) == (model.runtime, model.format)


def test_staging_is_never_behind_prod() -> None:
    prod = {(m.tenant, m.name): m for m in _stack("prod").models}
    for model in _stack("staging").models:
        assert _version_number(model.version) >= _version_number(prod[(model.tenant, model.name)].version)


def test_prod_gates_are_at_least_as_strict_as_staging() -> None:
    staging = {g.name: g for g in _stack("staging").rollout.gates}
    prod = {g.name: g for g in _stack("prod").rollout.gates}
    assert set(prod) >= set(staging)
    for name, gate in staging.items():
        assert gate.max is not None and prod[name].max is not None
        assert prod[name].max <= gate.max


def test_prod_is_large_and_varied() -> None:
    prod = _stack("prod")
    assert len(prod.models) >= 12
    assert len({m.runtime for m in prod.models}) >= 3
    assert len({m.tenant for m in prod.models}) >= 2
    assert {type(p.sharing).__name__ for p in prod.gpu_pools} >= {"MigSharing", "TimeSlicingSharing"}
    assert prod.model_mesh.enabled
    assert any(prod.mode(m) == "modelmesh" for m in prod.models)

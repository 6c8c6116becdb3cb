"""A strategy the model's deployment mode cannot carry out is refused when the stack loads."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.errors import StackError
from tests.rollout.builders import load, stack_data

CANARY = {"strategy": "canary", "steps": [10, 50, 100]}
SHADOW = CANARY | {"shadow": {"percent": 10}}


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(StackError) as err:
        load(data)
    return err.value.problems


@pytest.mark.parametrize("mode", ["knative", "modelmesh"])
def test_shadow_needs_standard_mode(mode: str) -> None:
    assert problems(stack_data(mode, rollout=SHADOW)) == [
        "test.yaml: models[0].rollout.shadow: shadow traffic needs standard mode with Gateway API "
        f"(an HTTPRoute RequestMirror); {mode} mode cannot mirror requests (from the stack's rollout policy): "
        f'remove shadow or use deploymentMode standard (got "{mode}")'
    ]


def test_shadow_needs_gateway_api() -> None:
    data = stack_data("standard", rollout=SHADOW)
    data["controlPlane"]["ingress"]["gatewayApi"] = False
    assert problems(data) == [
        "test.yaml: models[0].rollout.shadow: shadow traffic mirrors requests with a Gateway API HTTPRoute, "
        "but controlPlane.ingress.gatewayApi is false (from the stack's rollout policy): enable gatewayApi or "
        "remove shadow (got false)",
        "test.yaml: models[0].rollout.strategy: KServe splits Standard-mode traffic with Gateway API HTTPRoute "
        "weights; with controlPlane.ingress.gatewayApi false a canary split would be silently ignored (from the "
        'stack\'s rollout policy): enable gatewayApi or use strategy direct (got "canary")',
    ]


def test_shadow_needs_canary_steps() -> None:
    data = stack_data("standard")
    data["models"][0]["rollout"] = {"strategy": "ab", "abSplit": 20, "shadow": {"percent": 10}}
    assert problems(data) == [
        "test.yaml: models[0].rollout.shadow: a shadow phase runs before the first canary step; strategy 'ab' "
        'has no steps: use strategy canary or remove shadow (got "ab")'
    ]


def test_ab_in_modelmesh_is_refused() -> None:
    assert problems(stack_data("modelmesh", rollout={"strategy": "ab", "abSplit": 20})) == [
        "test.yaml: models[0].rollout.strategy: modelmesh mode cannot split traffic, so it cannot run an A/B "
        'test; use strategy canary (load beside, then switch) or direct (got "ab")'
    ]


@pytest.mark.parametrize(
    ("mode", "rollout"),
    [
        ("standard", SHADOW),
        ("knative", {"strategy": "ab", "abSplit": 20}),
        ("modelmesh", CANARY),
        ("knative", {"strategy": "direct"}),
    ],
)
def test_strategies_the_mode_can_carry_out_load(mode: str, rollout: dict[str, Any]) -> None:
    assert load(stack_data(mode, rollout=rollout)).models


def test_direct_needs_no_gateway_api() -> None:
    data = stack_data("standard", rollout={"strategy": "direct"})
    data["controlPlane"]["ingress"]["gatewayApi"] = False
    assert load(data).models


def test_standard_canary_needs_kserve_0_20() -> None:
    data = stack_data("standard", rollout=CANARY)
    data["versions"] = {"kserve": "v0.15.2"}
    assert problems(data) == [
        "test.yaml: models[0].rollout.strategy: Standard mode splits traffic with spec.canary, which KServe has "
        "since v0.20.0; versions.kserve is v0.15.2 (from the stack's rollout policy): upgrade KServe or use "
        'strategy direct (got "canary")'
    ]

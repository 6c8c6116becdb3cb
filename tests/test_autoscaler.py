"""Cluster-level Knative autoscaler settings: Knative's rules, its key names, its value format."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from modelplane.autoscaler import AutoscalerArgs, config_autoscaler_data, knative_config
from tests.conftest import REFERENCE_DIR

REFERENCE = REFERENCE_DIR / "knative-config-autoscaler.yaml"

EVERY_KNOB: dict[str, Any] = {
    "containerConcurrencyTargetDefault": 50,
    "requestsPerSecondTargetDefault": 150,
    "targetUtilizationPercent": 80,
    "stableWindow": "90s",
    "panicWindowPercentage": 20,
    "panicThresholdPercentage": 300,
    "scaleToZeroGracePeriod": "2m",
    "scaleDownDelay": "1m",
    "maxScaleUpRate": 100,
    "maxScaleDownRate": 4,
    "initialScale": 0,
    "allowZeroInitialScale": True,
    "enableScaleToZero": True,
    "targetBurstCapacity": -1,
    "scaleToZeroPodRetentionPeriod": "30s",
}


def test_unset_knobs_write_nothing() -> None:
    assert config_autoscaler_data(AutoscalerArgs()) == {}


def test_every_knob_is_a_top_level_key_in_knatives_format() -> None:
    data = config_autoscaler_data(AutoscalerArgs.model_validate(EVERY_KNOB))
    assert data == {
        "allow-zero-initial-scale": "true",
        "container-concurrency-target-default": "50",
        "container-concurrency-target-percentage": "80",
        "enable-scale-to-zero": "true",
        "initial-scale": "0",
        "max-scale-down-rate": "4",
        "max-scale-up-rate": "100",
        "panic-threshold-percentage": "300",
        "panic-window-percentage": "20",
        "requests-per-second-target-default": "150",
        "scale-down-delay": "1m",
        "scale-to-zero-grace-period": "2m",
        "scale-to-zero-pod-retention-period": "30s",
        "stable-window": "90s",
        "target-burst-capacity": "-1",
    }
    assert "_example" not in data


def test_every_key_written_is_one_knative_documents() -> None:
    if not REFERENCE.is_file():
        pytest.skip(f"Knative's config-autoscaler reference not found at {REFERENCE}")
    documented = set(
        re.findall(r"^    ([a-z-]+): ", REFERENCE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    )
    written = set(config_autoscaler_data(AutoscalerArgs.model_validate(EVERY_KNOB)))
    assert written <= documented, written - documented


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"stableWindow": "5s"}, "stableWindow must lie between 6s and 1h (got 5s)"),
        ({"stableWindow": "2h"}, "stableWindow must lie between 6s and 1h (got 2h)"),
        (
            {"stableWindow": "6s", "panicWindowPercentage": 10},
            "panicWindowPercentage 10 of stableWindow 6s gives a panic window of 0.6s; it must lie between 1s "
            "and the stable window",
        ),
        ({"scaleDownDelay": "2h"}, "scaleDownDelay must lie between 0s and 1h (got 2h)"),
        ({"scaleToZeroGracePeriod": "0s"}, "scaleToZeroGracePeriod must be greater than 0s"),
        (
            {"initialScale": 0},
            "initialScale 0 needs allowZeroInitialScale: true (Knative refuses it otherwise)",
        ),
        (
            {"containerConcurrencyTargetDefault": 0.01, "targetUtilizationPercent": 50},
            "containerConcurrencyTargetDefault 0.01 at targetUtilizationPercent 50 gives an effective target of "
            "0.005; Knative needs at least 0.01",
        ),
    ],
)
def test_knative_rules(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        AutoscalerArgs.model_validate(values)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("panicThresholdPercentage", 100),
        ("panicThresholdPercentage", 1001),
        ("maxScaleUpRate", 1),
        ("maxScaleDownRate", 1),
        ("targetUtilizationPercent", 0),
        ("targetBurstCapacity", -2),
    ],
)
def test_bounds(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        AutoscalerArgs.model_validate({field: value})


def test_grace_defaults_to_knatives_30s() -> None:
    assert AutoscalerArgs().grace_seconds == 30
    assert AutoscalerArgs(scale_to_zero_grace_period="15m").grace_seconds == 900


def test_knative_config_sections() -> None:
    args = AutoscalerArgs(stable_window="60s")
    security = {"kubernetes.podspec-securitycontext": "enabled"}
    assert knative_config(args, gpu_pools=False) == {
        "autoscaler": {"stable-window": "1m"},
        "features": security,
    }
    assert set(knative_config(args, gpu_pools=True)) == {"autoscaler", "features"}
    assert knative_config(AutoscalerArgs(), gpu_pools=False) == {"features": security}

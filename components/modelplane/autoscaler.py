"""Cluster-level Knative-style autoscaling settings.

These become top-level keys of Knative's ``config-autoscaler``. Knative keeps its documented
defaults inside the ``_example`` block, which is documentation only (its checksum is enforced
by Knative's webhook), so every setting is written as its own key and only when the stack
sets it; unset knobs keep Knative's defaults.

Where they are written: Knative Serving is installed by the Knative operator, which owns the
``config-*`` ConfigMaps of ``knative-serving`` and rewrites them from its ``KnativeServing``
resource on every reconcile. A ConfigMap written beside it would be fought over (the operator
resets it, we re-apply, the autoscaler flaps between both). So these keys go into
``KnativeServing.spec.config.autoscaler`` (and the feature flags GPU pools need into
``spec.config.features``), the one place the operator merges them from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field, model_validator

from modelplane.base import StrictModel
from modelplane.types import Duration, format_duration, parse_duration

KNATIVE_NAMESPACE = "knative-serving"

DEFAULT_GRACE_SECONDS = 30
"""Knative's default ``scale-to-zero-grace-period``."""

DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
"""Knative's default ``progress-deadline`` (config-deployment): how long a revision may take to become ready."""

POD_SECURITY_FEATURES: tuple[str, ...] = ("kubernetes.podspec-securitycontext",)
"""``config-features`` flags every Knative-mode model needs (disabled by Knative's default).

Every predictor carries a pod ``securityContext`` (Pod Security "restricted"); KServe copies it
into the Knative Service, whose webhook refuses it ("must not set the field(s):
spec.template.spec.securityContext") unless this flag is on (knative.dev/serving v0.48.1,
``pkg/apis/serving/fieldmask.go:256``). Seen refused by the real webhook in ``tests/cluster``.
"""

GPU_NODE_SELECTION_FEATURES: tuple[str, ...] = (
    "kubernetes.podspec-affinity",
    "kubernetes.podspec-nodeselector",
    "kubernetes.podspec-priorityclassname",
    "kubernetes.podspec-tolerations",
)
"""``config-features`` flags (disabled by Knative's default) that let a revision land on a GPU pool.

GPU-pool predictors also carry the pool's ``priorityClassName``, which Knative's field mask
drops with a refusal unless ``kubernetes.podspec-priorityclassname`` is on (``fieldmask.go:265``).
"""


class AutoscalerArgs(StrictModel):
    """Knative autoscaler knobs; each unset knob keeps Knative's default (shown in its description)."""

    container_concurrency_target_default: float | None = Field(
        default=None, ge=0.01, description="Target in-flight requests per pod (Knative default 100)."
    )
    requests_per_second_target_default: float | None = Field(
        default=None, ge=1, description="Target requests per second per pod for the rps metric (default 200)."
    )
    target_utilization_percent: float | None = Field(
        default=None, gt=0, le=100, description="Share of the target at which scaling starts (default 70)."
    )
    stable_window: Duration | None = Field(
        default=None, description="Averaging window of the stable mode, 6s to 1h (default 60s)."
    )
    panic_window_percentage: float | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Panic window as a percentage of the stable window (default 10).",
    )
    panic_threshold_percentage: float | None = Field(
        default=None,
        ge=110,
        le=1000,
        description="Load, in percent of target, that enters panic mode (default 200).",
    )
    scale_to_zero_grace_period: Duration | None = Field(
        default=None, description="How long the last pod stays after traffic stops (default 30s)."
    )
    scale_down_delay: Duration | None = Field(
        default=None, description="Delay before scaling down, 0s to 1h (default 0s)."
    )
    max_scale_up_rate: float | None = Field(
        default=None, gt=1, description="Largest factor of scale-up per evaluation (default 1000)."
    )
    max_scale_down_rate: float | None = Field(
        default=None, gt=1, description="Largest factor of scale-down per evaluation (default 2)."
    )
    initial_scale: int | None = Field(
        default=None, ge=0, description="Pods a new revision starts with (default 1)."
    )
    allow_zero_initial_scale: bool | None = Field(
        default=None, description="Whether a revision may start with zero pods (default false)."
    )
    enable_scale_to_zero: bool | None = Field(
        default=None, description="Whether scale to zero is allowed (default true)."
    )
    target_burst_capacity: float | None = Field(
        default=None,
        ge=-1,
        description="Spare request capacity kept before the activator leaves the path; -1 keeps it always (default 211).",
    )
    scale_to_zero_pod_retention_period: Duration | None = Field(
        default=None,
        description="Minimum time the last pod stays after scale to zero was decided (default 0s).",
    )

    @model_validator(mode="after")
    def _knative_rules(self) -> AutoscalerArgs:
        # Knative's own rules (pkg/autoscaler/config): the stable window is 6s-1h in whole
        # seconds; the panic window it implies must be at least 1s; initial scale 0 needs
        # allow-zero-initial-scale; scale-down delay is 0-1h.
        stable = parse_duration(self.stable_window) if self.stable_window else 60
        if self.stable_window is not None and not 6 <= stable <= 3600:
            raise ValueError(f"stableWindow must lie between 6s and 1h (got {self.stable_window})")
        if self.panic_window_percentage is not None:
            panic = stable * self.panic_window_percentage / 100
            if panic < 1:
                raise ValueError(
                    f"panicWindowPercentage {self.panic_window_percentage:g} of stableWindow {stable}s gives a "
                    f"panic window of {panic:g}s; it must lie between 1s and the stable window"
                )
        if self.scale_down_delay is not None and parse_duration(self.scale_down_delay) > 3600:
            raise ValueError(f"scaleDownDelay must lie between 0s and 1h (got {self.scale_down_delay})")
        if (
            self.scale_to_zero_grace_period is not None
            and parse_duration(self.scale_to_zero_grace_period) == 0
        ):
            raise ValueError("scaleToZeroGracePeriod must be greater than 0s")
        target = self.container_concurrency_target_default
        if target is not None and self.target_utilization_percent is not None:
            effective = target * self.target_utilization_percent / 100
            if effective < 0.01:
                raise ValueError(
                    f"containerConcurrencyTargetDefault {target:g} at targetUtilizationPercent "
                    f"{self.target_utilization_percent:g} gives an effective target of {effective:g}; "
                    "Knative needs at least 0.01"
                )
        if self.initial_scale == 0 and not self.allow_zero_initial_scale:
            raise ValueError(
                "initialScale 0 needs allowZeroInitialScale: true (Knative refuses it otherwise)"
            )
        return self

    @property
    def scale_to_zero_enabled(self) -> bool:
        """Whether Knative may scale revisions to zero (its default: yes)."""
        return self.enable_scale_to_zero is not False

    @property
    def grace_seconds(self) -> int:
        """Effective scale-to-zero grace period in seconds (Knative's default when unset)."""
        if self.scale_to_zero_grace_period:
            return parse_duration(self.scale_to_zero_grace_period)
        return DEFAULT_GRACE_SECONDS


_CONFIG_KEYS: dict[str, str] = {
    "container_concurrency_target_default": "container-concurrency-target-default",
    "requests_per_second_target_default": "requests-per-second-target-default",
    "target_utilization_percent": "container-concurrency-target-percentage",
    "stable_window": "stable-window",
    "panic_window_percentage": "panic-window-percentage",
    "panic_threshold_percentage": "panic-threshold-percentage",
    "scale_to_zero_grace_period": "scale-to-zero-grace-period",
    "scale_down_delay": "scale-down-delay",
    "max_scale_up_rate": "max-scale-up-rate",
    "max_scale_down_rate": "max-scale-down-rate",
    "initial_scale": "initial-scale",
    "allow_zero_initial_scale": "allow-zero-initial-scale",
    "enable_scale_to_zero": "enable-scale-to-zero",
    "target_burst_capacity": "target-burst-capacity",
    "scale_to_zero_pod_retention_period": "scale-to-zero-pod-retention-period",
}


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and value[-1:] in "hms" and value[:-1].isdigit():
        return format_duration(parse_duration(value))
    return str(value)


def config_autoscaler_data(args: AutoscalerArgs) -> dict[str, str]:
    """Return the top-level ``config-autoscaler`` keys the stack sets, as Knative writes them."""
    data: dict[str, str] = {}
    for field, key in _CONFIG_KEYS.items():
        value = getattr(args, field)
        if value is not None:
            data[key] = _config_value(value)
    return dict(sorted(data.items()))


def config_features_data(*, gpu_pools: bool, features: Iterable[str] = ()) -> dict[str, str]:
    """``config-features`` keys modelplane needs: pod security always, node selection for GPU pools, ``features``.

    ``features`` are the flags Knative-mode models need for their own settings (placement,
    PVC volumes, field references, collocation: ``modelplane.overrides.knative_features``).
    """
    wanted = set(POD_SECURITY_FEATURES) | set(features)
    if gpu_pools:
        wanted |= set(GPU_NODE_SELECTION_FEATURES)
    return dict.fromkeys(sorted(wanted), "enabled")


def knative_config(
    args: AutoscalerArgs, *, gpu_pools: bool, features: Iterable[str] = ()
) -> dict[str, dict[str, str]]:
    """The ``KnativeServing.spec.config`` sections modelplane owns: ``autoscaler`` and ``features``.

    Sections with nothing to set are left out, so the operator keeps Knative's defaults.
    """
    sections = {
        "autoscaler": config_autoscaler_data(args),
        "features": config_features_data(gpu_pools=gpu_pools, features=features),
    }
    return {name: data for name, data in sections.items() if data}

"""How a new model version rolls out: strategy, traffic steps and the gates between them."""

from __future__ import annotations

import urllib.parse
from typing import Literal

from pydantic import Field, field_validator, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.types import DnsLabel, Duration, Percent

Strategy = Literal["canary", "direct", "ab"]
"""`canary`: staged traffic steps behind gates; `direct`: replace at once; `ab`: fixed split, no promotion."""


PROBE_URL_PLACEHOLDERS: tuple[str, ...] = ("{model}", "{namespace}", "{name}", "{version}")


def prometheus_url_problem(url: str) -> str | None:
    """Why a URL cannot be a Prometheus server's address for gates, or None when it can.

    Only ``http://`` and ``https://`` reach Prometheus's HTTP API. Credentials never sit in the
    URL (it is printed, committed in stack files and recorded in the lock's history); a bearer
    token is read from ``MODELPLANE_PROMETHEUS_TOKEN`` instead.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as err:
        return f"not a URL ({err})"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https:// (Prometheus's HTTP API)"
    if not parts.hostname:
        return "has no host"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials; set MODELPLANE_PROMETHEUS_TOKEN for a bearer token"
    if parts.query or parts.fragment:
        return "must not have a query or fragment; give the server's base URL"
    return None


class ProbeGate(StrictModel):
    """V2 checks against a rollout's candidate before each traffic step; a failing probe holds it."""

    url: str = Field(
        description="The candidate's V2 endpoint: `http(s)://` for REST, `grpc(s)://` for gRPC. `{model}`, "
        "`{namespace}`, `{name}` (the candidate's DNS-safe name) and `{version}` are filled in per model, "
        "e.g. `http://{model}-{name}-predictor.{namespace}.svc.cluster.local` (Standard mode's canary "
        "predictor Service)."
    )
    timeout: float = Field(default=10.0, gt=0, le=300, description="Seconds each check may take.")

    @model_validator(mode="after")
    def _url(self) -> ProbeGate:
        filled = self.url
        for placeholder in PROBE_URL_PLACEHOLDERS:
            filled = filled.replace(placeholder, "x")
        if "{" in filled or "}" in filled:
            raise ValueError(
                f"url {self.url!r}: unknown placeholder; use {', '.join(PROBE_URL_PLACEHOLDERS)}"
            )
        if urllib.parse.urlsplit(filled).scheme not in ("http", "https", "grpc", "grpcs"):
            raise ValueError(f"url {self.url!r} must start with http://, https://, grpc:// or grpcs://")
        if not urllib.parse.urlsplit(filled).hostname:
            raise ValueError(f"url {self.url!r} has no host")
        return self

    def url_for(self, *, model: str, namespace: str, name: str, version: str) -> str:
        """The URL with one candidate's values filled in."""
        values = {"{model}": model, "{namespace}": namespace, "{name}": name, "{version}": version}
        url = self.url
        for placeholder, value in values.items():
            url = url.replace(placeholder, value)
        return url


class Gate(StrictModel):
    """A Prometheus check that must hold before a rollout takes its next step."""

    name: DnsLabel = Field(description="Gate name, shown in previews.")
    metric: Literal[
        "error-rate",
        "latency-p99",
        "queue-depth",
        "concurrency",
        "tokens-per-second",
        "kv-cache",
        "ttft-p99",
        "custom",
    ] = Field(
        description="`error-rate` (share of 5xx), `latency-p99` (seconds), vLLM's `queue-depth`, `concurrency`, "
        "`tokens-per-second`, `kv-cache` (percent in use) and `ttft-p99` (time to first token, seconds) for models "
        "served by vLLM, or `custom` with `query`."
    )
    query: str | None = Field(
        default=None,
        description="PromQL for `custom`; `{model}`, `{namespace}` and `{version}` are filled in per model.",
    )
    max: float | None = Field(default=None, description="The gate fails above this value.")
    min: float | None = Field(default=None, description="The gate fails below this value.")

    @model_validator(mode="after")
    def _has_threshold(self) -> Gate:
        if self.max is None and self.min is None:
            raise ValueError(f"gate {self.name!r} needs a threshold: set max or min")
        if self.metric == "custom" and not self.query:
            raise ValueError(f"gate {self.name!r} has metric 'custom' and needs a query")
        if self.metric != "custom" and self.query:
            raise ValueError(
                f"gate {self.name!r}: query is only for metric 'custom' (got metric {self.metric!r})"
            )
        return self


def _default_gates() -> list[Gate]:
    return [
        Gate(name="error-rate", metric="error-rate", max=0.01),
        Gate(name="latency-p99", metric="latency-p99", max=0.5),
    ]


class ShadowArgs(StrictModel):
    """Mirror live requests to the candidate and drop its responses before any canary step."""

    percent: Percent = Field(default=100, description="Share of requests mirrored to the candidate.")
    duration: Duration = Field(default="15m", description="How long the shadow phase lasts.")


class RolloutPolicy(StrictModel):
    """The rollout policy of a stack, or of one model."""

    strategy: Strategy = Field(default="canary", description="How a new version replaces the stable one.")
    steps: list[Percent] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        description="Canary traffic shares, strictly increasing and ending at 100.",
    )
    step_interval: Duration = Field(
        default="10m", description="Minimum time at each step before gates decide."
    )
    gates: list[Gate] = Field(default_factory=_default_gates, description="Checks that must pass to advance.")
    dry_run: bool = Field(
        default=False, description="Observe-only gates: report what they would decide without enforcing it."
    )
    shadow: ShadowArgs | None = Field(
        default=None, description="Optional shadow phase before the first step."
    )
    ab_split: Percent | None = Field(default=None, description="Candidate share for the `ab` strategy.")
    probe: ProbeGate | None = Field(
        default=None,
        description="V2 checks (`modelplane probe`) against the candidate before each step; a failing probe "
        "holds the rollout. Default: none.",
    )
    failure_limit: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Roll back after this many consecutive failed evaluations at one step (a gate beyond its "
        "threshold, without data or unmeasurable, or a failing probe); an unreachable Prometheus is not an "
        "evaluation. Default: none, a failing rollout holds until an operator acts.",
    )
    prometheus: str | None = Field(
        default=None,
        description="The Prometheus server (`http(s)://host[:port][/path]`) that `modelplane rollout advance` "
        "asks for the gates when no `--prometheus` is given. Stack-wide only. Default: none, so `advance` "
        "needs `--prometheus` (or `--skip-gates`) once a step with gates is due.",
    )

    @field_validator("prometheus")
    @classmethod
    def _prometheus(cls, value: str | None) -> str | None:
        problem = None if value is None else prometheus_url_problem(value)
        if problem is not None:
            # Raised as a Problem without its value: a URL may carry credentials, never echoed.
            raise ProblemError([Problem((), problem)])
        return value

    @model_validator(mode="after")
    def _steps(self) -> RolloutPolicy:
        if self.strategy == "canary":
            if not self.steps:
                raise ValueError("a canary needs at least one step")
            if any(b <= a for a, b in zip(self.steps, self.steps[1:], strict=False)):
                raise ValueError(f"steps must be strictly increasing (got {self.steps})")
            if self.steps[-1] != 100:
                raise ValueError(f"the last step must be 100 (got {self.steps[-1]})")
            if self.steps[0] == 0:
                raise ValueError("the first step must send some traffic (got 0)")
        if self.strategy == "ab" and self.ab_split is None:
            raise ValueError("strategy 'ab' needs abSplit, the candidate's fixed share")
        if self.strategy != "ab" and self.ab_split is not None:
            raise ValueError(f"abSplit is only for strategy 'ab' (got strategy {self.strategy!r})")
        names = [gate.name for gate in self.gates]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gate names must be unique (repeated: {', '.join(duplicates)})")
        return self


class RolloutOverride(StrictModel):
    """Per-model changes to the stack's rollout policy; unset fields keep the stack's."""

    strategy: Strategy | None = Field(default=None, description="Strategy for this model.")
    steps: list[Percent] | None = Field(default=None, description="Traffic steps for this model.")
    step_interval: Duration | None = Field(default=None, description="Time at each step for this model.")
    gates: list[Gate] | None = Field(default=None, description="Gates for this model (replace the stack's).")
    dry_run: bool | None = Field(default=None, description="Observe-only gates for this model.")
    shadow: ShadowArgs | None = Field(default=None, description="Shadow phase for this model.")
    ab_split: Percent | None = Field(default=None, description="Candidate share for `ab`.")
    probe: ProbeGate | None = Field(default=None, description="Probe of the candidate for this model.")
    failure_limit: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Consecutive failed evaluations before a rollback, for this model.",
    )

    def apply(self, base: RolloutPolicy) -> RolloutPolicy:
        """Return ``base`` with this override's set fields replacing its own."""
        changes = self.model_dump(exclude_none=True, by_alias=False)
        merged = base.model_dump(by_alias=False) | changes
        return RolloutPolicy.model_validate(merged)


STANDARD_CANARY_SINCE = (0, 20)
"""The KServe release that added Standard mode's ``spec.canary[]``."""


def _release(version: str) -> tuple[int, ...]:
    core = version.lstrip("v").split("-", 1)[0].split("+", 1)[0]
    return tuple(int(part) for part in core.split(".") if part.isdigit())


def mode_problems(
    policy: RolloutPolicy, mode: str, *, gateway_api: bool, inherited: bool, kserve: str = "v0.20.0"
) -> list[tuple[str, str, object]]:
    """Why a deployment mode cannot carry out a rollout policy: ``(field, message, value)`` items.

    ``inherited`` says the policy comes from the stack's ``rollout`` section, which the message
    names so the reader knows where to change it. (A/B in modelmesh mode is refused by the stack
    validation itself.)
    """
    where = " (from the stack's rollout policy)" if inherited else ""
    problems: list[tuple[str, str, object]] = []
    if policy.shadow is not None:
        if policy.strategy != "canary":
            problems.append(
                (
                    "shadow",
                    f"a shadow phase runs before the first canary step; strategy {policy.strategy!r} has "
                    f"no steps{where}: use strategy canary or remove shadow",
                    policy.strategy,
                )
            )
        elif mode != "standard":
            problems.append(
                (
                    "shadow",
                    f"shadow traffic needs standard mode with Gateway API (an HTTPRoute RequestMirror); "
                    f"{mode} mode cannot mirror requests{where}: remove shadow or use deploymentMode standard",
                    mode,
                )
            )
        elif not gateway_api:
            problems.append(
                (
                    "shadow",
                    "shadow traffic mirrors requests with a Gateway API HTTPRoute, but "
                    f"controlPlane.ingress.gatewayApi is false{where}: enable gatewayApi or remove shadow",
                    False,
                )
            )
    if (
        mode == "standard"
        and policy.strategy in ("canary", "ab")
        and _release(kserve) < STANDARD_CANARY_SINCE
    ):
        problems.append(
            (
                "strategy",
                f"Standard mode splits traffic with spec.canary, which KServe has since v0.20.0; "
                f"versions.kserve is {kserve}{where}: upgrade KServe or use strategy direct",
                policy.strategy,
            )
        )
    if mode == "standard" and not gateway_api and policy.strategy in ("canary", "ab"):
        problems.append(
            (
                "strategy",
                "KServe splits Standard-mode traffic with Gateway API HTTPRoute weights; with "
                f"controlPlane.ingress.gatewayApi false a {policy.strategy} split would be silently "
                f"ignored{where}: enable gatewayApi or use strategy direct",
                policy.strategy,
            )
        )
    return problems

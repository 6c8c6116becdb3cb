"""Rollout gates: each gate compiled to PromQL for the model's mode, and judged on a Prometheus.

Every query measures the *candidate* only, over the time it has been at its step (the policy's
``stepInterval``), and returns one number that the gate's ``max``/``min`` judges. Where the
metric comes from depends on the deployment mode, because KServe exposes no unified metric set:

- **Knative**: the queue-proxy beside every revision counts requests by status class and times
  them for any runtime: ``revision_app_request_count`` (``response_code_class="5xx"`` for errors)
  and ``revision_app_request_latencies_bucket`` (milliseconds, divided by 1000). The candidate's
  pods are selected by ``modelplane_dev_version``, the pod label ``modelplane.dev/version`` that
  the scrape config copies onto series (prometheus-operator ``podTargetLabels``), because the
  candidate's revision name is only known once Knative creates it.
- **Standard**: no sidecar sees the requests, so the runtime's own metrics must answer, and the
  candidate's pods are selected by name, ``<model>-<candidate>-predictor-*`` (the Deployment KServe
  creates per named predictor). KServe's Python model servers (sklearn, xgboost, lightgbm, and
  ``custom`` images built on the KServe SDK) expose a ``request_predict_seconds`` histogram and
  no failure count; vLLM (huggingface) ``vllm:e2e_request_latency_seconds`` and no failure
  count; MLServer ``model_infer_request_{success,failure}_total`` and
  ``rest_server_request_duration_seconds``; Triton ``nv_inference_request_{success,failure}``
  and no latency histogram; TorchServe neither. A gate the runtime cannot answer is
  *unmeasurable*: the preview warns, and it blocks promotion unless the policy is a dry run.
  A ``custom`` gate can carry any query instead.
- **ModelMesh**: ModelMesh's own ``modelmesh_api_request_milliseconds`` (``code`` per gRPC
  status), per ``vModelId``; the candidate is its side InferenceService, which gets only the
  requests sent to it by name (smoke tests), so these gates judge those.

A gate with no data fails (nothing proves the candidate healthy), except in a dry run.

``model_queries`` builds these queries for any selector: ``candidate_selector`` for a gate, and
``model_selector`` (every version of a model) for the SLO recording rules and burn-rate alerts
that ``modelplane.monitoring`` renders, so a canary is judged on what the model's SLO measures.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Literal

from modelplane.errors import RolloutError
from modelplane.rollout.compile import side_name
from modelplane.rollout.policy import Gate

Verdict = Literal["pass", "fail", "no-data", "unmeasurable", "error"]

KSERVE_SDK_RUNTIMES: tuple[str, ...] = ("sklearn", "xgboost", "lightgbm", "custom")

_ERROR_RATIO = "sum(rate({failed}[{window}])) / sum(rate({total}[{window}]))"
_P99 = "histogram_quantile(0.99, sum by (le) (rate({bucket}[{window}])))"


@dataclass(frozen=True)
class CompiledGate:
    """A gate as a PromQL query for one model's candidate, or why it cannot be measured."""

    name: str
    metric: str
    query: str | None
    max: float | None
    min: float | None
    unmeasurable: str = ""
    """Why the query is None: the runtime exposes nothing to compute it from."""

    @property
    def threshold(self) -> str:
        """The pass condition as text, e.g. ``<= 0.01``."""
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


@dataclass(frozen=True)
class Target:
    """Which candidate a gate measures."""

    mode: str
    runtime: str
    namespace: str
    model: str
    version: str
    name: str
    """The candidate's DNS-safe name (``predictor.name`` in Standard mode)."""
    window: str
    """The rate window: the policy's step interval."""


def _sel(*matchers: str) -> str:
    return "{" + ",".join(matchers) + "}"


Query = str | tuple[None, str]
"""A PromQL query, or (None, why the runtime cannot answer it)."""


def candidate_selector(target: Target) -> list[str]:
    """Label matchers that select a rollout candidate's series (and nothing of the stable version)."""
    ns = f'namespace="{target.namespace}"'
    if target.mode == "knative":
        return [
            ns,
            f'configuration_name="{target.model}-predictor"',
            f'modelplane_dev_version="{target.version}"',
        ]
    if target.mode == "modelmesh":
        return [ns, f'vModelId="{side_name(target.model, target.name)}"']
    return [ns, f'pod=~"{target.model}-{target.name}-predictor-.*"']


def model_selector(mode: str, namespace: str, model: str) -> list[str]:
    """Label matchers that select every version of a model: what its SLO is measured on.

    Knative: the model's predictor configuration (all its revisions). ModelMesh: the model's
    ``vModelId`` (a candidate's side object has its own). Standard: the pods of the unnamed
    predictor (``<model>-predictor-*``) and of every named one (``<model>-<name>-predictor-*``,
    stable and canary), narrowed by the ``modelplane_dev_model`` pod label so that a model named
    ``a-b`` is not counted as a version of ``a``.
    """
    ns = f'namespace="{namespace}"'
    if mode == "knative":
        return [ns, f'configuration_name="{model}-predictor"']
    if mode == "modelmesh":
        return [ns, f'vModelId="{model}"']
    return [
        ns,
        f'pod=~"{model}-predictor-.*|{model}-.+-predictor-.*"',
        f'modelplane_dev_model="{model}"',
    ]


_SIDECAR_METRICS: dict[str, tuple[str, str, str]] = {
    # mode: (request counter, matcher of failed requests, latency histogram in milliseconds)
    "knative": (
        "revision_app_request_count",
        'response_code_class="5xx"',
        "revision_app_request_latencies_bucket",
    ),
    "modelmesh": (
        "modelmesh_api_request_milliseconds_count",
        'code!="OK"',
        "modelmesh_api_request_milliseconds_bucket",
    ),
}
"""Modes where something beside the runtime (queue-proxy, ModelMesh) counts every request."""


def _failure_ratio(success: str, failure: str, selector: list[str], window: str) -> str:
    """Failures over all requests, from a runtime's separate success and failure counters."""
    failed = failure + _sel(*selector)
    return (
        f"sum(rate({failed}[{window}])) / "
        f"(sum(rate({success}{_sel(*selector)}[{window}])) + sum(rate({failed}[{window}])))"
    )


def model_queries(mode: str, runtime: str, selector: list[str], window: str) -> dict[str, Query]:
    """PromQL per built-in gate metric (``error-rate``, ``latency-p99``), or why there is none.

    ``selector`` picks the pods or model (``candidate_selector`` for a gate, ``model_selector``
    for an SLO); ``window`` is the rate window. Rollout gates and the SLO recording rules both
    come from here, so a canary is judged on exactly what the model's SLO measures.
    """
    w = window
    if mode in _SIDECAR_METRICS:
        counter, failed, bucket = _SIDECAR_METRICS[mode]
        return {
            "error-rate": _ERROR_RATIO.format(
                failed=counter + _sel(*selector, failed), total=counter + _sel(*selector), window=w
            ),
            # Both histograms are in milliseconds; gates and SLOs speak seconds.
            "latency-p99": _P99.format(bucket=bucket + _sel(*selector), window=w) + " / 1000",
        }
    no_failures = (None, f"runtime {runtime!r} counts no failed requests in standard mode")
    no_latency = (None, f"runtime {runtime!r} exposes no latency histogram in standard mode")
    if runtime in KSERVE_SDK_RUNTIMES:
        return {
            "error-rate": no_failures,
            "latency-p99": _P99.format(bucket="request_predict_seconds_bucket" + _sel(*selector), window=w),
        }
    if runtime == "huggingface":
        return {
            "error-rate": no_failures,
            "latency-p99": _P99.format(
                bucket="vllm:e2e_request_latency_seconds_bucket" + _sel(*selector), window=w
            ),
        }
    if runtime == "mlserver":
        return {
            "error-rate": _failure_ratio(
                "model_infer_request_success_total", "model_infer_request_failure_total", selector, w
            ),
            "latency-p99": _P99.format(
                bucket="rest_server_request_duration_seconds_bucket" + _sel(*selector, 'path=~".*/infer"'),
                window=w,
            ),
        }
    if runtime == "triton":
        return {
            "error-rate": _failure_ratio(
                "nv_inference_request_success", "nv_inference_request_failure", selector, w
            ),
            "latency-p99": (
                None,
                "Triton exports cumulative duration counters, not a histogram, so a p99 cannot be computed",
            ),
        }
    return {"error-rate": no_failures, "latency-p99": no_latency}


def fill_custom(query: str, target: Target) -> str:
    """A custom gate's query with its placeholders filled in.

    ``{model}``, ``{namespace}``, ``{version}``, ``{name}`` and ``{window}`` are replaced as plain
    text, because PromQL itself is full of braces.
    """
    values = {
        "{model}": target.model,
        "{namespace}": target.namespace,
        "{version}": target.version,
        "{name}": target.name,
        "{window}": target.window,
    }
    for placeholder, value in values.items():
        query = query.replace(placeholder, value)
    return query


def compile_gates(gates: list[Gate], target: Target) -> list[CompiledGate]:
    """Every gate as PromQL for the target's mode and runtime."""
    built = model_queries(target.mode, target.runtime, candidate_selector(target), target.window)
    result: list[CompiledGate] = []
    for gate in gates:
        if gate.metric == "custom":
            assert gate.query is not None  # the Gate model requires it
            result.append(
                CompiledGate(gate.name, gate.metric, fill_custom(gate.query, target), gate.max, gate.min)
            )
            continue
        entry = built[gate.metric]
        if isinstance(entry, tuple):
            why = f"{entry[1]}; use a custom gate or dryRun"
            result.append(CompiledGate(gate.name, gate.metric, None, gate.max, gate.min, unmeasurable=why))
        else:
            result.append(CompiledGate(gate.name, gate.metric, entry, gate.max, gate.min))
    return result


# --- evaluation --------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """What one gate said."""

    gate: CompiledGate
    verdict: Verdict
    value: float | None = None
    message: str = ""

    @property
    def passed(self) -> bool:
        """Whether the gate lets the rollout advance."""
        return self.verdict == "pass"

    def line(self) -> str:
        """One line for the terminal and the lock's history."""
        shown = "" if self.value is None else f" = {self.value:.6g}"
        why = f" ({self.message})" if self.message else ""
        return f"{self.gate.name}{shown} [{self.gate.threshold}]: {self.verdict}{why}"


def query_prometheus(url: str, query: str, *, at: float | None = None, timeout: float = 10.0) -> list[float]:
    """The values of an instant query on Prometheus's HTTP API (one per series).

    Raises:
        RolloutError: Prometheus is unreachable or refused the query.
    """
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    endpoint = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read().decode("utf-8")).get("error", err.reason)
        except (ValueError, OSError):
            detail = err.reason
        raise RolloutError(f"{url}: Prometheus refused the query: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise RolloutError(f"{url}: cannot reach Prometheus: {reason}") from None
    except ValueError:
        raise RolloutError(f"{url}: the answer is not Prometheus's JSON") from None
    if body.get("status") != "success":
        raise RolloutError(f"{url}: Prometheus refused the query: {body.get('error', 'unknown error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return [float(data["result"][1])]
    if data["resultType"] != "vector":
        raise RolloutError(f"{url}: expected an instant vector, got a {data['resultType']}")
    return [float(sample["value"][1]) for sample in data["result"]]


def judge(gate: CompiledGate, values: list[float]) -> GateResult:
    """A gate's verdict on the values its query returned (the worst value counts)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return GateResult(gate, "no-data", None, "the query returned no data")
    worst = max(finite) if gate.max is not None else min(finite)
    if gate.max is not None and worst > gate.max:
        return GateResult(gate, "fail", worst)
    if gate.min is not None and min(finite) < gate.min:
        return GateResult(gate, "fail", min(finite))
    return GateResult(gate, "pass", worst)


def evaluate(gates: list[CompiledGate], prometheus: str, *, at: float | None = None) -> list[GateResult]:
    """Judge every gate on a Prometheus server, at a given time (default: now)."""
    results: list[GateResult] = []
    for gate in gates:
        if gate.query is None:
            results.append(GateResult(gate, "unmeasurable", None, gate.unmeasurable))
            continue
        try:
            values = query_prometheus(prometheus, gate.query, at=at)
        except RolloutError as err:
            results.append(GateResult(gate, "error", None, str(err)))
            continue
        results.append(judge(gate, values))
    return results

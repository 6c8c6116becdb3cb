"""Judging gates on a live Prometheus: the one place the rollout engine does I/O.

``query_prometheus`` runs an instant query on Prometheus's HTTP API; ``evaluate`` runs every
compiled gate of a candidate and judges what came back (``modelplane.rollout.gates.judge``).
Everything else in ``modelplane.rollout`` is pure.

Two kinds of trouble are kept apart, because they mean different things for a rollout. A query
Prometheus answers with an error of the query (HTTP 4xx: bad PromQL, an execution error) is the
gate's fault and will not fix itself: the gate's verdict is ``error``, a failed evaluation. A
server that cannot be reached, times out, answers 5xx or answers something that is not its
API says nothing about the candidate: ``PrometheusUnavailable`` is raised and the rollout is
neither held as failing nor advanced (``modelplane rollout advance`` exits 4).

A bearer token for a Prometheus behind an authenticating proxy is read from the environment
(``MODELPLANE_PROMETHEUS_TOKEN``), never from the URL, which is printed and committed.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from modelplane.errors import RolloutError
from modelplane.rollout.gates import CompiledGate, GateResult, judge

TOKEN_ENV = "MODELPLANE_PROMETHEUS_TOKEN"
"""Environment variable holding a bearer token sent to Prometheus, when set."""


class PrometheusUnavailable(RolloutError):  # noqa: N818 - reads as a state, like the HTTP status
    """Prometheus cannot be asked: unreachable, timing out, failing (5xx) or not Prometheus."""


def query_prometheus(url: str, query: str, *, at: float | None = None, timeout: float = 10.0) -> list[float]:
    """The values of an instant query on Prometheus's HTTP API (one per series).

    Raises:
        RolloutError: Prometheus is unreachable or refused the query.
    """
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at:.3f}"
    endpoint = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(endpoint, headers={"Accept": "application/json"})
    token = os.environ.get(TOKEN_ENV)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read().decode("utf-8")).get("error", err.reason)
        except (ValueError, OSError, AttributeError):
            detail = err.reason
        if err.code >= 500 or err.code in (401, 403, 404, 407, 408, 429):
            # The server (or a proxy in front of it) failed or turned us away: not the query's fault.
            raise PrometheusUnavailable(f"{url}: Prometheus answered HTTP {err.code}: {detail}") from None
        raise RolloutError(f"{url}: Prometheus refused the query: {detail}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise PrometheusUnavailable(f"{url}: cannot reach Prometheus: {reason}") from None
    except ValueError:
        raise PrometheusUnavailable(f"{url}: the answer is not Prometheus's JSON") from None
    if not isinstance(body, dict) or "status" not in body:
        raise PrometheusUnavailable(f"{url}: the answer is not Prometheus's JSON")
    if body.get("status") != "success":
        raise RolloutError(f"{url}: Prometheus refused the query: {body.get('error', 'unknown error')}")
    try:
        data = body["data"]
        if data["resultType"] == "scalar":
            return [float(data["result"][1])]
        if data["resultType"] != "vector":
            raise RolloutError(f"{url}: expected an instant vector, got a {data['resultType']}")
        return [float(sample["value"][1]) for sample in data["result"]]
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusUnavailable(f"{url}: the answer is not Prometheus's JSON") from None


def evaluate(gates: list[CompiledGate], prometheus: str, *, at: float | None = None) -> list[GateResult]:
    """Judge every gate on a Prometheus server, at a given time (default: now).

    Raises:
        PrometheusUnavailable: the server could not be asked; no gate was judged.
    """
    results: list[GateResult] = []
    for gate in gates:
        if gate.query is None:
            results.append(GateResult(gate, "unmeasurable", None, gate.unmeasurable))
            continue
        try:
            values = query_prometheus(prometheus, gate.query, at=at)
        except PrometheusUnavailable:
            raise
        except RolloutError as err:
            results.append(GateResult(gate, "error", None, str(err)))
            continue
        results.append(judge(gate, values))
    return results

"""Judging gates on a live Prometheus: the one place the rollout engine does I/O.

``query_prometheus`` runs an instant query on Prometheus's HTTP API; ``evaluate`` runs every
compiled gate of a candidate and judges what came back (``modelplane.rollout.gates.judge``).
Everything else in ``modelplane.rollout`` is pure.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from modelplane.errors import RolloutError
from modelplane.rollout.gates import CompiledGate, GateResult, judge


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

"""Gate evaluation against a real Prometheus server, started on loopback with synthetic data.

The data is written as OpenMetrics, turned into TSDB blocks with ``promtool tsdb
create-blocks-from openmetrics`` and served by ``prometheus`` from a temporary directory. Times
are fixed (the canary started at T1, the data covers T1..T2, gates are judged at T2), so every
value is known in advance.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import main
from modelplane.errors import RolloutError
from modelplane.rollout import state
from modelplane.rollout.gates import Target, compile_gates
from modelplane.rollout.lock import lock_path, read_lock, write_lock
from modelplane.rollout.policy import Gate
from modelplane.rollout.prometheus import evaluate, query_prometheus
from tests.prometheus import free_port, serving_openmetrics
from tests.rollout.builders import STACK, T0, T1, T2, bump, desired, stack_data, write_stack

START = int(state.parse_time(T1).timestamp())
END = int(state.parse_time(T2).timestamp())
STEP = 15

KN_SEL = 'namespace="team",configuration_name="kn-predictor"'
STD_POD = 'namespace="team",pod="std-v2-predictor-6c9f8-x2k4q"'


def _series(name: str, labels: str, per_second: float) -> list[str]:
    return [f"{name}{{{labels}}} {per_second * (t - START):.6f} {t}" for t in range(START, END + 1, STEP)]


def _histogram(name: str, labels: str, buckets: dict[str, float]) -> list[str]:
    lines: list[str] = []
    for le, rate in buckets.items():
        lines += _series(name, f'{labels},le="{le}"', rate)
    return lines


def openmetrics() -> str:
    """Synthetic metrics: a healthy Knative candidate (and a failing stable beside it, which the
    candidate's gates must ignore), and a slow Standard-mode candidate."""
    lines = ["# TYPE revision_app_request_count unknown"]
    for version, ok, failed in (("v2", 10.0, 0.01), ("v1", 10.0, 5.0)):
        sel = f'{KN_SEL},modelplane_dev_version="{version}"'
        lines += _series("revision_app_request_count", f'{sel},response_code_class="2xx"', ok)
        lines += _series("revision_app_request_count", f'{sel},response_code_class="5xx"', failed)
    lines.append("# TYPE revision_app_request_latencies_bucket unknown")
    lines += _histogram(
        "revision_app_request_latencies_bucket",
        f'{KN_SEL},modelplane_dev_version="v2"',
        {"50": 9.0, "100": 9.995, "250": 10.01, "+Inf": 10.01},
    )
    lines.append("# TYPE request_predict_seconds_bucket unknown")
    lines += _histogram(
        "request_predict_seconds_bucket",
        STD_POD,
        {"0.1": 1.0, "0.5": 2.0, "1": 9.0, "2.5": 10.0, "+Inf": 10.0},
    )
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus server on 127.0.0.1 serving the synthetic data; its URL."""
    with serving_openmetrics(tmp_path_factory.mktemp("prometheus"), openmetrics()) as url:
        yield url


GATES = [
    Gate(name="error-rate", metric="error-rate", max=0.01),
    Gate(name="latency-p99", metric="latency-p99", max=0.3),
]


def _evaluate(
    url: str, mode: str, model: str, runtime: str = "sklearn", gates: list[Gate] = GATES
) -> dict[str, Any]:
    target = Target(
        mode=mode, runtime=runtime, namespace="team", model=model, version="v2", name="v2", window="10m"
    )
    results = evaluate(compile_gates(gates, target), url, at=END)
    return {r.gate.name: (r.verdict, None if r.value is None else round(r.value, 4)) for r in results}


def test_healthy_knative_candidate_passes(prometheus: str) -> None:
    assert _evaluate(prometheus, "knative", "kn") == {
        "error-rate": ("pass", 0.001),
        "latency-p99": ("pass", 0.0957),
    }


def test_slow_standard_candidate_fails_latency(prometheus: str) -> None:
    assert _evaluate(prometheus, "standard", "std") == {
        "error-rate": ("unmeasurable", None),
        "latency-p99": ("fail", 2.35),
    }


def test_candidate_without_traffic_has_no_data(prometheus: str) -> None:
    assert _evaluate(prometheus, "modelmesh", "mesh") == {
        "error-rate": ("no-data", None),
        "latency-p99": ("no-data", None),
    }


def test_custom_gate_runs_its_own_query(prometheus: str) -> None:
    gate = Gate(
        name="throughput",
        metric="custom",
        query='sum(rate(revision_app_request_count{namespace="{namespace}",modelplane_dev_version="{version}"}[{window}]))',
        min=5,
    )
    assert _evaluate(prometheus, "knative", "kn", gates=[gate]) == {"throughput": ("pass", 10.01)}


def test_invalid_query_is_an_error_verdict(prometheus: str) -> None:
    gate = Gate(name="broken", metric="custom", query="sum(", max=1)
    ((verdict, value),) = _evaluate(prometheus, "knative", "kn", gates=[gate]).values()
    assert (verdict, value) == ("error", None)


# --- the CLI on the same server ---


def _rolling(tmp_path: Path, mode: str, *, dry_run: bool = False) -> Path:
    rollout = {
        "strategy": "canary",
        "steps": [10, 25, 50, 100],
        "stepInterval": "10m",
        "dryRun": dry_run,
        "gates": [
            {"name": "error-rate", "metric": "error-rate", "max": 0.01},
            {"name": "latency-p99", "metric": "latency-p99", "max": 0.3},
        ],
    }
    name = {"knative": "kn", "standard": "std"}[mode]
    data = stack_data(mode, rollout=rollout)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    head = bump(data, name, "v2")
    path = write_stack(tmp_path, head)
    write_lock(state.apply(lock, desired(head), stack=STACK, now=T1), lock_path(path))
    return path


def _record(path: Path, key: str) -> Any:
    lock = read_lock(lock_path(path))
    assert lock is not None
    return lock.models[key]


def test_advance_takes_the_step_when_gates_pass(prometheus: str, tmp_path: Path) -> None:
    path = _rolling(tmp_path, "knative")
    assert main(["rollout", "advance", str(path), "kn", "--prometheus", prometheus, "--now", T2]) == 0
    record = _record(path, "team/kn")
    assert state.candidate_share(record) == 25
    assert record.history[-1].detail.startswith("error-rate = 0.000999001 [<= 0.01]: pass")


def test_advance_holds_when_a_gate_fails(
    prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rolling(tmp_path, "standard")
    assert main(["rollout", "advance", str(path), "std", "--prometheus", prometheus, "--now", T2]) == 3
    record = _record(path, "team/std")
    assert state.candidate_share(record) == 10
    assert record.history[-1].event == "held"
    assert "team/std: held: gates failed (error-rate, latency-p99)" in capsys.readouterr().out


def test_dry_run_gates_report_and_advance(prometheus: str, tmp_path: Path) -> None:
    path = _rolling(tmp_path, "standard", dry_run=True)
    assert main(["rollout", "advance", str(path), "std", "--prometheus", prometheus, "--now", T2]) == 0
    record = _record(path, "team/std")
    assert state.candidate_share(record) == 25
    assert record.history[-1].detail.startswith("dry run, gates not enforced: error-rate")


def test_rollback_on_failure(prometheus: str, tmp_path: Path) -> None:
    path = _rolling(tmp_path, "standard")
    argv = [
        "rollout",
        "advance",
        str(path),
        "std",
        "--prometheus",
        prometheus,
        "--now",
        T2,
        "--rollback-on-failure",
    ]
    assert main(argv) == 3
    assert _record(path, "team/std").rollout.state == "rolled-back"


def test_unreachable_prometheus_is_a_rollout_error() -> None:
    port = free_port()
    with pytest.raises(RolloutError, match=rf"^http://127\.0\.0\.1:{port}: cannot reach Prometheus: "):
        query_prometheus(f"http://127.0.0.1:{port}", "up", timeout=2)

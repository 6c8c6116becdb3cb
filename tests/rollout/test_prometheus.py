"""Gate evaluation against a real Prometheus server, started on loopback with synthetic data.

The data is written as OpenMetrics, turned into TSDB blocks with ``promtool tsdb
create-blocks-from openmetrics`` and served by ``prometheus`` from a temporary directory. Times
are fixed (the canary started at T1, the data covers T1..T2, gates are judged at T2), so every
value is known in advance.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli import main
from modelplane.errors import RolloutError
from modelplane.rollout import state
from modelplane.rollout.gates import Target, compile_gates
from modelplane.rollout.lock import lock_path, read_lock, write_lock
from modelplane.rollout.policy import Gate
from modelplane.rollout.prometheus import evaluate, query_prometheus
from tests.prometheus import free_port, series, serving_openmetrics
from tests.rollout.builders import STACK, T0, T1, T2, T3, bump, desired, stack_data, write_stack

START = int(state.parse_time(T1).timestamp())
END = int(state.parse_time(T2).timestamp())
STEP = 15

KN_SEL = 'namespace="team",configuration_name="kn-predictor"'
STD_POD = 'namespace="team",pod="std-v2-predictor-6c9f8-x2k4q"'


def _series(name: str, labels: str, per_second: float) -> list[str]:
    return series(name, labels, per_second, START, END, STEP)


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


# --- failure semantics: failureLimit, an unreachable Prometheus, the stack's Prometheus ---


def _rolling_with(tmp_path: Path, mode: str, **policy: Any) -> Path:
    path = _rolling(tmp_path, mode)
    data = yaml.safe_load(path.read_text())
    data["rollout"] |= policy
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_failure_limit_rolls_back_with_its_evidence(
    prometheus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rolling_with(tmp_path, "standard", failureLimit=2)
    argv = ["rollout", "advance", str(path), "--prometheus", prometheus]
    assert main([*argv, "--now", T2]) == 3
    first = _record(path, "team/std")
    assert (first.rollout.state, first.rollout.failures, first.history[-1].event) == (
        "progressing",
        1,
        "held",
    )
    assert first.history[-1].detail.startswith("failed evaluation 1 of 2 at this step: gates failed (")
    assert main([*argv, "--now", T3]) == 3
    record = _record(path, "team/std")
    assert record.rollout.state == "rolled-back"
    assert [e.event for e in record.history] == ["deployed", "started", "held", "rolled-back"]
    assert record.history[-1].detail.startswith(
        "failureLimit 2 reached (2 consecutive failed evaluations); last: gates failed (error-rate, "
        "latency-p99): error-rate [<= 0.01]: unmeasurable"
    )
    assert record.history[-1].detail.endswith("latency-p99 [<= 0.3]: no-data (the query returned no data)")
    assert "team/std: rolled back: gates failed (error-rate, latency-p99)" in capsys.readouterr().out


def test_consecutive_holds_share_one_event(prometheus: str, tmp_path: Path) -> None:
    path = _rolling(tmp_path, "standard")
    for now in (T2, T3, "2026-03-01T11:20:00Z"):
        assert main(["rollout", "advance", str(path), "--prometheus", prometheus, "--now", now]) == 3
    record = _record(path, "team/std")
    assert [e.event for e in record.history] == ["deployed", "started", "held"]
    assert (record.rollout.failures, record.history[-1].at) == (3, "2026-03-01T11:20:00Z")
    assert record.history[-1].detail.startswith("failed evaluation 3 at this step: ")


def test_the_stacks_prometheus_is_asked_without_the_flag(prometheus: str, tmp_path: Path) -> None:
    path = _rolling_with(tmp_path, "knative", prometheus=prometheus)
    assert main(["rollout", "advance", str(path), "--now", T2]) == 0
    assert _record(path, "team/kn").history[-1].detail.startswith("error-rate = 0.000999001")


def test_unreachable_prometheus_is_inconclusive_exit_4_and_one_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rolling(tmp_path, "knative")
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["rollout", "advance", str(path), "--prometheus", url, "--now", T2]) == 4
    record = _record(path, "team/kn")
    assert (state.candidate_share(record), record.rollout.failures) == (10, None)
    assert record.history[-1].event == "inconclusive"
    assert record.history[-1].detail.startswith(f"gates not judged: {url}: cannot reach Prometheus: ")
    assert f"team/kn: not judged: gates not judged: {url}: cannot reach Prometheus" in capsys.readouterr().out
    before = lock_path(path).read_bytes()
    assert main(["rollout", "advance", str(path), "--prometheus", url, "--now", T3]) == 4
    assert lock_path(path).read_bytes() == before  # an outage leaves one event, not one per run


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"error","errorType":"unavailable","error":"overloaded"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def failing_prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_failing_prometheus_is_inconclusive_not_a_failed_gate(
    failing_prometheus: str, tmp_path: Path
) -> None:
    path = _rolling_with(tmp_path, "standard", failureLimit=1)
    assert main(["rollout", "advance", str(path), "--prometheus", failing_prometheus, "--now", T2]) == 4
    record = _record(path, "team/std")
    assert record.rollout.state == "progressing"  # a failureLimit of 1 did not roll it back
    assert record.history[-1].detail == (
        f"gates not judged: {failing_prometheus}: Prometheus answered HTTP 503: overloaded"
    )

"""``rollout status --watch`` follows a rollout; ``reconcile --notify`` tells a webhook."""

from __future__ import annotations

import http.server
import io
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import main
from modelplane.rollout.report import watch
from tests.rollout.builders import T2, T3
from tests.rollout.test_cli import rolling
from tests.rollout.test_cli import stack as stack

MODELPLANE = str(Path(sys.executable).parent / "modelplane")
WAIT = 120  # seconds before a line that never comes fails the test (not a timed assertion)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_piped_watch_prints_one_line_per_change_and_ends_with_the_rollout(stack: Path) -> None:
    rolling(stack)
    process = subprocess.Popen(
        [MODELPLANE, "rollout", "status", str(stack), "std", "--watch", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = _lines(process)
        assert lines.get(timeout=WAIT).endswith(" team/std: canary v2 at 10% (step 1 of 3), v1 90%")
        assert main(["rollout", "advance", str(stack), "std", "--skip-gates", "--now", T2]) == 0
        assert lines.get(timeout=WAIT).endswith(" team/std: canary v2 at 50% (step 2 of 3), v1 50%")
        assert main(["rollout", "promote", str(stack), "std", "--now", T3]) == 0
        assert lines.get(timeout=WAIT).endswith(" team/std: steady on v2")
        assert process.wait(timeout=WAIT) == 0  # nothing left in progress: the watch ends by itself
        assert lines.empty()
    finally:
        process.kill()
        process.wait()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_whole_status_is_redrawn() -> None:
    def model(state: str, rollout: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "model": "team/std",
            "mode": "standard",
            "state": state,
            "pending": None,
            "renderedTraffic": [],
            "mirrorPercent": 0,
            "next": None,
            "rollout": rollout,
            "gates": [],
            "history": [],
        }

    reports = iter(
        [
            {
                "lockExists": True,
                "lock": "x.lock.yaml",
                "file": "x.yaml",
                "now": T2,
                "models": [model("canary", {"state": "progressing"})],
            },
            {
                "lockExists": True,
                "lock": "x.lock.yaml",
                "file": "x.yaml",
                "now": T3,
                "models": [model("steady on v2", None)],
            },
        ]
    )
    screen = _Terminal()
    assert watch(lambda: next(reports), interval=1, out=screen, sleep=lambda _: None) == 0
    frames = screen.getvalue().split("\033[H\033[2J")[1:]
    assert [frame.splitlines()[1] for frame in frames] == ["  canary", "  steady on v2"]


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_reconcile_notifies_a_webhook_of_what_happened(stack: Path, webhook: tuple[str, list[Any]]) -> None:
    url, received = webhook
    rolling(stack)
    argv = ["rollout", "reconcile", str(stack), "--advance", "--skip-gates", "--now", T2, "--notify", url]
    assert main([*argv, "--render-dir", str(stack.parent / "deploy")]) == 0
    (body,) = received
    assert body["text"] == "modelplane test: team/std: advanced: canary v2 at 50% (step 2 of 3), v1 50%"
    assert (body["stack"], body["exitCode"], body["report"]["command"]) == ("test", 0, "reconcile")
    assert main([*argv, "--render-dir", str(stack.parent / "deploy")]) == 0
    assert len(received) == 1  # nothing happened the second time: no notification


def test_an_unreachable_webhook_is_a_warning(stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rolling(stack)
    argv = ["rollout", "reconcile", str(stack), "--advance", "--skip-gates", "--now", T2]
    assert main([*argv, "--notify", "http://127.0.0.1:9/hook", "--render-dir", str(stack.parent / "d")]) == 0
    assert "modelplane: warning: the notification was not delivered: " in capsys.readouterr().err

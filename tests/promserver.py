"""A real Prometheus server for tests: synthetic OpenMetrics turned into TSDB blocks, served on loopback.

``promtool tsdb create-blocks-from openmetrics`` writes the blocks and ``prometheus`` serves them
from a temporary directory on 127.0.0.1 at a free port. The server is stopped when the context
ends, whatever happens; tests skip with the reason when Debian's ``prometheus`` package (which
``make system-deps`` installs) is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def series(name: str, labels: str, per_second: float, start: int, end: int, step: int = 15) -> list[str]:
    """A counter growing at ``per_second`` from ``start`` to ``end`` (Unix seconds), one sample per ``step``."""
    return [f"{name}{{{labels}}} {per_second * (t - start):.6f} {t}" for t in range(start, end + 1, step)]


@contextmanager
def serve_prometheus(root: Path, openmetrics: str) -> Iterator[str]:
    """Serve ``openmetrics`` from a Prometheus on 127.0.0.1; yields its URL."""
    missing = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed (Debian package `prometheus`; `make system-deps`)"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.om").write_text(openmetrics)
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "tsdb")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    url = f"http://127.0.0.1:{free_port()}"
    with (root / "prometheus.log").open("w") as log:
        server = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address={url.removeprefix('http://')}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"prometheus did not become ready: {(root / 'prometheus.log').read_text()[-2000:]}"
                    )
                time.sleep(0.2)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)

"""A real Prometheus server for tests: Debian's ``prometheus`` on loopback, with data it is given.

Two ways to give it data: synthetic series written as OpenMetrics and turned into TSDB blocks by
``promtool tsdb create-blocks-from openmetrics`` (``tsdb_from_openmetrics``), or a scrape
configuration pointing at exporters the test runs on loopback. The server runs under
``tests/servers/watchdog.py`` in its own process group, so it ends with the test's fixture or,
if the test run is killed, by itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.servers.harness import stop

WATCHDOG = Path(__file__).resolve().parent / "servers" / "watchdog.py"
DEADLINE_SECONDS = 900
"""The longest a Prometheus server may live, whatever happens to the test run."""


def require_prometheus() -> None:
    """Skip, saying how to install them, when promtool or prometheus is missing."""
    missing = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not installed (Debian package `prometheus`; `make system-deps`)"
        )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def series(name: str, labels: str, per_second: float, start: int, end: int, step: int = 15) -> list[str]:
    """A counter growing at ``per_second`` from ``start`` to ``end`` (Unix seconds), one sample per ``step``."""
    return [f"{name}{{{labels}}} {per_second * (t - start):.6f} {t}" for t in range(start, end + 1, step)]


def tsdb_from_openmetrics(root: Path, text: str) -> Path:
    """TSDB blocks under ``root/tsdb`` holding the series of an OpenMetrics text (ending in ``# EOF``)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data.om").write_text(text, encoding="utf-8")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "tsdb")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return root / "tsdb"


@contextmanager
def prometheus_server(root: Path, *, config: str = "global:\n  scrape_interval: 1m\n") -> Iterator[str]:
    """Prometheus on 127.0.0.1 with ``config`` and the TSDB under ``root/tsdb``; its URL."""
    require_prometheus()
    (root / "prometheus.yml").write_text(config, encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    log_path = root / "prometheus.log"
    command = [
        sys.executable,
        str(WATCHDOG),
        str(os.getpid()),
        str(DEADLINE_SECONDS),
        "--",
        "prometheus",
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'tsdb'}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address={url.removeprefix('http://')}",
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
                pytest.fail(f"prometheus did not become ready: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop(server)


@contextmanager
def serving_openmetrics(root: Path, text: str) -> Iterator[str]:
    """Prometheus serving the series of an OpenMetrics text (``tsdb_from_openmetrics``); its URL."""
    require_prometheus()
    tsdb_from_openmetrics(root, text)
    with prometheus_server(root) as url:
        yield url


def instant(url: str, query: str, *, at: float | None = None) -> list[dict[str, Any]]:
    """The result vector of an instant query (``at`` a Unix time, default now)."""
    params = {"query": query} | ({"time": f"{at:.3f}"} if at is not None else {})
    with urllib.request.urlopen(
        f"{url}/api/v1/query?{urllib.parse.urlencode(params)}", timeout=10
    ) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(url: str, query: str, *, at: float | None = None) -> float | None:
    """The one value an aggregating query returns, or None when it returns nothing."""
    result = instant(url, query, at=at)
    if not result:
        return None
    assert len(result) == 1, result
    return float(result[0]["value"][1])

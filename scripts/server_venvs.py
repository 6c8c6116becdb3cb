#!/usr/bin/env python3
"""Install the real model servers the tests run, each into its own cached virtual environment.

The catalog's runtimes run servers whose Python packages pin conflicting dependencies (MLServer
and KServe disagree on fastapi, uvicorn, protobuf and numpy), so each server gets its own venv
under ``${XDG_CACHE_HOME:-~/.cache}/modelplane/servers/<name>-<version>``, pinned to the version
the catalog's image carries. A venv is rebuilt only when its requirement list changes (a stamp
file holds the list), so a second run costs a fraction of a second.

Usage: ``server_venvs.py [--only NAME ...] [--list]``. ``--list`` prints one line per server,
``name path``, without installing. Exit 0 when every requested venv is ready, 1 when an install
failed (pip's output is shown).

TorchServe is not here: its only PyPI build of torch pulls the CUDA libraries (gigabytes), and
the KServe wrapper the ``torchserve-kfs`` image starts is not published on PyPI (see
``docs/runtimes.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Server:
    """One model server and the exact packages its venv holds."""

    name: str
    version: str
    requirements: tuple[str, ...]


SERVERS: tuple[Server, ...] = (
    # seldonio/mlserver:1.7.1 (runtimes/mlserver.yaml) with the inference runtimes it ships for
    # the catalog's formats. The image installs MLServer under the constraints exported from
    # MLServer's poetry.lock at tag 1.7.1; these are that lock's versions of the packages that
    # decide what the server does (newer uvloop, for one, breaks its worker pool).
    Server(
        "mlserver",
        "1.7.1",
        (
            "mlserver==1.7.1",
            "mlserver-sklearn==1.7.1",
            "mlserver-xgboost==1.7.1",
            "mlserver-lightgbm==1.7.1",
            "fastapi==0.115.2",
            "starlette==0.40.0",
            "starlette-exporter==0.23.0",
            "uvicorn==0.32.0",
            "uvloop==0.21.0",
            "grpcio==1.67.1",
            "protobuf==5.28.3",
            "py-grpc-prometheus==0.8.0",
            "prometheus-client==0.21.0",
            "pydantic==2.9.2",
            "pydantic-settings==2.6.1",
            "numpy==1.26.4",
            "pandas==2.2.3",
            "scipy==1.13.1",
            "scikit-learn==1.5.2",
            "joblib==1.4.2",
            "xgboost==2.1.2",
            "lightgbm==4.6.0",
        ),
    ),
    # kserve/{sklearn,xgb,lgb}server:v0.20.0 (runtimes/sklearn.yaml, xgboost.yaml,
    # lightgbm.yaml) are built on KServe's Python model server, the `kserve` package at the same
    # version; the versions beside it are those of python/sklearnserver/uv.lock at v0.20.0.
    Server(
        "kserve",
        "0.20.0",
        (
            "kserve==0.20.0",
            "fastapi==0.136.1",
            "uvicorn==0.46.0",
            "uvloop==0.22.1",
            "grpcio==1.80.0",
            "protobuf==6.33.6",
            "prometheus-client==0.25.0",
            "pydantic==2.13.3",
            "numpy==2.4.4",
            "pandas==2.3.3",
            "orjson==3.11.8",
            "httpx==0.28.1",
        ),
    ),
)


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/modelplane/servers``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / "servers"


def venv_path(server: Server) -> Path:
    """Where a server's venv lives."""
    return cache_root() / f"{server.name}-{server.version}"


def _stamp(server: Server) -> str:
    text = "\n".join((sys.version.split()[0], *server.requirements))
    return hashlib.sha256(text.encode()).hexdigest()


def ready(server: Server) -> bool:
    """Whether the server's venv exists with exactly its requirement list installed."""
    stamp = venv_path(server) / ".modelplane-stamp"
    return stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == _stamp(server)


def install(server: Server) -> bool:
    """Create the venv afresh and install the server; True on success."""
    path = venv_path(server)
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    steps = [
        [sys.executable, "-m", "venv", str(path)],
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *server.requirements],
    ]
    for step in steps:
        result = subprocess.run(step, check=False)
        if result.returncode != 0:
            print(f"server venv {server.name}: {' '.join(step[2:])} failed", file=sys.stderr)
            return False
    (path / ".modelplane-stamp").write_text(_stamp(server) + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    print(
        f"server venv {server.name}-{server.version}: installed in {time.monotonic() - started:.0f} s, "
        f"{size / 2**20:.0f} MiB"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help="install only this server (repeatable)")
    parser.add_argument("--list", action="store_true", help="print `name path` per server, install nothing")
    args = parser.parse_args(argv)
    known = {s.name: s for s in SERVERS}
    unknown = sorted(set(args.only) - set(known))
    if unknown:
        print(f"unknown server(s): {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.only] if args.only else list(SERVERS)
    if args.list:
        for server in chosen:
            print(server.name, venv_path(server))
        return 0
    ok = True
    for server in chosen:
        if not ready(server):
            ok = install(server) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

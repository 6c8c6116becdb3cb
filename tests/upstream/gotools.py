"""Go programs the upstream checks run, built on demand and cached outside the project.

Two kinds: small programs of this project (``tools/<name>``, built from their sources and
pinned go.mod/go.sum, named by a hash of them) and upstream's own commands (``go install
module/cmd@version``, named by that version). Both land in
``${XDG_CACHE_HOME:-~/.cache}/modelplane/bin/`` and are reused until their inputs change.
``module_dir`` finds an upstream Go module in the module cache, downloading it once; a module
zip carries every file of its repository at the tag (kustomize directories included), read in
place and never copied into the project.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class GoMissingError(RuntimeError):
    """The Go toolchain is not installed, so a tool cannot be built."""


class GoDownloadError(RuntimeError):
    """A module could not be fetched (no module proxy, no network)."""


def cache_dir() -> Path:
    """Where built tools are kept, outside the project."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / "bin"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise GoMissingError("the Go toolchain (go) is not on PATH")
    return go


def source_hash(source: Path) -> str:
    """A hash of everything a tool of this project is built from (sources, go.mod, go.sum)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.iterdir() if p.suffix in (".go", ".mod", ".sum")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _build_into(target: Path, command: list[str], *, cwd: Path, env: dict[str, str], what: str) -> Path:
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        result = subprocess.run(
            [arg.replace("{out}", tmp) for arg in command],
            cwd=cwd,
            env={**os.environ, "CGO_ENABLED": "0", **{k: v.replace("{out}", tmp) for k, v in env.items()}},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"building {what} failed:\n{result.stderr[-4000:]}")
        built = next(p for p in Path(tmp).iterdir() if p.is_file())
        built.replace(target)  # atomic: a concurrent build of the same inputs wins either way
    return target


def build_source(name: str, *, trimpath: bool = True) -> Path:
    """``tools/<name>`` built now, unless a build of the same sources is cached."""
    source = ROOT / "tools" / name
    target = cache_dir() / f"{name}-{source_hash(source)}"
    flags = ["-trimpath"] if trimpath else []
    return _build_into(
        target,
        [_go(), "build", *flags, "-o", "{out}/" + name, "."],
        cwd=source,
        env={"GOFLAGS": "-mod=readonly"},
        what=f"tools/{name}",
    )


def install(package: str, version: str, name: str) -> Path:
    """Upstream's command ``package@version`` (``go install``), built once per version."""
    target = cache_dir() / f"{name}-{version}"
    return _build_into(
        target,
        [_go(), "install", "-trimpath", f"{package}@{version}"],
        cwd=cache_dir(),
        env={"GOBIN": "{out}"},
        what=f"{package}@{version}",
    )


def module_dir(module: str, version: str) -> Path:
    """The directory of ``module@version`` in the Go module cache, downloading it if it is not there."""
    result = subprocess.run(
        [_go(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=cache_dir().parent if cache_dir().parent.is_dir() else Path.home(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = {}
    if result.returncode != 0 or "Dir" not in info:
        raise GoDownloadError(
            f"go mod download {module}@{version}: {info.get('Error') or result.stderr.strip()}"
        )
    return Path(info["Dir"])

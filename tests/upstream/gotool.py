"""Building the project's small Go tools (``tools/<name>``) on demand, cached outside the project.

Each tool wraps upstream's own Go code (Kubernetes' Pod Security evaluator, KServe's admission
webhooks) at the version the stacks pin. A build lands in ``${XDG_CACHE_HOME:-~/.cache}/
modelplane/bin/<name>-<hash>``, named by a hash of the tool's sources, go.mod and go.sum, so a
change to the program or its pinned modules rebuilds it and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class GoMissingError(RuntimeError):
    """The Go toolchain is not installed, so a tool cannot be built."""


def cache_dir() -> Path:
    """Where built tools are kept, outside the project."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / "bin"


def source_hash(source: Path) -> str:
    """A hash of everything a tool is built from (sources, go.mod, go.sum)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.iterdir() if p.suffix in (".go", ".mod", ".sum")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(name: str, *, timeout: int = 1800) -> Path:
    """The binary of ``tools/<name>``, built now unless a build of the same sources is cached.

    Raises:
        GoMissingError: Go is not on PATH.
        RuntimeError: the build failed (its output is in the message).
    """
    source = ROOT / "tools" / name
    target = cache_dir() / f"{name}-{source_hash(source)}"
    if target.is_file():
        return target
    go = shutil.which("go")
    if go is None:
        raise GoMissingError("the Go toolchain (go) is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / name
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        result = subprocess.run(
            [go, "build", "-trimpath", "-o", str(built), "."],
            cwd=source,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"go build of {source} failed:\n{result.stderr}")
        built.replace(target)  # atomic: a concurrent build of the same sources wins either way
    return target

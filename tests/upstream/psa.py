"""Kubernetes' own Pod Security admission checks, run on pod specs without an API server.

``tools/psa`` is a small Go program around ``k8s.io/pod-security-admission`` (the evaluator
the API server's admission plugin runs) at the version of the Kubernetes release the stacks
pin. It is built on demand with the Go toolchain into
``${XDG_CACHE_HOME:-~/.cache}/modelplane/bin/``, named by a hash of its sources, so a change
to the program or its pinned module rebuilds it and an unchanged one is reused.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.kube import Obj
from tests.upstream import gotools

LEVELS = ("baseline", "restricted")


def build() -> Path:
    """The evaluator binary, built now unless a build of the same sources is cached."""
    return gotools.build_source("psa")


@dataclass(frozen=True)
class Verdict:
    """What Pod Security admission says of one pod at each level (empty lists: admitted)."""

    id: str
    baseline: tuple[str, ...]
    restricted: tuple[str, ...]

    def allowed(self, level: str) -> bool:
        return not getattr(self, level)


def _violations(items: list[dict[str, str]]) -> tuple[str, ...]:
    return tuple(f"{v['reason']}: {v['detail']}" if v["detail"] else v["reason"] for v in items)


def evaluate(binary: Path, pods: list[tuple[str, Obj, Obj]], *, kubernetes: str) -> list[Verdict]:
    """Evaluate pods, each ``(id, metadata, pod spec)``, at the policy version of a Kubernetes minor."""
    payload: list[dict[str, Any]] = [{"id": i, "metadata": m, "spec": s} for i, m, s in pods]
    result = subprocess.run(
        [str(binary), "-version", f"v{kubernetes.lstrip('v')}"],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psa failed (exit {result.returncode}): {result.stderr.strip()}")
    return [
        Verdict(v["id"], _violations(v["baseline"]), _violations(v["restricted"]))
        for v in json.loads(result.stdout)
    ]


def pod_metadata(obj: Obj) -> Obj:
    """The metadata of the pods an object runs (the template's), which PSA reads for annotations."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Pod":
        meta = obj.get("metadata") or {}
    elif obj["kind"] == "CronJob":
        meta = spec["jobTemplate"]["spec"]["template"].get("metadata") or {}
    else:
        meta = (spec.get("template") or {}).get("metadata") or {}
    return {k: v for k, v in meta.items() if k in ("annotations", "labels")}

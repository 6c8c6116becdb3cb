"""KServe's own admission webhooks, run on rendered objects without an API server.

``tools/kserve-webhook`` is a small Go program around KServe's validating webhooks at the
KServe release the stacks pin (``github.com/kserve/kserve`` v0.20.0, with the module
replacements KServe's own go.mod makes): the InferenceService, InferenceGraph and
LLMInferenceService validators, and the ServingRuntime and ClusterServingRuntime webhooks over a
fake client holding every runtime of the same input. It is built on demand (``gotools``).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from modelplane.kube import Obj
from tests.upstream import gotools

GoMissingError = gotools.GoMissingError


def build() -> Path:
    """The webhook binary, built now unless a build of the same sources is cached."""
    return gotools.build_source("kserve-webhook")


@dataclass(frozen=True)
class Verdict:
    """What KServe's webhook says of one object."""

    kind: str
    namespace: str
    name: str
    checked: bool
    allowed: bool
    message: str
    warnings: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}: {self.message}"


def admit(binary: Path, objects: list[Obj]) -> list[Verdict]:
    """KServe's verdict on each object, as one cluster holding all of them (runtimes see each other)."""
    result = subprocess.run(
        [str(binary)], input=json.dumps(objects), capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kserve-webhook failed (exit {result.returncode}): {result.stderr.strip()}")
    return [
        Verdict(
            v["kind"],
            v["namespace"],
            v["name"],
            v["checked"],
            v["allowed"],
            v["message"],
            tuple(v["warnings"]),
        )
        for v in json.loads(result.stdout)
    ]


def refused(binary: Path, objects: list[Obj]) -> list[str]:
    """Every object KServe's webhooks refuse, with the reason (empty: all admitted)."""
    return [str(v) for v in admit(binary, objects) if not v.allowed]

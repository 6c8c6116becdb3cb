"""Kustomize releases rendered by the real kustomize, exactly as modelplane declares them.

A ``KustomizeRelease`` names directories of an upstream repository at a tag, and
``KustomizeRelease.overlay(path)`` is the kustomization modelplane applies for each: the
namespace, the remote directory and the patches. The repository's files at that tag are the
release's Go module (a module zip carries every file of the repository), so the overlay is
rendered with its one remote resource pointed at the same directory in the module cache and
nothing else changed, by kustomize built from its own Go module at the version below.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelplane.kube import Obj
from modelplane.upstream import KustomizeRelease
from tests.upstream import gotools

KUSTOMIZE = ("sigs.k8s.io/kustomize/kustomize/v5", "v5.7.1")
"""The kustomize command and version (kustomize api v0.20.1: what Flux's kustomize-controller and
pulumi-kubernetes' kustomize.v2.Directory build with in their current releases). v5.8 needs a
newer Go than the toolchain the tests run with."""

GO_MODULES: dict[str, str] = {
    "https://github.com/kserve/modelmesh-serving": "github.com/kserve/modelmesh-serving"
}
"""The Go module of each kustomize release's repository."""


def kustomize() -> Path:
    """The kustomize binary, built from its Go module on first use."""
    package, version = KUSTOMIZE
    return gotools.install(package, version, "kustomize")


def source_dir(release: KustomizeRelease) -> Path:
    """The repository of a release at its tag: its Go module, from the module cache."""
    return gotools.module_dir(GO_MODULES[release.repository], release.ref)


@dataclass(frozen=True)
class Rendered:
    """One path of a kustomize release, built."""

    release: KustomizeRelease
    path: str
    objects: list[Obj]

    def workloads(self) -> list[tuple[Obj, Obj]]:
        """``(object, pod spec)`` of every pod template rendered."""
        return [(o, o["spec"]["template"]["spec"]) for o in self.objects if o["kind"] in _WORKLOADS]


_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet")


def render(release: KustomizeRelease, path: str, *, binary: Path, workdir: Path) -> Rendered:
    """Build modelplane's overlay of one path with kustomize."""
    overlay = release.overlay(path)
    assert overlay["resources"] == [release.remote_url(path)], overlay["resources"]
    directory = workdir / release.release / path.replace("/", "_")
    directory.mkdir(parents=True, exist_ok=True)
    # kustomize takes another directory as a resource only by a relative path.
    overlay["resources"] = [os.path.relpath(source_dir(release) / path, directory)]
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(overlay, sort_keys=True), encoding="utf-8")
    result = subprocess.run(
        [str(binary), "build", str(directory)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"kustomize build of {release.release} {path} failed:\n{result.stderr}")
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    return Rendered(release, path, objects)

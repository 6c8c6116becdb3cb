#!/usr/bin/env python3
"""Build the upstream control-plane binaries from their Go modules, cached per version.

The cluster tests (``tests/cluster/``) run the real kube-apiserver, etcd, kube-controller-manager,
kube-scheduler, KServe's manager, Knative Serving's webhook and controller, and kwok; the image
tests (``tests/test_images_registry.py``) run the CNCF distribution registry and crane. No image or
release binary can be downloaded, so each is built here with the ordinary Go tools from the
module a stack pins, through a small wrapper module of ours under ``tools/<name>/``: it requires
the upstream module, carries over the upstream go.mod's ``replace`` and ``exclude`` directives
(they bind only the main module, so ``go install pkg@version`` refuses such modules), and lists
the upstream ``main`` packages as ``tool`` directives so ``go mod tidy`` keeps what they need.

``generate`` writes those go.mod files from upstream's own go.mod (for ``k8s.io/kubernetes``
every ``./staging/src/k8s.io/X`` replace becomes the published ``k8s.io/X v0.<minor>.<patch>``)
and runs ``go mod tidy``; run it only to bump a version. ``build`` (the default) builds what is
missing into ``${XDG_CACHE_HOME:-~/.cache}/modelplane/bin/<name>-<version>-<key>/``, where the
key hashes the wrapper's go.mod and go.sum, the Go version and the link flags, so a second run
only checks that the binaries exist. ``--json`` prints ``{name: bin dir}`` for the test fixture.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = ROOT / "tools"


@dataclass(frozen=True)
class Wrapper:
    """One wrapper module: the upstream module it requires and the ``main`` packages it builds."""

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    local_packages: tuple[str, ...] = ()
    ldflags: tuple[str, ...] = field(default=())
    tags: tuple[str, ...] = ()
    """Build tags upstream's release build sets."""
    path: str = ""
    """Directory under ``tools/`` (default: ``name``)."""
    local_replaces: tuple[tuple[str, str], ...] = ()
    """(module, published version) for upstream replaces that point at a sibling directory of
    its repository: ``M => ../x`` becomes ``M => M version``."""

    optional: bool = False
    """Built only when named: too heavy for every ``make test`` (the cluster tests use it when cached)."""

    @property
    def directory(self) -> Path:
        return TOOLS_DIR / (self.path or self.name)

    @property
    def binaries(self) -> tuple[str, ...]:
        return tuple(p.rsplit("/", 1)[1] for p in (*self.packages, *self.local_packages))


KUBERNETES_VERSION = "v1.33.13"  # the newest v1.33.x on the module proxy; stacks pin Kubernetes 1.33


def _kube_version_ldflags(version: str) -> tuple[str, ...]:
    # What hack/lib/version.sh stamps into a release build: without it the API server reports
    # v0.0.0-master and clients that check the server version (Knative's webhook) refuse it.
    major, minor = version.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return tuple(flags)


WRAPPERS: dict[str, Wrapper] = {
    w.name: w
    for w in (
        Wrapper(
            name="kube",
            module="k8s.io/kubernetes",
            version=KUBERNETES_VERSION,
            packages=(
                "k8s.io/kubernetes/cmd/kube-apiserver",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-scheduler",
            ),
            # etcd at the version k8s.io/kubernetes itself requires, through its etcdmain.
            local_packages=("./cmd/etcd",),
            ldflags=_kube_version_ldflags(KUBERNETES_VERSION),
        ),
        Wrapper(
            name="kserve",
            module="github.com/kserve/kserve",
            version="v0.20.0",
            packages=("github.com/kserve/kserve/cmd/manager",),
        ),
        Wrapper(
            # Knative's Go modules are tagged v0.<minor + 27>.<patch> beside knative-v1.<minor>.<patch>:
            # Knative Serving 1.21.1 (what stacks pin) is knative.dev/serving v0.48.1, the version
            # KServe v0.20.0's own go.mod requires.
            name="knative",
            module="knative.dev/serving",
            version="v0.48.1",
            packages=("knative.dev/serving/cmd/webhook", "knative.dev/serving/cmd/controller"),
        ),
        Wrapper(
            # KServe hands a Standard-mode model that scales on a Prometheus metric to KEDA; the
            # operator turns its ScaledObject into the HPA that keeps minReplicaCount pods.
            # Optional: its scalers pull in every cloud SDK (16 min cold on 2 cores).
            name="keda",
            module="github.com/kedacore/keda/v2",
            version="v2.18.0",
            packages=("github.com/kedacore/keda/v2/cmd/operator",),
            optional=True,
        ),
        Wrapper(
            # The CNCF distribution registry: `modelplane images pin` is tested against it (an
            # OCI registry on loopback, in-memory storage, with and without basic auth).
            name="registry",
            module="github.com/distribution/distribution/v3",
            version="v3.1.2",
            packages=("github.com/distribution/distribution/v3/cmd/registry",),
        ),
        Wrapper(
            # go-containerregistry's crane: a second, independent reader of the digests the
            # registry reports, beside modelplane's own client.
            name="crane",
            module="github.com/google/go-containerregistry",
            version="v0.22.1",
            packages=("github.com/google/go-containerregistry/cmd/crane",),
        ),
        Wrapper(
            name="kwok",
            module="sigs.k8s.io/kwok",
            version="v0.7.0",
            packages=("sigs.k8s.io/kwok/cmd/kwok",),
        ),
    )
}


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # never download a toolchain
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def run_go(args: list[str], cwd: Path, *, capture: bool = False) -> str:
    cmd = ["nice", "-n", "10", "go", *args]
    result = subprocess.run(cmd, cwd=cwd, env=go_env(), text=True, capture_output=capture, check=False)
    if result.returncode != 0:
        detail = (result.stderr or "") if capture else ""
        raise SystemExit(f"build_tools: `go {' '.join(args)}` failed in {cwd.name}: {detail.strip()}")
    return result.stdout if capture else ""


def upstream_gomod(wrapper: Wrapper) -> str:
    info = json.loads(
        run_go(["mod", "download", "-json", f"{wrapper.module}@{wrapper.version}"], TOOLS_DIR, capture=True)
    )
    return Path(info["GoMod"]).read_text(encoding="utf-8")


def _directive_lines(gomod: str, keyword: str) -> list[str]:
    """The entries of every ``keyword`` directive, single-line or block, comments dropped."""
    entries: list[str] = []
    in_block = False
    for raw in gomod.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
            elif line:
                entries.append(line)
        elif line == f"{keyword} (":
            in_block = True
        elif line.startswith(f"{keyword} "):
            entries.append(line[len(keyword) + 1 :].strip())
    return entries


def mapped_replaces(wrapper: Wrapper, gomod: str) -> list[str]:
    """Upstream's replace directives, with local staging paths mapped to published versions."""
    patch = wrapper.version.lstrip("v").split(".", 1)[1]  # 1.33.13 -> 33.13 -> v0.33.13
    out = []
    for entry in _directive_lines(gomod, "replace"):
        old, new = (part.strip() for part in entry.split("=>"))
        published = dict(wrapper.local_replaces).get(old)
        if new.startswith("./staging/src/"):
            out.append(f"{old} => {new.removeprefix('./staging/src/')} v0.{patch}")
        elif published and new.startswith("."):
            out.append(f"{old} => {old} {published}")
        elif new.startswith((".", "/")):
            raise SystemExit(f"build_tools: {wrapper.module} replaces {old} by a local path {new}")
        else:
            out.append(f"{old} => {new}")
    return sorted(out)


def gomod_text(wrapper: Wrapper, gomod: str) -> str:
    go_version = re.search(r"^go (\S+)$", gomod, re.M)
    lines = [
        "// Generated by scripts/build_tools.py generate from the go.mod of",
        f"// {wrapper.module}@{wrapper.version}: do not edit by hand.",
        f"module modelplane.dev/tools/{wrapper.path or wrapper.name}",
        "",
        f"go {go_version.group(1) if go_version else '1.24.0'}",
        "",
        f"require {wrapper.module} {wrapper.version}",
        "",
    ]
    for keyword, entries in (
        ("replace", mapped_replaces(wrapper, gomod)),
        ("exclude", sorted(_directive_lines(gomod, "exclude"))),
        ("tool", sorted(wrapper.packages)),
    ):
        if entries:
            lines += [f"{keyword} (", *(f"\t{e}" for e in entries), ")", ""]
    return "\n".join(lines)


def generate(wrapper: Wrapper) -> None:
    directory = wrapper.directory
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "go.mod").write_text(gomod_text(wrapper, upstream_gomod(wrapper)), encoding="utf-8")
    (directory / "go.sum").unlink(missing_ok=True)
    # -e: tidy also resolves tests of dependencies, some of whose modules the proxy does not
    # serve; the build needs none of them and fails by itself if a package it needs is missing.
    run_go(["mod", "tidy", "-e"], directory)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "modelplane" / "bin"


def bin_dir(wrapper: Wrapper) -> Path:
    directory = wrapper.directory
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((directory / name).read_bytes())
    for local in wrapper.local_packages:
        for source in sorted((directory / local).glob("*.go")):
            digest.update(source.read_bytes())
    go_version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    digest.update(go_version.stdout.encode())
    digest.update("\n".join((*wrapper.ldflags, *wrapper.tags)).encode())
    return cache_root() / f"{wrapper.name}-{wrapper.version}-{digest.hexdigest()[:12]}"


def is_built(wrapper: Wrapper) -> bool:
    target = bin_dir(wrapper)
    return all((target / b).is_file() for b in wrapper.binaries)


def build(wrapper: Wrapper) -> Path:
    target = bin_dir(wrapper)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same version: wait for it
        if is_built(wrapper):
            return target
        return _build(wrapper, target)


def _build(wrapper: Wrapper, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier build
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    args = ["build", "-trimpath", "-ldflags", " ".join(("-s", "-w", *wrapper.ldflags)), "-o", str(partial)]
    if wrapper.tags:
        args += ["-tags", ",".join(wrapper.tags)]
    started = time.monotonic()
    print(
        f"build_tools: building {wrapper.name} {wrapper.version} ({', '.join(wrapper.binaries)})",
        file=sys.stderr,
    )
    run_go([*args, *wrapper.packages, *wrapper.local_packages], wrapper.directory)
    partial.rename(target)
    print(
        f"build_tools: {wrapper.name} built in {time.monotonic() - started:.0f} s -> {target}",
        file=sys.stderr,
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="build", choices=["build", "generate"])
    defaults = [n for n, w in WRAPPERS.items() if not w.optional]
    parser.add_argument("names", nargs="*", help=f"wrappers (default: {', '.join(defaults)})")
    parser.add_argument("--json", action="store_true", help="print {name: bin dir} as JSON")
    options = parser.parse_args(argv)
    unknown = sorted(set(options.names) - set(WRAPPERS))
    if unknown:
        parser.error(f"unknown wrapper(s): {', '.join(unknown)}")
    selected = [WRAPPERS[n] for n in options.names or defaults]
    if options.command == "generate":
        for wrapper in selected:
            generate(wrapper)
        return 0
    dirs = {w.name: str(build(w)) for w in selected}
    # Optional tools already built (cached) are offered too; the tests use them when present.
    dirs |= {w.name: str(bin_dir(w)) for w in WRAPPERS.values() if w.name not in dirs and is_built(w)}
    if options.json:
        print(json.dumps(dirs, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

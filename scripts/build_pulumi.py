#!/usr/bin/env python3
"""Build the Pulumi CLI, its Python language host and the Kubernetes provider from Go modules.

``pulumi up`` against the local control plane (``tests/cluster/test_pulumi.py``, ``make e2e``)
needs the engine and its plugins, and nothing can be downloaded here but Go modules and Python
packages. So, like ``scripts/build_tools.py`` (whose wrapper-module machinery this reuses):

- ``tools/pulumi/cli``: the ``pulumi`` CLI from ``github.com/pulumi/pulumi/pkg/v3`` with the
  link flags and build tags of upstream's release (``.goreleaser.yml``), and a Python language
  host of ours (``cmd/pulumi-language-python``: upstream's is an untagged module the proxy does
  not serve; its doc comment says what differs) beside upstream's executor script.
- ``tools/pulumi/kubernetes``: the provider from ``github.com/pulumi/pulumi-kubernetes/provider/v4``
  through our own small main (upstream's embeds files its release build generates), built in a
  directory outside the repository where ``schemagen`` writes those files from the module's
  own ``schema.json``.

Versions: the engine and the provider are built at exactly the versions of the Python SDKs that
``pyproject.toml`` pins (``pulumi``, ``pulumi-kubernetes``): the Python SDK asks the engine for
the provider at its own version, and a test checks the pins and these constants agree. The proxy
serves the provider module only at a pseudo-version: ``v4.0.0-20260115033456-f47bc2d6f199`` is
commit f47bc2d6f199, the commit upstream tagged ``v4.25.0``, so that is the version it reports.

``build`` (the default) builds what is missing into ``${XDG_CACHE_HOME:-~/.cache}/modelplane/bin/``
(one directory per version and content hash) and prints, with ``--json``, where the binaries are;
``home DIR`` makes DIR a ``PULUMI_HOME`` whose plugin directory holds the provider, so that with
``PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION`` and ``PULUMI_IGNORE_AMBIENT_PLUGINS`` the engine
uses exactly these binaries and a missing one is an error, never a download. ``generate``
rewrites the wrappers' go.mod files (only to bump a version). ``--check`` builds nothing and
exits 3 when something is not built yet.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_tools import Wrapper, bin_dir, build, cache_root, generate, is_built, run_go

PULUMI_VERSION = "v3.260.0"
"""Engine and Python SDK (``pulumi`` on PyPI) version."""
PROVIDER_VERSION = "v4.25.0"
"""pulumi-kubernetes release (``pulumi-kubernetes`` on PyPI)."""
PROVIDER_MODULE_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
"""The pseudo-version under which the proxy serves the commit tagged ``PROVIDER_VERSION``."""

PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_BINARY = "pulumi-resource-kubernetes"
EXECUTOR = "pulumi-language-python-exec"
EXIT_NOT_BUILT = 3

CLI = Wrapper(
    name="pulumi-cli",
    path="pulumi/cli",
    module="github.com/pulumi/pulumi/pkg/v3",
    version=PULUMI_VERSION,
    packages=("github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",),
    local_packages=("./cmd/pulumi-language-python",),
    local_replaces=(("github.com/pulumi/pulumi/sdk/v3", PULUMI_VERSION),),
    # upstream .goreleaser.yml (v3.259.0), builds.pulumibin: ldflags and tags.
    ldflags=(f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}",),
    tags=("osusergo", "grpcnotrace"),
)

PROVIDER = Wrapper(
    name="pulumi-kubernetes",
    path="pulumi/kubernetes",
    module=PROVIDER_MODULE,
    version=PROVIDER_MODULE_VERSION,
    packages=(),
    local_packages=("./cmd/pulumi-resource-kubernetes", "./schemagen"),
    local_replaces=(("github.com/pulumi/pulumi-kubernetes/sdk/v4", PROVIDER_VERSION),),
    # upstream .goreleaser.yml (v4.25.0), build-provider: CGO_ENABLED=0 and the version by tag.
    ldflags=(f"-X {PROVIDER_MODULE}/pkg/version.Version={PROVIDER_VERSION}",),
)


def module_dir(module: str, version: str) -> Path:
    """The module cache directory of ``module@version``, downloading it if needed."""
    info = json.loads(
        run_go(["mod", "download", "-json", f"{module}@{version}"], CLI.directory, capture=True)
    )
    return Path(info["Dir"])


def build_cli() -> Path:
    """The CLI and language host, with upstream's executor script beside them."""
    target = build(CLI)
    executor = target / EXECUTOR
    if not executor.is_file():
        source = module_dir("github.com/pulumi/pulumi/sdk/v3", PULUMI_VERSION) / "python" / "cmd" / EXECUTOR
        partial = executor.with_name(EXECUTOR + ".partial")
        shutil.copyfile(source, partial)
        partial.chmod(0o755)
        partial.rename(executor)
    return target


def _provider_key() -> str:
    digest = hashlib.sha256()
    for path in sorted(PROVIDER.directory.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(PROVIDER.directory)).encode())
            digest.update(path.read_bytes())
    go_version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True)
    digest.update(go_version.stdout.encode())
    digest.update("\n".join(PROVIDER.ldflags).encode())
    return digest.hexdigest()[:12]


def provider_dir() -> Path:
    """Where the provider of this wrapper module is (or will be) cached."""
    return cache_root() / f"{PROVIDER.name}-{PROVIDER_VERSION}-{_provider_key()}"


def built() -> bool:
    """Whether the CLI, language host, executor and provider are all in the cache."""
    return (
        is_built(CLI) and (bin_dir(CLI) / EXECUTOR).is_file() and (provider_dir() / PROVIDER_BINARY).is_file()
    )


def build_provider() -> Path:
    """The provider, built in a copy of its wrapper module beside the files it embeds."""
    target = provider_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same version: wait for it
        if (target / PROVIDER_BINARY).is_file():
            return target
        return _build_provider(target)


def _build_provider(target: Path) -> Path:
    key = target.name.rsplit("-", 1)[1]
    shutil.rmtree(target, ignore_errors=True)
    staging = cache_root().parent / "src" / f"{PROVIDER.name}-{key}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(PROVIDER.directory, staging)
    upstream = module_dir(PROVIDER_MODULE, PROVIDER_MODULE_VERSION) / "cmd" / PROVIDER_BINARY
    main_dir = staging / "cmd" / PROVIDER_BINARY
    started = time.monotonic()
    print(f"build_pulumi: building {PROVIDER.name} {PROVIDER_VERSION}", file=sys.stderr)
    run_go(["run", "./schemagen", str(upstream), PROVIDER_VERSION.lstrip("v"), str(main_dir)], staging)
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    ldflags = " ".join(("-s", "-w", *PROVIDER.ldflags))
    os.environ["CGO_ENABLED"] = "0"
    try:
        run_go(
            ["build", "-trimpath", "-ldflags", ldflags, "-o", str(partial), f"./cmd/{PROVIDER_BINARY}"],
            staging,
        )
    finally:
        os.environ.pop("CGO_ENABLED", None)
    partial.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    print(
        f"build_pulumi: {PROVIDER.name} built in {time.monotonic() - started:.0f} s -> {target}",
        file=sys.stderr,
    )
    return target


def make_home(home: Path, provider_dir: Path) -> Path:
    """Lay out ``home`` as a ``PULUMI_HOME`` whose plugin cache holds the built provider.

    Plugin directories are ``<kind>-<name>-v<version>`` and must be real directories
    (sdk/v3 ``go/common/workspace/plugins.go``: ``tryPlugin`` skips anything that is not one);
    the binary inside may be a symlink.
    """
    plugin = home / "plugins" / f"resource-kubernetes-{PROVIDER_VERSION}"
    plugin.mkdir(parents=True, exist_ok=True)
    link = plugin / PROVIDER_BINARY
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(provider_dir / PROVIDER_BINARY)
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="build", choices=["build", "generate", "home"])
    parser.add_argument("directory", nargs="?", help="for `home`: the PULUMI_HOME to lay out")
    parser.add_argument("--json", action="store_true", help="print where the binaries are, as JSON")
    parser.add_argument(
        "--check", action="store_true", help="build nothing: exit 0 if everything is built, 3 if not"
    )
    options = parser.parse_args(argv)
    if options.check:
        return 0 if built() else EXIT_NOT_BUILT
    if options.command == "generate":
        generate(CLI)
        generate(PROVIDER)
        return 0
    if options.command == "home" and not options.directory:
        parser.error("home needs a directory")
    cli, provider = build_cli(), build_provider()
    if options.command == "home":
        make_home(Path(options.directory), provider)
    if options.json:
        print(
            json.dumps(
                {
                    "bin": str(cli),
                    "provider": str(provider),
                    "pulumi": PULUMI_VERSION,
                    "kubernetes": PROVIDER_VERSION,
                },
                sort_keys=True,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

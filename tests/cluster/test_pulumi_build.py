"""The Pulumi build's own logic, without Go: replace mapping and the PULUMI_HOME layout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

UPSTREAM_GOMOD = """module github.com/pulumi/pulumi/pkg/v3

go 1.26.6

replace github.com/pulumi/pulumi/sdk/v3 => ../sdk

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
"""


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.pop(0)


def test_a_replace_into_upstreams_own_repository_becomes_the_published_module() -> None:
    build_pulumi = _script("build_pulumi")
    assert _script("build_tools").mapped_replaces(build_pulumi.CLI, UPSTREAM_GOMOD) == [
        "github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e",
        "github.com/pulumi/pulumi/sdk/v3 => github.com/pulumi/pulumi/sdk/v3 v3.260.0",
    ]


def test_a_local_replace_nobody_mapped_is_refused() -> None:
    build_pulumi = _script("build_pulumi")
    with pytest.raises(
        SystemExit, match=r"replaces github.com/pulumi/pulumi/sdk/v3 by a local path \.\./sdk"
    ):
        _script("build_tools").mapped_replaces(build_pulumi.PROVIDER, UPSTREAM_GOMOD)


def test_home_puts_the_provider_in_a_versioned_plugin_directory(tmp_path: Path) -> None:
    build_pulumi = _script("build_pulumi")
    provider = tmp_path / "built"
    provider.mkdir()
    (provider / "pulumi-resource-kubernetes").write_text("#!/bin/sh\n")
    home = build_pulumi.make_home(tmp_path / "home", provider)
    plugin = home / "plugins" / "resource-kubernetes-v4.25.0"
    # The engine lists plugin directories with os.ReadDir and skips entries that are not real
    # directories (a symlinked directory is not): only the binary inside may be a link.
    assert plugin.is_dir() and not plugin.is_symlink()
    assert (plugin / "pulumi-resource-kubernetes").resolve() == provider / "pulumi-resource-kubernetes"
    assert build_pulumi.make_home(home, provider) == home  # idempotent

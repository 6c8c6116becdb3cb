"""Fixtures for the upstream checks: the stacks to check, their releases rendered once per session.

Every example stack is checked, plus variants that take the branches of the chart values no
example takes (Istio as Knative's networking layer, with and without high availability), so
every value modelplane can emit is rendered by its chart at least once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.build import PlatformObjects, build
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack, parse_stack
from modelplane.upstream import Chart, KustomizeRelease, Release
from tests.conftest import EXAMPLE_STACKS, STACKS
from tests.upstream import gotools, helm, kserve, kustomize, psa


def _variant(
    base: str, change: Callable[[dict[str, Any]], None], what: str
) -> Callable[[], ServingPlatformArgs]:
    def load() -> ServingPlatformArgs:
        data = yaml.safe_load((STACKS / f"{base}.yaml").read_text(encoding="utf-8"))
        data = copy.deepcopy(data)
        change(data)
        return parse_stack(data, f"stacks/{base}.yaml ({what})")

    return load


def _istio(data: dict[str, Any]) -> None:
    data.setdefault("controlPlane", {})["networkLayer"] = "istio"


def _istio_ha(data: dict[str, Any]) -> None:
    _istio(data)
    data["stack"]["tier"] = "staging"


STACK_CASES: dict[str, Callable[[], ServingPlatformArgs]] = {
    **{p.stem: (lambda p=p: load_stack(p)) for p in EXAMPLE_STACKS},
    # Only dev has Knative-mode models, so only its variants install Knative (and Istio).
    "dev-istio": _variant("dev", _istio, "with Knative networking on Istio"),
    "dev-istio-ha": _variant("dev", _istio_ha, "in the staging tier, with Knative networking on Istio"),
}
"""Stacks whose releases are rendered: the examples, and variants for branches they do not take."""


@cache
def stack(case: str) -> ServingPlatformArgs:
    return STACK_CASES[case]()


@cache
def platform(case: str) -> PlatformObjects:
    return build(stack(case))


def release_cases() -> list[tuple[str, str]]:
    """(stack case, release name) of every upstream release of every stack case."""
    return [(case, r.release) for case in STACK_CASES for r in platform(case).charts]


def chart_cases() -> list[tuple[str, str]]:
    """(stack case, release name) of every Helm release (kustomize releases excluded)."""
    return [(case, r.release) for case in STACK_CASES for r in platform(case).charts if isinstance(r, Chart)]


def release_of(case: str, name: str) -> Release:
    return next(r for r in platform(case).charts if r.release == name)


@pytest.fixture(scope="session")
def charts_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared chart copies (release-time rewrites applied), shared by every render of a session."""
    if not helm.CHARTS.is_dir():
        pytest.skip(
            f"upstream chart reference data not found at {helm.CHARTS} (the shared/ directory beside the project)"
        )
    return tmp_path_factory.mktemp("charts")


_RENDERS: dict[str, helm.Rendered] = {}


@pytest.fixture(scope="session")
def render_release(charts_workdir: Path) -> Callable[[str, str], helm.Rendered]:
    """Render one release of one stack case, failing when its pin has no reference data.

    Renders are shared by identical releases (same chart, version, values, name, namespace and
    Kubernetes version), which most stack cases have in common.
    """

    def render(case: str, name: str) -> helm.Rendered:
        release = release_of(case, name)
        assert isinstance(release, Chart), f"{name} is not a Helm release"
        kubernetes = stack(case).versions.kubernetes
        key = json.dumps([release.model_dump(mode="json", exclude={"objects"}), kubernetes], sort_keys=True)
        if key not in _RENDERS:
            if not helm.has_reference(release.chart, release.version):
                pytest.fail(
                    f"{case}: release {name} pins chart {release.chart} {release.version}, which has no "
                    f"reference data at {helm.reference_path(release.chart, release.version)}; pin a "
                    "version upstream publishes and the reference data holds"
                )
            _RENDERS[key] = helm.render(release, kubernetes=kubernetes, workdir=charts_workdir)
        return _RENDERS[key]

    return render


@pytest.fixture(scope="session")
def psa_binary() -> Path:
    """Kubernetes' Pod Security evaluator (tools/psa), built on demand; skips where Go is absent."""
    try:
        return psa.build()
    except gotools.GoMissingError as err:
        pytest.skip(f"cannot build tools/psa, Kubernetes' Pod Security evaluator: {err}")


def kustomize_cases() -> list[tuple[str, str, str]]:
    """(stack case, release name, path) of every path of every kustomize release."""
    return [
        (case, r.release, path)
        for case in STACK_CASES
        for r in platform(case).charts
        if isinstance(r, KustomizeRelease)
        for path in r.paths
    ]


_KUSTOMIZED: dict[str, kustomize.Rendered] = {}


@pytest.fixture(scope="session")
def render_kustomize(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, str, str], kustomize.Rendered]:
    """Build one path of one kustomize release of a stack case with the real kustomize (shared by
    identical releases); skips where Go is absent or the release's module cannot be fetched."""
    try:
        binary = kustomize.kustomize()
    except gotools.GoMissingError as err:
        pytest.skip(f"cannot build kustomize from its Go module: {err}")
    workdir = tmp_path_factory.mktemp("kustomize")

    def render(case: str, name: str, path: str) -> kustomize.Rendered:
        release = release_of(case, name)
        assert isinstance(release, KustomizeRelease), f"{name} is not a kustomize release"
        key = json.dumps([release.model_dump(mode="json"), path], sort_keys=True)
        if key not in _KUSTOMIZED:
            try:
                _KUSTOMIZED[key] = kustomize.render(
                    release, path, binary=binary, workdir=workdir / str(len(_KUSTOMIZED))
                )
            except gotools.GoDownloadError as err:
                pytest.skip(
                    f"{release.repository} {release.ref} is not in the Go module cache and cannot be fetched: {err}"
                )
        return _KUSTOMIZED[key]

    return render


@pytest.fixture(scope="session")
def mmconfig_binary() -> Path:
    """ModelMesh's own configuration loader (tools/mmconfig), built on demand; skips where Go is absent."""
    try:
        # Not trimmed: ModelMesh's config package finds config/default/config-defaults.yaml next to
        # its own source file (pkg/config/config.go:366-371), i.e. in the module cache.
        return gotools.build_source("mmconfig", trimpath=False)
    except gotools.GoMissingError as err:
        pytest.skip(f"cannot build tools/mmconfig, ModelMesh's configuration loader: {err}")


@pytest.fixture(scope="session")
def kserve_webhook() -> Path:
    """KServe's admission webhooks (tools/kserve-webhook), built on demand; skips where Go is absent."""
    try:
        return kserve.build()
    except gotools.GoMissingError as err:
        pytest.skip(f"cannot build tools/kserve-webhook, KServe's admission webhooks: {err}")

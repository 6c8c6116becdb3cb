"""checkov (frameworks ``kubernetes`` and ``secrets``) over the render of every example stack: 0 failed.

checkov 3.3.30 scans the GitOps tree ``modelplane render`` writes, the whole tree at once (its
graph checks, such as a NetworkPolicy for every pod, need every object together). It sees what
modelplane authors; upstream charts appear as ``HelmRelease`` objects and are scored in
``tests/upstream`` by the real charts instead. A failed check either gets fixed or is listed in
``ACCEPTED`` below, the one place that says which finding on which object is accepted and why.
``make checkov`` (part of ``make test``) installs checkov into a cached venv.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import main
from tests.conftest import EXAMPLE_STACKS
from tests.test_images import complete_lock, prod_copy

CHECKOV_VERSION = "3.3.30"
CHECKOV = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "modelplane"
    / f"checkov-{CHECKOV_VERSION}"
    / "bin"
    / "checkov"
)

_ETCD_TAG = (
    "the example prod stack pins by tag (images.pinning: tag): its images are illustrative and no "
    "digest can be resolved for them here; a real prod stack keeps the default images.pinning: "
    "digest with the image lock `modelplane images pin` writes, and then passes both checks "
    "(test_a_prod_stack_with_its_image_lock_passes_the_image_checks)"
)
ACCEPTED: dict[tuple[str, str], str] = {
    ("CKV_K8S_43", "StatefulSet.modelmesh-serving.modelmesh-etcd"): _ETCD_TAG,
    ("CKV_K8S_43", "CronJob.modelmesh-serving.modelmesh-etcd-snapshot"): _ETCD_TAG,
    ("CKV_K8S_15", "StatefulSet.modelmesh-serving.modelmesh-etcd"): _ETCD_TAG,
    ("CKV_K8S_15", "CronJob.modelmesh-serving.modelmesh-etcd-snapshot"): _ETCD_TAG,
}
"""(check, resource as checkov names it) -> why the finding is accepted. Nothing else may fail."""


def _scan(directory: Path, *, quiet: bool = True) -> list[dict[str, Any]]:
    """checkov's reports; ``quiet=False`` lists the passed checks too."""
    done = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "secrets",
            "--skip-download",
            *(["--quiet"] if quiet else []),
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    return report if isinstance(report, list) else [report]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    if not CHECKOV.exists():
        pytest.skip(f"checkov {CHECKOV_VERSION} is not installed at {CHECKOV}: `make checkov` installs it")
    result = {}
    for stack in EXAMPLE_STACKS:
        out = tmp_path_factory.mktemp(stack.stem)
        assert main(["--quiet", "render", str(stack), "-o", str(out / "deploy")]) == 0
        result[stack.stem] = _scan(out / "deploy")
    return result


def _failed(reports: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]}


@pytest.mark.parametrize("stack", [p.stem for p in EXAMPLE_STACKS])
def test_checkov_finds_nothing_but_the_accepted(scans: dict[str, list[dict[str, Any]]], stack: str) -> None:
    reports = scans[stack]
    assert sum(r["summary"]["passed"] for r in reports) > 0
    assert sorted(_failed(reports) - set(ACCEPTED)) == []


def test_every_accepted_finding_still_occurs(scans: dict[str, list[dict[str, Any]]]) -> None:
    """An accepted finding that no longer occurs is a stale entry: remove it."""
    found = set().union(*(_failed(r) for r in scans.values()))
    assert sorted(set(ACCEPTED) - found) == []


IMAGE_CHECKS = ("CKV_K8S_43", "CKV_K8S_15")
"""Image pinned by digest; image pull policy Always (a digest makes IfNotPresent exact)."""


def test_a_prod_stack_with_its_image_lock_passes_the_image_checks(tmp_path: Path) -> None:
    """The prod example under the default images.pinning: digest, with an image lock of fixture digests."""
    if not CHECKOV.exists():
        pytest.skip(f"checkov {CHECKOV_VERSION} is not installed at {CHECKOV}: `make checkov` installs it")
    stack = prod_copy(tmp_path)
    complete_lock(stack)
    assert main(["--quiet", "render", str(stack), "-o", str(tmp_path / "deploy")]) == 0
    reports = _scan(tmp_path / "deploy", quiet=False)
    passed = {
        (c["check_id"], c["resource"])
        for r in reports
        for c in r["results"]["passed_checks"]
        if c["check_id"] in IMAGE_CHECKS
    }
    assert {k for k in ACCEPTED if k[0] in IMAGE_CHECKS} <= passed
    assert sorted(f for f in _failed(reports) if f[0] in IMAGE_CHECKS) == []
    assert sorted(_failed(reports) - set(ACCEPTED)) == []

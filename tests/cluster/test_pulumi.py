"""`pulumi preview` and `pulumi up` for real: the Pulumi engine, its Python language host and the
pulumi-kubernetes provider, built from their Go modules, against the local control plane.

For the dev stack (Knative mode) and staging (Standard mode, GPU pools): the preview plans every
object modelplane renders, `pulumi up` converges and the API server holds every object with
what was rendered, a second `pulumi up` changes nothing, and a version bump recorded by
`modelplane rollout apply` is applied by the next `pulumi up` at the split the lock records, and
`pulumi destroy` removes what `up` created.
What is real and what is substituted: ``tests/cluster/pulumi_project.py``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import build, load_stack
from modelplane.build import PlatformObjects
from modelplane.kube import Obj, resource_name
from modelplane.resources._register import KEPT_KINDS
from modelplane.rollout.lock import Lock, lock_path, read_lock
from tests.cluster.conftest import deployed_lock, install_platform
from tests.cluster.controlplane import control_plane
from tests.cluster.kubectl import Kube, identity
from tests.cluster.pulumi_project import (
    PULUMI_COLD_BUILD,
    Pulumi,
    build_pulumi,
    knative_operator_stand_in,
    pulumi_built,
)
from tests.conftest import ROOT

STACKS = ("dev", "staging")


def _build_constants() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("build_pulumi", ROOT / "scripts" / "build_pulumi.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {"pulumi": module.PULUMI_VERSION, "pulumi-kubernetes": module.PROVIDER_VERSION}


def test_python_sdks_are_pinned_to_the_engine_and_provider_that_are_built() -> None:
    # The Python SDK asks the engine for the provider plugin at its own version: with plugin
    # downloads disabled, any other pin fails at the first Kubernetes object.
    pins = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"(pulumi|pulumi-kubernetes)==(\S+)", requirement)
        if match:
            pins[match.group(1)] = "v" + match.group(2)
    built = _build_constants()
    installed = {name: "v" + installed_version(name) for name in built}
    assert (pins, installed) == (built, built)


@dataclass
class Deployed:
    """A stack deployed by `pulumi up` on a running control plane."""

    name: str
    kube: Kube
    pulumi: Pulumi
    rendered: PlatformObjects
    preview: dict[str, Any]
    """`pulumi preview --json` before the first `up`."""


def chart_objects(rendered: PlatformObjects) -> list[tuple[str, Obj]]:
    """(Pulumi resource name, object) of the objects upstream releases carry."""
    return [
        (f"{c.release}-{resource_name(o)}", o) for c in rendered.charts for o in getattr(c, "objects", ())
    ]


def all_objects(rendered: PlatformObjects) -> list[tuple[str, Obj]]:
    return [(resource_name(o), o) for o in rendered.objects] + chart_objects(rendered)


@pytest.fixture(scope="module")
def cluster_bins(request: pytest.FixtureRequest) -> dict[str, Path]:
    """The control plane's binaries; under ``make e2e`` (MODELPLANE_E2E=1) a skip is a failure."""
    try:
        bins: dict[str, Path] = request.getfixturevalue("tool_bins")
    except pytest.skip.Exception as skipped:
        if os.environ.get("MODELPLANE_E2E") == "1":
            pytest.fail(f"make e2e cannot run on the local control plane: {skipped}")
        raise
    return bins


@pytest.fixture(scope="module")
def pulumi_bins(cluster_bins: dict[str, Path]) -> dict[str, str]:
    if os.environ.get("MODELPLANE_E2E") != "1" and not pulumi_built():
        pytest.skip(
            "the Pulumi CLI and Kubernetes provider are not built yet: `make e2e` builds them from "
            f"their Go modules (cold: {PULUMI_COLD_BUILD}, which would take a clean `make test` past "
            "45 minutes); once built, `make test` runs these tests from the cache"
        )
    return build_pulumi()


@pytest.fixture(scope="module", params=STACKS)
def deployed(
    request: pytest.FixtureRequest,
    cluster_bins: dict[str, Path],
    pulumi_bins: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    name: str = request.param
    stack_file = ROOT / "stacks" / f"{name}.yaml"
    args = load_stack(stack_file)
    rendered = build(args, lock=deployed_lock(stack_file, args))
    workdir = tmp_path_factory.mktemp(f"pulumi-{name}")
    with control_plane(workdir / "cluster", cluster_bins) as cp:
        kube = Kube(cp.kubeconfig)
        install_platform(cp, kube, rendered, stack_file)
        with knative_operator_stand_in(kube):
            pulumi = Pulumi.create(workdir, pulumi_bins, cp.kubeconfig)
            pulumi("stack", "init", name)
            for i, release in enumerate(sorted(c.release for c in rendered.charts)):
                pulumi("config", "set", "--path", f"modelplane:externalReleases[{i}]", release)
            preview = pulumi.json("preview")
            pulumi("up", "--yes", "--skip-preview")
            yield Deployed(name, kube, pulumi, rendered, preview)


def _kubernetes_steps(preview: dict[str, Any]) -> dict[str, str]:
    """Resource name -> operation, for every Kubernetes resource step of a preview."""
    steps = {}
    for step in preview.get("steps", []):
        # urn:pulumi:<stack>::<project>::<parent types joined by $>$<type>::<name>
        _, _, qualified_type, name = step["urn"].split("::", 3)
        if qualified_type.rsplit("$", 1)[-1].startswith("kubernetes:"):
            steps[name] = step["op"]
    return steps


def test_preview_plans_to_create_every_rendered_object(deployed: Deployed) -> None:
    expected = {name: "create" for name, _ in all_objects(deployed.rendered)}
    assert _kubernetes_steps(deployed.preview) == expected


def test_up_puts_every_object_on_the_api_server_as_rendered(deployed: Deployed) -> None:
    problems = []
    for _, obj in all_objects(deployed.rendered):
        meta = obj["metadata"]
        live = deployed.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        if live is None:
            problems.append(f"{identity(obj)}: missing")
            continue
        managers = {m.get("manager", "") for m in live["metadata"].get("managedFields") or []}
        if not any(m.startswith("pulumi-kubernetes") for m in managers):
            problems.append(
                f"{identity(obj)}: not applied by pulumi-kubernetes (managers {sorted(managers)})"
            )
        for path, want, have in _differences(obj.get("spec", {}), live.get("spec", {}), "spec"):
            problems.append(f"{identity(obj)}: {path}: rendered {want!r}, live {have!r}")
    assert problems == []


def _differences(want: Any, have: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """Where ``have`` lacks what ``want`` states (the API server may add defaults, never change)."""
    if isinstance(want, dict) and isinstance(have, dict):
        for key, value in want.items():
            yield from _differences(value, have.get(key), f"{path}.{key}")
    elif isinstance(want, list) and isinstance(have, list) and len(want) == len(have):
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            yield from _differences(w, h, f"{path}[{i}]")
    elif want != have:
        yield path, want, have


def _last_update_changes(pulumi: Pulumi) -> dict[str, int]:
    history = pulumi.json("stack", "history", "--page-size", "1")
    changes: dict[str, int] = history[0].get("resourceChanges", {})
    return changes


def test_a_second_up_changes_nothing(deployed: Deployed) -> None:
    # --expect-no-changes makes the engine itself fail the update on any change.
    deployed.pulumi("up", "--yes", "--skip-preview", "--expect-no-changes")
    changes = _last_update_changes(deployed.pulumi)
    assert {op: n for op, n in changes.items() if op != "same"} == {}
    assert changes.get("same", 0) >= len(all_objects(deployed.rendered))


def _bump(stack_text: str, model: str, version: str) -> str:
    """The stack file with ``model`` at ``version`` (its storage URI follows the version)."""
    data = yaml.safe_load(stack_text)
    for entry in data["models"]:
        if entry["name"] == model:
            entry["version"] = version
            entry["storage"]["uri"] = entry["storage"]["uri"].rstrip("/") + f"/{version}"
            return yaml.safe_dump(data, sort_keys=False)
    raise LookupError(model)


def test_a_version_bump_starts_a_canary_that_up_applies_at_the_locked_split(deployed: Deployed) -> None:
    project = deployed.pulumi.project
    stack_file = project / "stacks" / f"{deployed.name}.yaml"
    args = load_stack(stack_file)
    model = next(m for m in args.models if args.mode(m) != "modelmesh")
    stack_file.write_text(_bump(stack_file.read_text(), model.name, "v99-canary"))

    applied = deployed.pulumi.modelplane("rollout", "apply", str(stack_file))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    lock = read_lock(lock_path(stack_file), stack=deployed.name)
    assert isinstance(lock, Lock)
    key = f"{args.tenant(model.tenant).namespace_name}/{model.name}"
    rollout = lock.models[key].rollout
    assert rollout is not None and rollout.candidate.version == "v99-canary"

    preview = _kubernetes_steps(deployed.pulumi.json("preview"))
    deployed.pulumi("up", "--yes", "--skip-preview")

    rendered = build(load_stack(stack_file), lock=lock)
    isvc = next(
        o for o in rendered.objects if o["kind"] == "InferenceService" and o["metadata"]["name"] == model.name
    )
    namespace = isvc["metadata"]["namespace"]
    live = deployed.kube.get(isvc["apiVersion"], "InferenceService", model.name, namespace)
    assert live is not None
    changed = {name: op for name, op in preview.items() if op != "same"}
    assert changed == {resource_name(isvc): "update"}
    assert list(_differences(isvc["spec"], live["spec"], "spec")) == []
    if args.mode(model) == "knative":
        share = rollout.steps[rollout.step]
        assert live["spec"]["predictor"]["canaryTrafficPercent"] == share


def test_destroy_removes_what_it_created_and_outside_dev_keeps_what_holds_data(deployed: Deployed) -> None:
    """Last in the module: the stack is gone afterwards.

    dev protects nothing. Outside dev, namespaces, CRDs, volumes, StatefulSets and
    InferenceServices are protected, so `pulumi destroy` refuses; once unprotected on purpose,
    destroy deletes everything else and leaves them running (retained on delete).
    """
    keep = deployed.name != "dev"
    if keep:
        refused = deployed.pulumi("destroy", "--yes", "--skip-preview", check=False)
        assert refused.returncode != 0
        assert "protected" in refused.stdout + refused.stderr
        deployed.pulumi("state", "unprotect", "--all", "--yes")
    deployed.pulumi("destroy", "--yes", "--skip-preview")
    left, kept, lost = [], [], []
    for _, obj in all_objects(deployed.rendered):
        meta = obj["metadata"]
        live = deployed.kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        alive = live is not None and not live["metadata"].get("deletionTimestamp")
        if keep and obj["kind"] in KEPT_KINDS:
            (kept if alive else lost).append(identity(obj))
        elif alive:
            left.append(identity(obj))
    assert left == []
    assert lost == []
    assert bool(kept) is keep
    assert deployed.pulumi.json("stack", "output") == {}

"""Deletions come first and loud: upstream releases a change uninstalls, namespaces and storage
Flux then prunes, and (in prod) no removal of a model, tenant, the mesh or monitoring unless the
stack says ``allowRemoval``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import main
from modelplane.rollout.lock import lock_path
from tests.rollout.builders import T0, stack_data, write_stack


def _preview(
    tmp_path: Path,
    base: dict[str, Any],
    head: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    *flags: str,
) -> tuple[int, str, str]:
    base_file = write_stack(tmp_path, base, "base.yaml")
    head_file = write_stack(tmp_path, head, "test.yaml")
    capsys.readouterr()
    code = main(["preview", str(head_file), "--base", str(base_file), "--fail-on", "destructive", *flags])
    out, err = capsys.readouterr()
    return code, out, err


def _caution(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("> - ")]


def test_turning_prometheus_off_uninstalls_its_release_and_is_destructive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = stack_data("standard")
    head = {**copy.deepcopy(base), "monitoring": {"installPrometheus": False}}
    code, out, _ = _preview(tmp_path, base, head, capsys)
    assert code == 3
    assert (
        "> - **removed** `HelmRelease flux-system/kube-prometheus-stack`: removing a HelmRelease uninstalls "
        "the release: everything it created is deleted, its storage with it"
    ) in _caution(out)


def test_removing_the_mesh_lists_the_namespace_flux_prunes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = stack_data("standard", "modelmesh")
    head = stack_data("standard")
    code, out, _ = _preview(tmp_path, base, head, capsys)
    assert code == 3
    caution = _caution(out)
    assert (
        "> - **removed** `Namespace modelmesh-serving`: deleting a Namespace deletes every object in it"
        in caution
    ), caution
    assert any(
        line.startswith("> - **removed** `StatefulSet modelmesh-serving/modelmesh-etcd`") for line in caution
    ), caution


def _prod(*modes: str) -> dict[str, Any]:
    data = stack_data(*modes)
    data["stack"] = {"name": "test", "tier": "prod"}
    data["images"] = {"pinning": "tag"}  # digests are tests/test_images.py's subject
    return data


def _without(data: dict[str, Any], what: str) -> dict[str, Any]:
    head = copy.deepcopy(data)
    if what == "models/team/std":
        head["models"] = [m for m in head["models"] if m["name"] != "std"]
    elif what == "tenants/other":
        head["tenants"] = [t for t in head["tenants"] if t["name"] != "other"]
    elif what == "modelMesh":
        head["models"] = [m for m in head["models"] if m["name"] != "mesh"]
        head["modelMesh"] = {"enabled": False}
    else:
        head["monitoring"] = {"installPrometheus": False}
    return head


@pytest.mark.parametrize("what", ["models/team/std", "tenants/other", "modelMesh", "monitoring"])
def test_a_prod_removal_needs_allow_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    base = _prod("standard", "knative", "modelmesh")
    base["tenants"].append({"name": "other"})
    head = _without(base, what)
    code, out, err = _preview(tmp_path, base, head, capsys)
    assert code == 2 and out == ""
    removed = ["models/team/mesh", what] if what == "modelMesh" else [what]
    assert err.splitlines() == [
        f"{tmp_path / 'test.yaml'}: stack.allowRemoval: this change removes {target} from a prod stack, which "
        f"deletes what serves now; add {target!r} to stack.allowRemoval to allow it (and drop it once the "
        "change is deployed)"
        for target in removed
    ]
    head["stack"]["allowRemoval"] = removed
    code, out, err = _preview(tmp_path, base, head, capsys)
    assert code == 3, err
    assert "destructive change" in out


def test_staging_needs_no_allow_removal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = stack_data("standard", "knative")
    code, _, err = _preview(tmp_path, base, _without(base, "models/team/std"), capsys)
    assert code == 3, err


def test_rollout_apply_refuses_an_unallowed_prod_model_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _prod("standard", "knative")
    path = write_stack(tmp_path, base)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    before = lock_path(path).read_bytes()
    head = _without(base, "models/team/std")
    write_stack(tmp_path, head)
    capsys.readouterr()
    assert main(["rollout", "apply", str(path), "--now", T0]) == 2
    assert lock_path(path).read_bytes() == before
    assert (
        "stack.allowRemoval: this change removes models/team/std from a prod stack" in capsys.readouterr().err
    )
    head["stack"]["allowRemoval"] = ["models/team/std"]
    write_stack(tmp_path, head)
    assert main(["rollout", "apply", str(path), "--now", T0]) == 0
    assert lock_path(path).read_bytes() != before

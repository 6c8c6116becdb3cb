"""A lock that keeps a modelcar: refused clearly, and left behind with a direct change.

An earlier modelplane accepted ``oci://`` storage, whose pods Pod Security "restricted" refuses
in every tenant namespace (KServe v0.20.0 pkg/utils/storage.go:385-441). Its lock still reads;
a canary that would keep that version serving beside the candidate is refused at the model's
path, naming strategy direct, and ``render`` under such a rollout says the same; a direct change
replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelplane.cli import main
from modelplane.rollout import state
from modelplane.rollout.lock import lock_path, read_lock, write_lock
from tests.rollout.builders import STACK, T0, T1, desired, edit, stack_data, write_stack

MODELCAR = "oci://ghcr.io/example/std-model:1"
NATIVE = "oci+native://ghcr.io/example/std-model:1"
CANARY = {"strategy": "canary", "steps": [10, 50, 100], "stepInterval": "10m"}


def _data(uri: str, **changes: Any) -> dict[str, Any]:
    data = edit(stack_data("standard", rollout=CANARY), "std", storage_uri=uri, **changes)
    data["controlPlane"]["imageVolume"] = True
    return data


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """A stack moved to oci+native://, over the lock an earlier modelplane wrote for its modelcar."""
    path = write_stack(tmp_path, _data(NATIVE))
    write_lock(state.apply(None, desired(_data(MODELCAR)), stack=STACK, now=T0), lock_path(path))
    return path


def test_a_lock_that_keeps_a_modelcar_still_reads(stack: Path) -> None:
    lock = read_lock(lock_path(stack), stack=STACK)
    assert lock is not None
    assert lock.models["team/std"].stable.spec["storageUri"] == MODELCAR


def test_a_canary_beside_a_modelcar_is_refused_at_the_models_storage(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = lock_path(stack).read_bytes()
    capsys.readouterr()
    assert main(["rollout", "apply", str(stack), "--now", T1]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"{stack}: models[0].storage.uri: the stable version 'v1' (runtime 'sklearn') keeps serving until the "
        "rollout is promoted, and its pods cannot start: oci:// runs the model as a modelcar"
    )
    assert "pkg/utils/storage.go:385-441" in line
    assert "Pod Security 'restricted'" in line
    assert line.endswith(
        f'roll this change out with strategy direct, which replaces the stable version at once (got "{MODELCAR}")'
    )
    assert lock_path(stack).read_bytes() == before


def test_a_direct_change_replaces_the_modelcar(stack: Path) -> None:
    write_stack(stack.parent, _data(NATIVE, rollout={"strategy": "direct"}), stack.name)
    assert main(["rollout", "apply", str(stack), "--now", T1]) == 0
    lock = read_lock(lock_path(stack), stack=STACK)
    assert lock is not None
    record = lock.models["team/std"]
    assert (record.rollout, record.stable.spec["storageUri"]) == (None, NATIVE)


def test_render_under_a_rollout_beside_a_modelcar_is_refused(
    stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A rollout an earlier modelplane started: modelcar stable, candidate v2.
    older = state.apply(None, desired(_data(MODELCAR)), stack=STACK, now=T0)
    candidate = _data(NATIVE, version="v2")
    write_lock(state.apply(older, desired(candidate), stack=STACK, now=T1), lock_path(stack))
    write_stack(stack.parent, candidate, stack.name)
    assert main(["render", str(stack), "-o", str(stack.parent / "out")]) == 2
    err = capsys.readouterr().err
    assert "models[0].storage.uri: the stable version 'v1'" in err
    assert "roll this change out with strategy direct" in err
    assert "Traceback" not in err
    assert not (stack.parent / "out").exists()

"""An incremental preview is the full preview: the same dict, whatever the change and the locks.

The incremental preview renders only the models whose entry or lock record changed (and those in
a rollout) besides the objects of the stack as a whole. Random changes to a stack of a dozen
models in the three modes (new versions, scaling, removals, additions, mode changes, settings)
over random locks (the same on both sides, recorded after the change, advanced, absent) must
give exactly what rendering everything gives.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelplane.build import desired_models
from modelplane.preview.preview import Side, affected_models, build_preview
from modelplane.rollout import state
from modelplane.rollout.lock import Lock
from tests.rollout.builders import STACK, T0, T1, T2, bump, load, model_data

MODES = ("standard", "knative", "modelmesh")
NAMES = [f"{mode[:4]}-{i}" for mode in MODES for i in range(4)]


def base_data() -> dict[str, Any]:
    keda = model_data("stan-keda", "standard") | {
        "scaling": {"minReplicas": 1, "maxReplicas": 4, "metric": "rps"}
    }
    return {
        "stack": {"name": STACK, "tier": "staging"},
        "controlPlane": {"ingress": {"domain": "models.example.com"}},
        "modelMesh": {"enabled": True},
        "tenants": [{"name": "team"}],
        "rollout": {"strategy": "canary", "steps": [10, 50, 100], "stepInterval": "10m"},
        "models": [model_data(name, next(m for m in MODES if m.startswith(name[:4]))) for name in NAMES]
        + [keda],
    }


edits = st.lists(
    st.tuples(
        st.sampled_from(["bump", "scale", "remove", "mode", "label"]),
        st.sampled_from(NAMES),
    ),
    max_size=6,
)
settings_edits = st.sampled_from([None, None, None, "steps", "tenant", "domain", "monitoring"])
lock_kinds = st.sampled_from(["same", "same", "applied", "advanced", "none", "base-rollouts"])


def edited(
    data: dict[str, Any], changes: list[tuple[str, str]], setting: str | None, added: int
) -> dict[str, Any]:
    result = copy.deepcopy(data)
    for change, name in changes:
        model = next((m for m in result["models"] if m["name"] == name), None)
        if model is None:
            continue
        if change == "bump":
            result = bump(result, name, f"v{int(model['version'][1:]) + 1}")
        elif change == "scale" and "scaling" in model:
            model["scaling"]["maxReplicas"] += 1
        elif change == "remove":
            result["models"] = [m for m in result["models"] if m["name"] != name]
        elif change == "mode" and model["deploymentMode"] != "modelmesh":
            model["deploymentMode"] = "knative" if model["deploymentMode"] == "standard" else "standard"
        elif change == "label":
            model["labels"] = {"team": "a"}
    result["models"] += [model_data(f"new-{i}", MODES[i % 2]) for i in range(added)]
    if setting == "steps":
        result["rollout"]["steps"] = [20, 100]
    elif setting == "tenant":
        result["tenants"].append({"name": "other"})
    elif setting == "domain":
        result["controlPlane"]["ingress"]["domain"] = "models.example.org"
    elif setting == "monitoring":  # every model scaling on a Prometheus metric asks another address
        result["monitoring"] = {"namespace": "observability"}
    return result


def locks(
    kind: str, base: dict[str, Any], head: dict[str, Any], in_flight: list[str]
) -> tuple[Lock | None, Lock | None]:
    """(head lock, base lock) of one kind of pull request."""
    deployed = state.apply(None, desired_models(load(base_data())), stack=STACK, now=T0)
    with_rollouts = deployed
    if in_flight:
        started = base_data()
        for name in in_flight:
            started = bump(started, name, "v2")
        with_rollouts = state.apply(deployed, desired_models(load(started)), stack=STACK, now=T0)
    base_lock = with_rollouts if kind != "base-rollouts" else deployed
    if kind == "none":
        return None, None
    if kind == "applied":
        return state.apply(base_lock, desired_models(load(head)), stack=STACK, now=T1), base_lock
    if kind == "advanced":
        key = next(iter(k for k, r in base_lock.models.items() if r.rollout is not None), None)
        if key is None:
            return base_lock, base_lock
        advanced = state.advance(base_lock.models[key], key, now=T2)
        return base_lock.model_copy(update={"models": {**base_lock.models, key: advanced}}), base_lock
    return base_lock, base_lock


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    changes=edits,
    setting=settings_edits,
    added=st.integers(0, 2),
    lock_kind=lock_kinds,
    in_flight=st.lists(st.sampled_from(NAMES), max_size=3, unique=True),
)
def test_incremental_preview_is_the_full_preview(
    changes: list[tuple[str, str]], setting: str | None, added: int, lock_kind: str, in_flight: list[str]
) -> None:
    base = base_data()
    for name in in_flight:
        base = bump(base, name, "v2")  # the stack as the lock's rollouts left it
    head = edited(base, changes, setting, added)
    head_lock, base_lock = locks(lock_kind, base_data(), head, in_flight)
    head_side = Side(load(head), head_lock, "head.yaml")
    base_side = Side(load(base), base_lock, "base.yaml")
    full = build_preview(head_side, base_side, incremental=False)
    assert build_preview(head_side, base_side, incremental=True) == full
    if setting is None:
        # The change touched models only: the preview really was incremental.
        desired, before = desired_models(head_side.args), desired_models(base_side.args)
        only = affected_models(head_side, base_side, desired, before)
        assert only is not None and len(only) < len(desired) + added + len(NAMES)

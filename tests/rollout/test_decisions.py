"""Model-level decisions: the stack against the lock, one behaviour each."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.rollout import state
from modelplane.rollout.diff import ModelDecision, model_decisions
from modelplane.rollout.lock import Lock
from tests.rollout.builders import STACK, T0, T1, bump, desired, edit, stack_data

BASE = stack_data("standard")


def decide(data: dict[str, Any], lock: Lock | None, base: dict[str, Any] | None = None) -> ModelDecision:
    (decision,) = model_decisions(desired(data), lock, before=desired(base) if base is not None else None)
    return decision


def deployed(data: dict[str, Any] = BASE) -> Lock:
    return state.apply(None, desired(data), stack=STACK, now=T0)


def rolling(version: str = "v2") -> tuple[dict[str, Any], Lock]:
    head = bump(BASE, "std", version)
    return head, state.apply(deployed(), desired(head), stack=STACK, now=T1)


def test_model_without_lock_entry_is_new() -> None:
    d = decide(BASE, None)
    assert (d.kind, d.from_version, d.to_version) == ("new", None, "v1")


def test_unchanged_model_is_steady() -> None:
    assert decide(BASE, deployed()).kind == "steady"


def test_scaling_change_is_in_place_when_the_base_is_known() -> None:
    head = edit(BASE, "std", scaling={"minReplicas": 3, "maxReplicas": 9})
    d = decide(head, deployed(), base=BASE)
    assert (d.kind, d.fields) == ("in-place", ("scaling",))


def test_labels_change_is_in_place() -> None:
    d = decide(edit(BASE, "std", labels={"team": "risk"}), deployed(), base=BASE)
    assert (d.kind, d.fields) == ("in-place", ("labels",))


def test_version_change_starts_a_rollout_naming_the_fields() -> None:
    d = decide(bump(BASE, "std", "v2"), deployed())
    assert (d.kind, d.from_version, d.to_version, d.fields) == (
        "start",
        "v1",
        "v2",
        ("version", "storageUri"),
    )


def test_resources_change_without_version_bump_starts_a_rollout() -> None:
    d = decide(edit(BASE, "std", resources={"memory": "2Gi"}), deployed())
    assert (d.kind, d.fields) == ("start", ("resources",))


def test_recorded_candidate_continues() -> None:
    head, lock = rolling()
    assert decide(head, lock).kind == "continue"


def test_candidate_changed_mid_rollout_restarts() -> None:
    _, lock = rolling("v2")
    d = decide(bump(BASE, "std", "v3"), lock)
    assert (d.kind, d.from_version, d.to_version, d.detail) == (
        "restart",
        "v1",
        "v3",
        "candidate v2 replaced by v3",
    )


def test_stack_back_on_stable_aborts_the_rollout() -> None:
    _, lock = rolling()
    d = decide(BASE, lock)
    assert (d.kind, d.from_version, d.to_version) == ("abort", "v2", "v1")


def test_rolled_back_candidate_is_held() -> None:
    head, lock = rolling()
    record = state.rollback(lock.models["team/std"], "team/std", now=T1)
    lock = lock.model_copy(update={"models": {"team/std": record}})
    assert decide(head, lock).kind == "held"


def test_rolled_back_then_reverted_is_steady() -> None:
    _, lock = rolling()
    record = state.rollback(lock.models["team/std"], "team/std", now=T1)
    lock = lock.model_copy(update={"models": {"team/std": record}})
    assert decide(BASE, lock).kind == "steady"


def test_new_candidate_after_a_rollback_starts_again() -> None:
    _, lock = rolling("v2")
    record = state.rollback(lock.models["team/std"], "team/std", now=T1)
    lock = lock.model_copy(update={"models": {"team/std": record}})
    assert decide(bump(BASE, "std", "v3"), lock).kind == "start"


def test_mode_change_replaces_the_model() -> None:
    d = decide(edit(BASE, "std", deploymentMode="knative"), deployed())
    assert (d.kind, d.destructive, d.detail) == ("replace", True, "deployment mode standard -> knative")


def test_model_gone_from_the_stack_is_removed() -> None:
    two = stack_data("standard", "knative")
    (removed,) = [
        d for d in model_decisions(desired(stack_data("knative")), deployed(two)) if d.key == "team/std"
    ]
    assert (removed.kind, removed.destructive, removed.from_version, removed.to_version) == (
        "removal",
        True,
        "v1",
        None,
    )


@pytest.mark.parametrize(
    "kind", ["steady", "new", "in-place", "start", "continue", "restart", "abort", "held"]
)
def test_only_removal_and_replace_are_destructive(kind: str) -> None:
    assert not ModelDecision("a/b", "a", "b", kind, "standard").destructive  # type: ignore[arg-type]


def test_decisions_are_sorted_by_key() -> None:
    keys = [d.key for d in model_decisions(desired(stack_data()), None)]
    assert keys == ["team/kn", "team/mesh", "team/std"]

"""The rollout state machine: apply, advance, promote, rollback, pause, resume."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.errors import RolloutError
from modelplane.rollout import state
from modelplane.rollout.diff import DesiredModel
from modelplane.rollout.lock import HISTORY_LIMIT, Lock, ModelRecord
from tests.rollout.builders import KEYS, STACK, T0, T1, T2, T3, T4, bump, desired, stack_data

CANARY = {"strategy": "canary", "steps": [10, 25, 50, 100], "stepInterval": "10m"}


def started(
    mode: str = "standard", rollout: dict[str, Any] | None = None
) -> tuple[DesiredModel, ModelRecord]:
    """A model of ``mode`` whose version was bumped: as the stack wants it, and its lock record."""
    data = stack_data(mode, rollout=rollout or CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    head = desired(bump(data, data["models"][0]["name"], "v2"))
    lock = state.apply(lock, head, stack=STACK, now=T1)
    return head[KEYS[mode]], lock.models[KEYS[mode]]


def split(record: ModelRecord) -> list[tuple[str, int]]:
    return [(v.version, p) for v, p in state.traffic(record)]


def test_new_model_is_deployed_directly() -> None:
    lock = state.apply(None, desired(stack_data("standard")), stack=STACK, now=T0)
    record = lock.models["team/std"]
    assert (record.stable.version, record.rollout) == ("v1", None)
    assert [(e.event, e.version, e.traffic_percent, e.at) for e in record.history] == [
        ("deployed", "v1", 100, T0)
    ]


def test_apply_without_changes_gives_the_same_lock() -> None:
    models = desired(stack_data())
    lock = state.apply(None, models, stack=STACK, now=T0)
    assert state.apply(lock, models, stack=STACK, now=T1) == lock


def test_canary_starts_at_its_first_step() -> None:
    _, record = started()
    assert record.rollout is not None
    assert (record.rollout.phase, record.rollout.step, record.rollout.state) == ("canary", 0, "progressing")
    assert split(record) == [("v1", 90), ("v2", 10)]
    assert record.history[-1].event == "started"


def test_direct_strategy_replaces_at_once() -> None:
    _, record = started(rollout={"strategy": "direct"})
    assert (record.stable.version, record.rollout) == ("v2", None)
    assert split(record) == [("v2", 100)]


def test_a_single_step_of_100_replaces_at_once() -> None:
    _, record = started(rollout={"strategy": "canary", "steps": [100]})
    assert record.stable.version == "v2"


def test_shadow_comes_before_the_first_step() -> None:
    _, record = started(rollout=CANARY | {"shadow": {"percent": 20, "duration": "5m"}})
    assert record.rollout is not None and record.rollout.phase == "shadow"
    assert split(record) == [("v1", 100)]
    assert state.mirror_percent(record) == 20


def test_ab_holds_a_fixed_split() -> None:
    _, record = started(rollout={"strategy": "ab", "abSplit": 30})
    assert split(record) == [("v1", 70), ("v2", 30)]


def test_modelmesh_loads_beside_the_stable_model() -> None:
    _, record = started("modelmesh")
    assert record.rollout is not None and record.rollout.phase == "loading"
    assert split(record) == [("v1", 100)]


def test_advance_walks_the_steps_and_promotes_at_100() -> None:
    _, record = started()
    shares = []
    for now in (T2, T3, T4):
        record = state.advance(record, "team/std", now=now)
        shares.append(split(record))
    assert shares == [[("v1", 75), ("v2", 25)], [("v1", 50), ("v2", 50)], [("v2", 100)]]
    assert record.rollout is None
    assert [e.event for e in record.history] == ["deployed", "started", "advanced", "advanced", "promoted"]


def test_advance_from_shadow_goes_to_the_first_step() -> None:
    _, record = started(rollout=CANARY | {"shadow": {"percent": 20, "duration": "5m"}})
    record = state.advance(record, "team/std", now=T2)
    assert split(record) == [("v1", 90), ("v2", 10)]


def test_advance_in_modelmesh_switches_to_the_candidate() -> None:
    _, record = started("modelmesh")
    record = state.advance(record, "team/mesh", now=T2)
    assert (record.stable.version, record.rollout) == ("v2", None)


@pytest.mark.parametrize(
    ("now", "ready", "reason"),
    [
        ("2026-03-01T10:25:00Z", False, "step 1 (10%) has run 5m00s of 10m00s"),
        ("2026-03-01T10:30:00Z", True, ""),
    ],
)
def test_readiness_waits_for_the_step_interval(now: str, ready: bool, reason: str) -> None:
    head, record = started()
    result = state.readiness(record, "team/std", head.policy, now=now)
    assert (result.ready, result.reason) == (ready, reason)


def test_readiness_of_shadow_waits_for_its_duration() -> None:
    head, record = started(rollout=CANARY | {"shadow": {"percent": 20, "duration": "30m"}})
    result = state.readiness(record, "team/std", head.policy, now=T2)
    assert result.reason == "the shadow phase has run 20m00s of 30m00s"


def test_ab_is_never_ready_to_advance() -> None:
    head, record = started(rollout={"strategy": "ab", "abSplit": 30})
    assert not state.readiness(record, "team/std", head.policy, now=T4).ready


def test_advance_refuses_an_ab_test() -> None:
    _, record = started(rollout={"strategy": "ab", "abSplit": 30})
    with pytest.raises(RolloutError) as err:
        state.advance(record, "team/std", now=T2)
    assert str(err.value) == (
        "team/std: an A/B test has a fixed split and no automatic promotion; "
        "run `modelplane rollout promote` or `rollback` to end it"
    )


def test_promote_ends_an_ab_test() -> None:
    _, record = started(rollout={"strategy": "ab", "abSplit": 30})
    assert split(state.promote(record, "team/std", now=T2)) == [("v2", 100)]


def test_pause_freezes_the_split_and_advance_refuses() -> None:
    _, record = started()
    paused = state.pause(record, "team/std", now=T2)
    assert split(paused) == split(record)
    with pytest.raises(RolloutError, match=r"^team/std: the rollout of v2 is paused; resume it first$"):
        state.advance(paused, "team/std", now=T3)


def test_resume_restarts_the_step_clock() -> None:
    _, record = started()
    resumed = state.resume(state.pause(record, "team/std", now=T2), "team/std", now=T3)
    assert resumed.rollout is not None
    assert (resumed.rollout.state, resumed.rollout.since) == ("progressing", T3)


def test_resume_of_a_running_rollout_is_refused() -> None:
    _, record = started()
    with pytest.raises(RolloutError, match=r"^team/std: the rollout of v2 is not paused$"):
        state.resume(record, "team/std", now=T2)


def test_rollback_sends_all_traffic_to_stable() -> None:
    _, record = started()
    rolled = state.rollback(record, "team/std", now=T2, detail="errors")
    assert split(rolled) == [("v1", 100)]
    assert rolled.rollout is not None and rolled.rollout.state == "rolled-back"
    assert (rolled.history[-1].event, rolled.history[-1].detail) == ("rolled-back", "errors")


def test_commands_on_a_rolled_back_rollout_are_refused() -> None:
    _, record = started()
    rolled = state.rollback(record, "team/std", now=T2)
    with pytest.raises(RolloutError) as err:
        state.advance(rolled, "team/std", now=T3)
    assert str(err.value) == (
        "team/std: the rollout of v2 was rolled back; change the model's version in the stack to start a new one"
    )


def test_commands_without_a_rollout_are_refused() -> None:
    lock = state.apply(None, desired(stack_data("standard")), stack=STACK, now=T0)
    with pytest.raises(RolloutError) as err:
        state.promote(lock.models["team/std"], "team/std", now=T1)
    assert str(err.value) == "team/std: no rollout in progress (steady on v1); nothing to promote"


def test_restart_begins_again_at_the_first_step() -> None:
    data = stack_data("standard", rollout=CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    lock = state.apply(lock, desired(bump(data, "std", "v2")), stack=STACK, now=T1)
    record = state.advance(lock.models["team/std"], "team/std", now=T2)
    lock = lock.model_copy(update={"models": {"team/std": record}})
    restarted = state.apply(lock, desired(bump(data, "std", "v3")), stack=STACK, now=T3).models["team/std"]
    assert split(restarted) == [("v1", 90), ("v3", 10)]
    assert restarted.history[-1].event == "restarted"


def test_abort_returns_to_stable_and_ends_the_rollout() -> None:
    data = stack_data("standard", rollout=CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    lock = state.apply(lock, desired(bump(data, "std", "v2")), stack=STACK, now=T1)
    record = state.apply(lock, desired(data), stack=STACK, now=T2).models["team/std"]
    assert (record.rollout, record.history[-1].event) == (None, "aborted")


def test_standard_promotion_takes_the_candidate_name_when_storage_changes() -> None:
    _, record = started()
    assert state.promote(record, "team/std", now=T2).stable.name == "v2"


def test_standard_promotion_keeps_the_stable_name_when_storage_is_unchanged() -> None:
    data = stack_data("standard", rollout=CANARY)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    data["models"][0]["resources"] = {"memory": "2Gi"}
    record = state.apply(lock, desired(data), stack=STACK, now=T1).models["team/std"]
    assert (
        record.rollout is not None
        and record.rollout.candidate.name == "v1-" + record.rollout.candidate.digest[7:13]
    )
    assert state.promote(record, "team/std", now=T2).stable.name == "v1"


def test_history_keeps_the_last_events() -> None:
    _, record = started()
    for i in range(HISTORY_LIMIT + 5):
        record = state.hold(record, "team/std", now=T2, detail=f"hold {i}")
    assert len(record.history) == HISTORY_LIMIT
    assert record.history[-1].detail == f"hold {HISTORY_LIMIT + 4}"


def test_removed_model_leaves_the_lock() -> None:
    lock = state.apply(None, desired(stack_data("standard", "knative")), stack=STACK, now=T0)
    assert sorted(state.apply(lock, desired(stack_data("knative")), stack=STACK, now=T1).models) == [
        "team/kn"
    ]


def test_describe_a_canary() -> None:
    _, record = started()
    assert state.describe(record) == "canary v2 at 10% (step 1 of 4), v1 90%"


@pytest.mark.parametrize("value", ["2026-03-01 10:00:00", "2026-03-01T10:00:00+01:00", "yesterday"])
def test_only_utc_timestamps_are_accepted(value: str) -> None:
    with pytest.raises(RolloutError, match="not a UTC timestamp like 2026-01-31T12:00:00Z"):
        state.parse_time(value)


def test_effective_records_do_not_touch_the_lock() -> None:
    data = stack_data("standard")
    lock: Lock = state.apply(None, desired(data), stack=STACK, now=T0)
    records = state.effective_records(desired(bump(data, "std", "v2")), lock)
    assert records["team/std"].rollout is not None
    assert lock.models["team/std"].rollout is None


def test_version_name_never_makes_another_models_name() -> None:
    data = stack_data("standard", rollout=CANARY)
    twin = copy.deepcopy(data["models"][0]) | {"name": "std-v2"}
    twin["storage"] = {"uri": "s3://models/std-v2/v1"}
    data["models"].append(twin)
    lock = state.apply(None, desired(data), stack=STACK, now=T0)
    record = state.apply(lock, desired(bump(data, "std", "v2")), stack=STACK, now=T1).models["team/std"]
    assert record.rollout is not None
    assert record.rollout.candidate.name == "v2-" + record.rollout.candidate.digest[7:13]

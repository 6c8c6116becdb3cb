"""Rollout sequences applied step by step to a real API server, with KServe and Knative running.

The property tests (``tests/rollout/test_property.py``) prove the lock and the render agree;
these prove the cluster accepts every step: each render is admitted by the real webhooks with no
immutable-field error, and the split stored on the InferenceService (after
KServe's defaulting webhook) is the split the lock records.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelplane import build
from modelplane.rollout import state
from modelplane.rollout.lock import Lock
from tests.cluster.conftest import Platform, running_platform
from tests.cluster.kubectl import ApplyError
from tests.rollout.builders import KEYS, STACK, bump, desired, load, stack_data, write_stack

Step = tuple[str, ...]
SEQUENCE: list[Step] = [
    ("bump", "v2"),  # a new version starts a canary
    ("advance",),
    ("bump", "v3"),  # the candidate changes mid-rollout: the rollout restarts
    ("advance",),
    ("promote",),
    ("bump", "v4"),
    ("rollback",),
    ("bump", "v5"),
    ("promote",),
]


@pytest.fixture(scope="module")
def rollout_platform(
    tool_bins: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, dict[str, Any]]]:
    data = stack_data("knative", "standard")
    stack_file = write_stack(tmp_path_factory.mktemp("rollout-stack"), data)
    with running_platform(stack_file, tool_bins, tmp_path_factory.mktemp("cluster-rollout")) as platform:
        yield platform, data


class Clock:
    def __init__(self) -> None:
        self.minute = 0

    def now(self) -> str:
        self.minute += 20
        return f"2026-03-01T{10 + self.minute // 60:02d}:{self.minute % 60:02d}:00Z"


def run_step(step: Step, data: dict[str, Any], lock: Lock, clock: Clock) -> tuple[dict[str, Any], Lock]:
    if step[0] == "bump":
        for name in ("kn", "std"):
            data = bump(data, name, step[1])
        return data, state.apply(lock, desired(data), stack=STACK, now=clock.now())
    action = {"advance": state.advance, "promote": state.promote, "rollback": state.rollback}[step[0]]
    models = dict(lock.models)
    for key in KEYS.values():
        record = models.get(key)
        if key in ("team/kn", "team/std") and record is not None and record.rollout is not None:
            models[key] = action(record, key, now=clock.now())
    return data, lock.model_copy(update={"models": models})


def stored_canary_percent(platform: Platform, name: str) -> int | None:
    """The canary share the API server stored for a model, after KServe's defaulting webhook."""
    isvc = platform.kube.get("serving.kserve.io/v1beta1", "InferenceService", name, "team") or {}
    percent = isvc.get("spec", {}).get("predictor", {}).get("canaryTrafficPercent")
    return None if percent is None else int(percent)


def locked_canary_percent(lock: Lock) -> int | None:
    """What the lock says Knative should send the candidate (absent = promoted or steady)."""
    record = lock.models["team/kn"]
    return state.candidate_share(record) if record.rollout is not None else None


def test_every_rollout_step_is_admitted_and_stores_the_locked_split(
    rollout_platform: tuple[Platform, dict[str, Any]],
) -> None:
    platform, data = rollout_platform
    assert platform.refused == {}
    lock = state.apply(None, desired(data), stack=STACK, now="2026-03-01T09:00:00Z")
    clock = Clock()
    refused: list[str] = []
    splits: list[tuple[Step, int | None, int | None]] = []
    for step in SEQUENCE:
        data, lock = run_step(step, data, lock, clock)
        for obj in build(load(data), lock=lock).objects:
            try:
                platform.kube.apply(obj)
            except ApplyError as error:
                refused.append(f"{step}: {error}")
        splits.append((step, stored_canary_percent(platform, "kn"), locked_canary_percent(lock)))
    assert refused == []
    assert [(step, stored) for step, stored, _ in splits] == [(step, locked) for step, _, locked in splits]
    # Knative never gets a ready revision here (no networking layer or autoscaler), and KServe
    # splits a Knative Service's traffic only once a previous revision rolled out, so the split
    # in status cannot be observed; the stored spec is what KServe acts on.

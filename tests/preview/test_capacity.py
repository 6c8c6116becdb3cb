"""Pods and GPUs per pool at min and max replicas, as a rollout changes them."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.preview.capacity import CPU_POOL, capacity_delta, capacity_summary
from modelplane.preview.markdown import to_markdown
from modelplane.rollout import state
from tests.preview.test_preview import BASE, preview, valid
from tests.rollout.builders import STACK, T0, T1, bump, desired, edit, load, stack_data

CANARY = {"strategy": "canary", "steps": [10, 50, 100], "stepInterval": "10m"}


def summary(data: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, int]:
    lock = state.apply(None, desired(before or data), stack=STACK, now=T0)
    records = state.apply(lock, desired(data), stack=STACK, now=T1).models
    result: dict[str, int] = capacity_summary(load(data), records)["total"]
    return result


def test_standard_model_at_min_and_max() -> None:
    assert summary(stack_data("standard", rollout=CANARY)) == {
        "podsMin": 2,
        "podsMax": 6,
        "gpusMin": 0,
        "gpusMax": 0,
    }


def test_standard_canary_runs_fixed_replicas_and_lowers_the_stable_minimum() -> None:
    base = stack_data("standard", rollout=CANARY)
    base["models"][0]["scaling"] = {"minReplicas": 4, "maxReplicas": 10}
    # 10% of 4 rounds up to 1 canary replica; the stable minimum drops to 3.
    assert summary(bump(base, "std", "v2"), base) == {"podsMin": 4, "podsMax": 11, "gpusMin": 0, "gpusMax": 0}


def test_knative_canary_keeps_both_revisions_scaled() -> None:
    base = stack_data("knative", rollout=CANARY)
    assert summary(bump(base, "kn", "v2"), base) == {"podsMin": 4, "podsMax": 12, "gpusMin": 0, "gpusMax": 0}


def test_modelmesh_models_add_no_pods() -> None:
    base = stack_data("modelmesh", rollout=CANARY)
    assert summary(bump(base, "mesh", "v2"), base) == {"podsMin": 0, "podsMax": 0, "gpusMin": 0, "gpusMax": 0}


def gpu_stack() -> dict[str, Any]:
    data = stack_data("standard", rollout=CANARY)
    data["gpuPools"] = [
        {
            "name": "l4",
            "product": "NVIDIA-L4",
            "gpusPerNode": 4,
            "gpuMemoryGb": 24,
            "sharing": {"mode": "exclusive"},
            "maxNodes": 4,
        }
    ]
    data["models"][0] |= {"runtime": "triton", "format": {"name": "onnx", "version": "1"}}
    data["models"][0]["resources"] = {"gpu": 1, "pool": "l4"}
    return data


def test_gpu_canary_needs_gpus_of_its_own() -> None:
    base = gpu_stack()
    lock = state.apply(None, desired(base), stack=STACK, now=T0)
    head = bump(base, "std", "v2")
    records = state.apply(lock, desired(head), stack=STACK, now=T1).models
    pools = capacity_summary(load(head), records)["pools"]
    assert pools == {"l4": {"podsMin": 2, "podsMax": 7, "gpusMin": 2, "gpusMax": 7}}


def test_delta_per_pool() -> None:
    base = capacity_summary(load(stack_data("standard")), None)
    head = capacity_summary(
        load(edit(stack_data("standard"), "std", scaling={"minReplicas": 3, "maxReplicas": 6})), None
    )
    delta = capacity_delta(base, head)
    assert delta["pools"] == [
        {
            "pool": CPU_POOL,
            "base": {"podsMin": 2, "podsMax": 6, "gpusMin": 0, "gpusMax": 0},
            "head": {"podsMin": 3, "podsMax": 6, "gpusMin": 0, "gpusMax": 0},
            "delta": {"podsMin": 1, "podsMax": 0, "gpusMin": 0, "gpusMax": 0},
        }
    ]


@pytest.mark.parametrize("part", ["transformer", "explainer"])
def test_sidecar_components_count_as_pods(part: str) -> None:
    data = edit(stack_data("standard"), "std", **{part: {"image": "ghcr.io/example/tok:1.0.0"}})
    assert capacity_summary(load(data), None)["total"]["podsMin"] == 4


def _planner(monkeypatch: pytest.MonkeyPatch, fits_min: bool) -> None:
    def summary(args: Any) -> dict[str, Any]:
        nodes = 1 + len(args.models)
        return {
            "stack": args.stack.name,
            "fits": {"min": fits_min, "max": fits_min},
            "pools": [{"name": "l4", "nodeLimit": 4, "min": {"nodes": nodes}, "max": {"nodes": nodes + 1}}],
        }

    monkeypatch.setattr("modelplane.capacity.summary", summary)


def test_the_preview_shows_the_capacity_planners_nodes_per_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    _planner(monkeypatch, fits_min=True)
    result = preview({**BASE, "models": BASE["models"][:1]})
    assert valid(result) == []
    assert result["capacity"]["plan"]["head"]["pools"][0]["min"] == {"nodes": 2}
    assert "| l4 | 4 → 2 | 5 → 3 | 4 |" in to_markdown(result)


def test_a_stack_that_does_not_fit_is_warned_first(monkeypatch: pytest.MonkeyPatch) -> None:
    _planner(monkeypatch, fits_min=False)
    assert preview(BASE)["warnings"][0] == (
        "test: the stack does not fit its pools at minimum replicas (see `modelplane plan`)"
    )

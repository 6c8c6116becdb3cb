"""A graph step whose model is in a canary shows in the preview: the graph's traffic splits too."""

from __future__ import annotations

from typing import Any

from modelplane.preview.markdown import to_markdown
from tests.preview.test_preview import BASE, preview, valid
from tests.rollout.builders import bump

GRAPH: dict[str, Any] = {
    "name": "chain",
    "tenant": "team",
    "deploymentMode": "knative",
    "nodes": {
        "root": {
            "routerType": "Sequence",
            "steps": [{"name": "first", "model": "std"}, {"model": "kn"}],
        }
    },
}
WITH_GRAPH = {**BASE, "graphs": [GRAPH]}


def test_a_graph_step_through_a_canary_is_listed_with_its_traffic_split() -> None:
    result = preview(bump(WITH_GRAPH, "std", "v2"), WITH_GRAPH)
    assert valid(result) == []
    assert result["graphs"] == [
        {
            "graph": "chain",
            "namespace": "team",
            "node": "root",
            "step": "first",
            "model": "std",
            "from": "v1",
            "to": "v2",
            "strategy": "canary",
            "phase": "canary",
            "trafficPercent": 5,
            "mirrorPercent": 0,
        }
    ]
    text = to_markdown(result)
    assert "#### Inference graphs through a rollout" in text
    assert "| `team/chain` | root / first | `std` v1 → v2 | 5% to v2 (canary) |" in text


def test_a_graph_whose_models_do_not_change_adds_nothing() -> None:
    result = preview(WITH_GRAPH, WITH_GRAPH)
    assert result["graphs"] == []
    assert "Inference graphs" not in to_markdown(result)


def test_a_step_is_named_by_its_index_when_it_has_no_name() -> None:
    result = preview(bump(WITH_GRAPH, "kn", "v2"), WITH_GRAPH)
    assert [(g["model"], g["step"]) for g in result["graphs"]] == [("kn", "1")]

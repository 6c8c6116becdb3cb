"""Inference graphs: rendered as KServe's InferenceGraph, and refused where KServe would break.

Each refusal is a whole stack file read with ``load_stack``: the problems are what a user sees,
file name and field path included. What KServe's own webhook says about the rendered graphs is
checked in ``tests/upstream/test_kserve_webhooks.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.build import build
from modelplane.errors import StackError
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS

DEV: dict[str, Any] = yaml.safe_load((STACKS / "dev.yaml").read_text(encoding="utf-8"))
ENSEMBLE: dict[str, Any] = {
    "name": "scores",
    "tenant": "fraud",
    "nodes": {
        "root": {
            "routerType": "Ensemble",
            "steps": [{"name": "a", "model": "fraud-detector"}, {"name": "b", "model": "churn-xgb"}],
        }
    },
}


def _graph(**overrides: Any) -> dict[str, Any]:
    graph = copy.deepcopy(ENSEMBLE)
    graph.update(overrides)
    return graph


def _nodes(**nodes: dict[str, Any]) -> dict[str, Any]:
    return _graph(nodes=nodes)


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *graphs: dict[str, Any], **top: Any) -> Any:
    data = copy.deepcopy(DEV) | {"graphs": list(graphs)} | top
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return load_stack("bad.yaml")


def _problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *graphs: dict[str, Any], **top: Any
) -> list[str]:
    with pytest.raises(StackError) as info:
        _load(tmp_path, monkeypatch, *graphs, **top)
    return info.value.problems


def knative_serving(stack: ServingPlatformArgs) -> dict[str, Any]:
    """The KnativeServing the Knative operator's release carries."""
    release = next(c for c in build(stack).charts if c.release == "knative-operator")
    serving: dict[str, Any] = next(o for o in release.objects if o["kind"] == "KnativeServing")
    return serving


def _rendered_graph(stack: ServingPlatformArgs, name: str) -> dict[str, Any]:
    return next(
        o for o in build(stack).objects if o["kind"] == "InferenceGraph" and o["metadata"]["name"] == name
    )


def test_a_graph_renders_an_inferencegraph_beside_its_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crd_schemas: CrdSchemas
) -> None:
    splitter = _nodes(
        root={
            "routerType": "Sequence",
            "steps": [{"node": "split"}, {"model": "iris-lgbm", "data": "$request", "dependency": "Hard"}],
        },
        split={
            "routerType": "Splitter",
            "steps": [{"model": "fraud-detector", "weight": 80}, {"model": "churn-xgb", "weight": 20}],
        },
    )
    stack = _load(tmp_path, monkeypatch, splitter | {"name": "chain", "timeout": 30})
    graph = _rendered_graph(stack, "chain")
    assert graph["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert graph["metadata"]["namespace"] == "fraud"
    assert graph["metadata"]["annotations"] == {"serving.kserve.io/deploymentMode": "Knative"}
    assert graph["spec"]["nodes"] == {
        "root": {
            "routerType": "Sequence",
            "steps": [
                {"nodeName": "split"},
                {"serviceName": "iris-lgbm", "data": "$request", "dependency": "Hard"},
            ],
        },
        "split": {
            "routerType": "Splitter",
            "steps": [
                {"serviceName": "fraud-detector", "weight": 80},
                {"serviceName": "churn-xgb", "weight": 20},
            ],
        },
    }
    assert graph["spec"]["timeout"] == 30
    # The router gets requests and limits like every other pod modelplane renders.
    assert graph["spec"]["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "128Mi"},
    }
    assert crd_schemas.validate(graph) == []


def test_a_knative_graph_turns_on_knatives_secure_pod_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KServe sets no seccomp profile on the router; only Knative's secure-pod-defaults gives it
    # one, which Pod Security "restricted" requires (tests/upstream/test_graph_router.py).
    stack = _load(tmp_path, monkeypatch, _graph())
    serving = knative_serving(stack)
    assert serving["spec"]["config"]["features"]["secure-pod-defaults"] == "enabled"


def test_a_stack_without_graphs_leaves_knatives_features_as_they_were(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _load(tmp_path, monkeypatch)
    serving = knative_serving(stack)
    assert "secure-pod-defaults" not in serving["spec"]["config"].get("features", {})


PREFIX = "bad.yaml: graphs[0]"


@pytest.mark.parametrize(
    ("graph", "problems"),
    [
        pytest.param(
            _graph(nodes={"root": {"routerType": "Sequence", "steps": [{"model": "nope"}]}}),
            [
                f"{PREFIX}.nodes.root.steps[0].model: no model of that name in tenant 'fraud' "
                '(models: churn-xgb, fraud-detector, iris-lgbm) (got "nope")'
            ],
            id="dangling-model",
        ),
        pytest.param(
            _nodes(root={"routerType": "Sequence", "steps": [{"node": "missing"}]}),
            [f'{PREFIX}.nodes.root.steps[0].node: unknown node (nodes: root) (got "missing")'],
            id="dangling-node",
        ),
        pytest.param(
            _nodes(
                root={"routerType": "Sequence", "steps": [{"node": "a"}]},
                a={"routerType": "Sequence", "steps": [{"node": "b"}]},
                b={"routerType": "Sequence", "steps": [{"model": "fraud-detector"}, {"node": "a"}]},
            ),
            [f"{PREFIX}.nodes.b.steps[1].node: closes a cycle back to node 'a' (got \"a\")"],
            id="cycle",
        ),
        pytest.param(
            _nodes(
                root={"routerType": "Sequence", "steps": [{"model": "fraud-detector"}]},
                spare={"routerType": "Sequence", "steps": [{"model": "churn-xgb"}]},
            ),
            [
                f'{PREFIX}.nodes.spare: is never reached from root; call it from a step or remove it (got "spare")'
            ],
            id="unreachable-node",
        ),
        pytest.param(
            _nodes(other={"routerType": "Sequence", "steps": [{"model": "fraud-detector"}]}),
            [f"{PREFIX}.nodes: needs a node named root, where requests enter (nodes: other)"],
            id="no-root",
        ),
        pytest.param(
            _nodes(
                root={
                    "routerType": "Splitter",
                    "steps": [
                        {"model": "fraud-detector", "weight": 30},
                        {"model": "churn-xgb", "weight": 60},
                    ],
                }
            ),
            [f"{PREFIX}.nodes.root.steps: Splitter weights must sum to 100 (they sum to 90) (got 90)"],
            id="weights-not-100",
        ),
        pytest.param(
            _nodes(
                root={
                    "routerType": "Splitter",
                    "steps": [{"model": "fraud-detector", "weight": 100}, {"model": "churn-xgb"}],
                }
            ),
            [f"{PREFIX}.nodes.root.steps[1].weight: a Splitter needs a weight on every step"],
            id="weight-missing",
        ),
        pytest.param(
            _nodes(root={"routerType": "Ensemble", "steps": [{"model": "fraud-detector", "weight": 50}]}),
            [
                f"{PREFIX}.nodes.root.steps[0].weight: only a Splitter splits by weight; a Ensemble ignores it (got 50)"
            ],
            id="weight-on-ensemble",
        ),
        pytest.param(
            _nodes(root={"routerType": "Switch", "steps": [{"model": "fraud-detector"}]}),
            [f"{PREFIX}.nodes.root.steps: a Switch routes by condition; give its steps conditions"],
            id="switch-without-conditions",
        ),
        pytest.param(
            _nodes(
                root={
                    "routerType": "Ensemble",
                    "steps": [{"name": "x", "model": "fraud-detector"}, {"name": "x", "model": "churn-xgb"}],
                }
            ),
            [f'{PREFIX}.nodes.root.steps[1].name: duplicate step name (also steps[0]) (got "x")'],
            id="duplicate-step-name",
        ),
        pytest.param(
            _nodes(
                root={
                    "routerType": "Sequence",
                    "steps": [{"model": "fraud-detector", "url": "http://x.example"}],
                }
            ),
            [f"{PREFIX}.nodes.root.steps[0]: give exactly one of model, node, url (got 2)"],
            id="two-targets",
        ),
        pytest.param(
            _graph(deploymentMode="standard"),
            [
                f"{PREFIX}.deploymentMode: a Standard-mode graph router cannot run in a tenant namespace: KServe "
                "v0.20.0 builds its pod without a seccomp profile (pkg/controller/v1alpha1/inferencegraph/"
                'raw_ig.go:66-76), which Pod Security "restricted" rejects; use deploymentMode knative, where '
                "Knative's secure-pod-defaults (which modelplane enables) gives it RuntimeDefault "
                '(got "standard")'
            ],
            id="standard-mode",
        ),
        pytest.param(
            _graph(scaling={"metric": "cpu"}),
            [
                f"{PREFIX}.scaling.metric: a graph router in knative mode scales on concurrency or rps; use one of "
                'those (got "cpu")'
            ],
            id="metric-the-mode-cannot-scale-on",
        ),
        pytest.param(
            _graph(tenant="nobody"),
            [f'{PREFIX}.tenant: unknown tenant (tenants: fraud) (got "nobody")'],
            id="unknown-tenant",
        ),
    ],
)
def test_a_broken_graph_is_refused_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, graph: dict[str, Any], problems: list[str]
) -> None:
    assert _problems(tmp_path, monkeypatch, graph) == problems


def test_two_graphs_may_not_share_a_name_in_a_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = _problems(tmp_path, monkeypatch, _graph(), _graph())
    assert problems == [
        "bad.yaml: graphs[1].name: duplicate graph name in tenant 'fraud' (also graphs[0]) (got \"scores\")"
    ]

"""Dashboards: what ships (ConfigMaps the Grafana sidecar loads), and every query answered by a real Prometheus.

The Prometheus serves the synthetic namespace of ``tests.slo_series`` plus the recording rules
modelplane renders for it, backfilled by ``promtool tsdb create-blocks-from rules`` (in two
passes: rules that read other recorded series need those first). Every panel query, template
variable and annotation of the rendered dashboards then runs with the variables set to a
healthy model and to each canary, and must return data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import dashboards
from modelplane.build import build
from modelplane.kube import Obj
from modelplane.stack import load_stack, parse_stack
from tests.conftest import EXAMPLE_STACKS
from tests.prometheus import prometheus_server, require_prometheus, tsdb_from_openmetrics
from tests.slo_series import CANARIES, END, HEALTHY, NAMESPACE, START, openmetrics
from tests.test_slo_prometheus import stack_data


def _stack_objects() -> list[Obj]:
    data = stack_data()
    data["gpuPools"] = [
        {"name": "h100", "product": "NVIDIA-H100-80GB-HBM3", "gpusPerNode": 2, "minNodes": 1, "maxNodes": 2}
    ]
    return build(parse_stack(data, "test.yaml")).objects


def _dashboards(objects: list[Obj]) -> dict[str, dict[str, Any]]:
    """The dashboards of a build, by uid, as Grafana reads them from the ConfigMaps."""
    found = {}
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("labels", {}).get(dashboards.SIDECAR_LABEL):
            (text,) = obj["data"].values()
            board = json.loads(text)
            found[board["uid"]] = board
    return found


# --- what ships -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLE_STACKS, ids=[p.stem for p in EXAMPLE_STACKS])
def test_each_example_stack_renders_its_dashboards(path: Path) -> None:
    stack = load_stack(path)
    objects = build(stack).objects
    boards = _dashboards(objects)
    namespaces = {stack.tenant(m.tenant).namespace_name for m in stack.models}
    assert set(boards) == {
        "modelplane-platform",
        "modelplane-model",
        *(f"modelplane-tenant-{ns}"[:40] for ns in namespaces),
    }
    for board in boards.values():
        assert board["panels"], board["uid"]
        assert all(p["targets"] for p in board["panels"])


def test_the_dashboards_do_not_grow_with_the_models() -> None:
    def count(models: int) -> int:
        data = stack_data()
        data["models"] = [dict(data["models"][1], name=f"m{i}") for i in range(models)]
        return len(_dashboards(build(parse_stack(data, "test.yaml")).objects))

    assert count(1) == count(300) == 3


def test_dashboards_are_built_the_same_every_time() -> None:
    first = [o for o in _stack_objects() if o["kind"] == "ConfigMap"]
    assert first == [o for o in _stack_objects() if o["kind"] == "ConfigMap"]


def test_the_model_dashboard_selects_namespace_model_and_version() -> None:
    board = _dashboards(_stack_objects())["modelplane-model"]
    names = [v["name"] for v in board["templating"]["list"]]
    assert names == ["datasource", "namespace", "model", "version"]
    assert [a["name"] for a in board["annotations"]["list"]] == ["Version starts serving"]


def test_the_gates_are_drawn_at_their_thresholds() -> None:
    stack = load_stack(EXAMPLE_STACKS[0])
    gates = {g.metric: g.max for g in stack.rollout.gates if g.max is not None}
    board = _dashboards(build(stack).objects)["modelplane-model"]
    drawn = {
        p["title"]: [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
        for p in board["panels"]
        if "gate:" in p["title"]
    }
    assert drawn == {
        "Error ratio per version (gate: error-rate)": [gates["error-rate"]],
        "p99 latency per version (gate: latency-p99)": [gates["latency-p99"]],
    }


# --- every query on a real Prometheus -------------------------------------------------------------


def _rule_files(objects: list[Obj], directory: Path) -> tuple[Path, Path]:
    """The rendered recording rules in two files: those that read raw series, then the rest."""
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    for obj in objects:
        if obj["kind"] != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    (second if "modelplane:" in rule["expr"] else first).append(rule)
    paths = []
    for name, rules in (("first", first), ("second", second)):
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}))
        paths.append(path)
    return paths[0], paths[1]


def _backfill(url: str, rules: Path, tsdb: Path) -> None:
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--url={url}",
            f"--start={END - 1800}",
            f"--end={END}",
            f"--output-dir={tsdb}",
            "--eval-interval=60s",
            str(rules),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus serving the synthetic series and the recorded series of the rendered rules."""
    root = tmp_path_factory.mktemp("dashboards")
    require_prometheus()
    tsdb = tsdb_from_openmetrics(root, openmetrics())
    first, second = _rule_files(_stack_objects(), root)
    for rules in (first, second):
        with prometheus_server(root) as url:
            _backfill(url, rules, root / "blocks")
        for block in (root / "blocks").iterdir():
            shutil.move(str(block), tsdb / block.name)
    with prometheus_server(root) as url:
        yield url


def _get(url: str, path: str, params: dict[str, str]) -> Any:
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(params)}", timeout=30) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def _fill(text: str, model: str) -> str:
    return text.replace("$namespace", NAMESPACE).replace("$model", model).replace("$version", ".+")


def _answers(url: str, expr: str, at: int = END) -> list[Any]:
    result: list[Any] = _get(url, "/api/v1/query", {"query": expr, "time": str(at)})["result"]
    return result


PANELS = [
    (uid, panel["title"])
    for uid, board in sorted(_dashboards(_stack_objects()).items())
    for panel in board["panels"]
]


@pytest.mark.parametrize("model", [HEALTHY, *CANARIES])
@pytest.mark.parametrize(("uid", "title"), PANELS, ids=[f"{u}:{t}" for u, t in PANELS])
def test_every_panel_returns_data(prometheus: str, uid: str, title: str, model: str) -> None:
    board = _dashboards(_stack_objects())[uid]
    (panel,) = [p for p in board["panels"] if p["title"] == title]
    exprs = [_fill(t["expr"], model) for t in panel["targets"]]
    answered = [e for e in exprs if _answers(prometheus, e)]
    if uid == "modelplane-model":
        # One target per source that labels versions: the one that measures the model answers.
        assert answered, exprs
    else:
        assert answered == exprs


@pytest.mark.parametrize("model", CANARIES)
def test_stable_and_candidate_appear_side_by_side(prometheus: str, model: str) -> None:
    board = _dashboards(_stack_objects())["modelplane-model"]
    (panel,) = [p for p in board["panels"] if p["title"].startswith("Error ratio per version")]
    versions = {
        series["metric"]["modelplane_dev_version"]
        for target in panel["targets"]
        for series in _answers(prometheus, _fill(target["expr"], model))
    }
    assert versions == {"v1", "v2"}


@pytest.mark.parametrize("model", [HEALTHY, *CANARIES])
def test_every_template_variable_offers_the_model(prometheus: str, model: str) -> None:
    board = _dashboards(_stack_objects())["modelplane-model"]
    offered = {}
    for variable in board["templating"]["list"][1:]:
        selector, label = variable["query"].removeprefix("label_values(").removesuffix(")").rsplit(", ", 1)
        values = _get(prometheus, f"/api/v1/label/{label}/values", {"match[]": _fill(selector, model)})
        offered[variable["name"]] = set(values)
    assert NAMESPACE in offered["namespace"]
    assert model in offered["model"]
    assert offered["version"] == ({"v1", "v2"} if model in CANARIES else {"v1"})


def test_the_rollout_annotation_marks_a_version_that_starts_serving(prometheus: str) -> None:
    board = _dashboards(_stack_objects())["modelplane-model"]
    (annotation,) = board["annotations"]["list"]
    started = _answers(prometheus, _fill(annotation["expr"], "fraud"), at=START + 300)
    assert {s["metric"]["modelplane_dev_version"] for s in started} == {"v1", "v2"}
    assert _answers(prometheus, _fill(annotation["expr"], "fraud")) == []

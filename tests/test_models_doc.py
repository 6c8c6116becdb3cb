"""Every stack example of docs/models.md is valid: placed in a small stack, it loads and renders."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from modelplane.build import build
from modelplane.stack import parse_stack
from tests.conftest import ROOT

DOC = ROOT / "docs" / "models.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BASE: dict[str, Any] = {
    "stack": {"name": "doc", "tier": "dev"},
    "controlPlane": {"defaultDeploymentMode": "knative", "leaderWorkerSet": True},
    "gpuPools": [{"name": "h100", "product": "NVIDIA-H100-80GB-HBM3", "gpusPerNode": 8, "maxNodes": 4}],
    "tenants": [{"name": n} for n in ("assistants", "fraud", "search", "vision")],
    "models": [
        {
            "name": name,
            "tenant": "fraud",
            "runtime": "sklearn",
            "format": {"name": "sklearn", "version": "1"},
            "storage": {"uri": f"gs://models/{name}"},
            "version": "v1",
        }
        for name in ("fraud-detector", "churn-xgb")
    ],
}


def _blocks() -> list[dict[str, Any]]:
    return [yaml.safe_load(b) for b in BLOCK.findall(DOC.read_text(encoding="utf-8"))]


def test_the_page_has_an_example_of_each_kind() -> None:
    sections = {key for block in _blocks() for key in block}
    assert sections >= {"models", "externalRuntimes", "graphs", "llms"}


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_each_example_loads_and_renders(index: int) -> None:
    data = copy.deepcopy(BASE)
    for key, value in _blocks()[index].items():
        data[key] = [*data.get(key, []), *value]
    stack = parse_stack(data, "models.md")
    assert build(stack).objects

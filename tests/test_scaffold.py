"""``modelplane init`` writes a stack that validates; ``modelplane import`` round-trips rendered models."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.build import build
from modelplane.cli import main
from modelplane.render import to_yaml_stream
from modelplane.stack import load_stack, parse_stack
from tests.conftest import STACKS
from tests.test_images import complete_lock


@pytest.mark.parametrize("tier", ["dev", "staging", "prod"])
def test_init_writes_a_stack_that_validates(
    tmp_path: Path, tier: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", "shop", "--tier", tier, "--dir", str(tmp_path), "--tenant", "payments"]) == 0
    path = tmp_path / "shop.yaml"
    args = load_stack(path)
    assert (args.stack.name, args.stack.tier, [t.name for t in args.tenants]) == ("shop", tier, ["payments"])
    assert path.read_text().startswith("# yaml-language-server: $schema=schema/stack.schema.json\n")
    assert (tmp_path / "schema" / "stack.schema.json").is_file()
    out = capsys.readouterr().out
    if tier == "prod":
        # Prod pins images by digest; the scaffold says how, and validates once they are pinned.
        assert f"run `modelplane images pin {path}`" in out
        assert main(["validate", str(path)]) == 2
        assert f"has no digest (images.pinning: digest); run `modelplane images pin {path}`" in (
            capsys.readouterr().err
        )
        complete_lock(path)
    assert main(["validate", str(path)]) == 0


@pytest.mark.parametrize(("runtime", "protocol"), [("tensorflow", "v1"), ("pmml", "v2"), ("triton", "v2")])
def test_init_gives_a_runtime_the_protocol_it_speaks(tmp_path: Path, runtime: str, protocol: str) -> None:
    assert main(["init", "shop", "--dir", str(tmp_path), "--runtime", runtime]) == 0
    (model,) = load_stack(tmp_path / "shop.yaml").models
    assert (model.runtime, model.protocol.version) == (runtime, protocol)


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "shop", "--dir", str(tmp_path)]) == 0
    before = (tmp_path / "shop.yaml").read_text()
    assert main(["init", "shop", "--dir", str(tmp_path), "--tier", "prod"]) == 2
    assert f"{tmp_path}/shop.yaml: exists; modelplane init writes new files only" in capsys.readouterr().err
    assert (tmp_path / "shop.yaml").read_text() == before


def test_init_refuses_an_unknown_runtime(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "shop", "--dir", str(tmp_path), "--runtime", "caffe"]) == 2
    assert "--runtime 'caffe': not in the runtime catalog" in capsys.readouterr().err
    assert not (tmp_path / "shop.yaml").exists()


def _isvcs(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o
        for o in objects
        if o["kind"] == "InferenceService"
    }


def test_import_of_a_render_renders_the_same_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = load_stack(STACKS / "dev.yaml")
    rendered = tmp_path / "isvcs.yaml"
    rendered.write_text(to_yaml_stream(build(dev).objects))
    capsys.readouterr()
    assert main(["import", str(rendered)]) == 0
    imported = yaml.safe_load(capsys.readouterr().out)
    data = yaml.safe_load((STACKS / "dev.yaml").read_text())
    data["tenants"], data["models"] = imported["tenants"], imported["models"]
    again = build(parse_stack(copy.deepcopy(data), "imported.yaml")).objects
    assert _isvcs(again) == _isvcs(build(dev).objects)


def _write_isvc(tmp_path: Path, predictor: dict[str, Any]) -> Path:
    """An InferenceService ``vision/flowers`` (version v4) with this predictor, as a file."""
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "flowers", "namespace": "vision", "labels": {"version": "v4"}},
        "spec": {"predictor": predictor},
    }
    path = tmp_path / "flowers.yaml"
    path.write_text(yaml.safe_dump(isvc))
    return path


def test_import_names_what_it_leaves_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_isvc(
        tmp_path,
        {
            "minReplicas": 1,
            "logger": {"mode": "all", "url": "http://logger.vision.svc"},
            "batcher": {"maxBatchSize": 32},
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                "resources": {"requests": {"cpu": "1"}},
            },
        },
    )
    capsys.readouterr()
    assert main(["import", str(path)]) == 3
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["models"] == [
        {
            "name": "flowers",
            "tenant": "vision",
            "runtime": "sklearn",
            "format": {"name": "sklearn"},
            "storage": {"uri": "gs://kfserving-examples/models/sklearn/1.0/model"},
            "version": "v4",
            "resources": {"cpu": "1"},
            "scaling": {"minReplicas": 1},
        }
    ]
    assert err.splitlines()[:3] == [
        f"{path}: document 1 (vision/flowers): spec.predictor.batcher.maxBatchSize: not imported; left out",
        f"{path}: document 1 (vision/flowers): spec.predictor.logger.mode: not imported; left out",
        f"{path}: document 1 (vision/flowers): spec.predictor.logger.url: not imported; left out",
    ]


@pytest.mark.parametrize(
    ("kserve_runtime", "runtime"),
    [
        ("kserve-tensorflow-serving", "tensorflow"),
        ("kserve-pmmlserver", "pmml"),
        ("kserve-openvino", "openvino"),
    ],
)
def test_import_maps_kserve_runtimes_to_the_catalog(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kserve_runtime: str, runtime: str
) -> None:
    path = _write_isvc(
        tmp_path,
        {
            "containerConcurrency": 4,
            "timeout": 90,
            "model": {
                "modelFormat": {"name": "tensorflow"},
                "runtime": kserve_runtime,
                "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
            },
        },
    )
    capsys.readouterr()
    assert main(["import", str(path)]) == 0
    (model,) = yaml.safe_load(capsys.readouterr().out)["models"]
    assert (model["runtime"], model["predictor"]) == (runtime, {"containerConcurrency": 4, "timeout": 90})


def test_import_of_what_is_not_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: [unclosed\n")
    assert main(["import", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"modelplane: {path}: not YAML: ")

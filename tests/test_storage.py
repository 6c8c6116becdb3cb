"""Model storage in each form KServe reads, and runtimes the cluster already has.

KServe's own webhook and defaulting judge the same forms in ``tests/upstream/test_kserve_samples.py``
(the storage samples of docs/samples/v1beta1); here the rendering and the refusals.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelplane import rules
from modelplane.base import Problem
from modelplane.build import build
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.storage import STORAGE_SCHEMES, StorageArgs
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS
from tests.test_model import _isvc, _model

CATALOG = load_catalog(catalog_dir())


@pytest.mark.parametrize("scheme", STORAGE_SCHEMES)
def test_every_scheme_of_the_storage_initializer_renders_as_storage_uri(
    scheme: str, crd_schemas: CrdSchemas
) -> None:
    isvc = _isvc(_model(storage={"uri": f"{scheme}://models/fraud"}))
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"{scheme}://models/fraud"
    assert crd_schemas.validate(isvc) == []


def test_several_uris_render_at_their_mount_paths(crd_schemas: CrdSchemas) -> None:
    uris = [
        {"uri": "s3://models/llm/base", "mountPath": "/mnt/models/base"},
        {"uri": "s3://models/llm/adapter", "mountPath": "/mnt/models/adapter"},
    ]
    isvc = _isvc(_model(storage={"uris": uris}))
    predictor = isvc["spec"]["predictor"]
    assert predictor["storageUris"] == uris
    assert "storageUri" not in predictor["model"]
    assert crd_schemas.validate(isvc) == []


def test_a_storage_config_entry_renders_as_kserves_storage_spec(crd_schemas: CrdSchemas) -> None:
    storage = {
        "key": "localMinIO",
        "path": "sklearn/model.joblib",
        "parameters": {"bucket": "example-models"},
    }
    isvc = _isvc(_model(storage=storage))
    model = isvc["spec"]["predictor"]["model"]
    assert model["storage"] == {
        "key": "localMinIO",
        "path": "sklearn/model.joblib",
        "parameters": {"bucket": "example-models"},
    }
    assert "storageUri" not in model
    assert crd_schemas.validate(isvc) == []


def test_a_read_write_pvc_says_so_in_kserves_annotation() -> None:
    isvc = _isvc(_model(storage={"uri": "pvc://weights/fraud", "readOnly": False}))
    assert isvc["metadata"]["annotations"]["storage.kserve.io/readonly"] == "false"
    assert "storage.kserve.io/readonly" not in _isvc(_model())["metadata"]["annotations"]


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({}, "give one of uri, uris or key (got none)"),
        (
            {"uri": "s3://a/b", "uris": [{"uri": "s3://a/c", "mountPath": "/mnt/c"}]},
            "give one of uri, uris or key (got uri, uris)",
        ),
        (
            {"uri": "gs://a/b", "key": "minio"},
            "with key (KServe's storage spec) the uri must be s3://, hdfs://",
        ),
        ({"uri": "s3://a/b", "path": "x"}, "path and parameters belong to a storage-config entry"),
        ({"uri": "s3://a/b", "readOnly": True}, "only applies to pvc:// models"),
        (
            {
                "uris": [
                    {"uri": "s3://a/b", "mountPath": "/data/b"},
                    {"uri": "s3://a/c", "mountPath": "/models/c"},
                ]
            },
            "mount paths /data/b, /models/c must share a parent directory below /",
        ),
        (
            {
                "uris": [
                    {"uri": "pvc://a/b", "mountPath": "/mnt/x"},
                    {"uri": "pvc://a/c", "mountPath": "/mnt/x"},
                ]
            },
            "PVC paths must be unique (also uris[0])",
        ),
        ({"uris": [{"uri": "s3://a/b", "mountPath": "/mnt/../etc"}]}, "must be a path below / without '..'"),
        ({"uri": "http://models.example/fraud"}, "; use https://"),
        ({"uri": "s3://a/b", "secretName": "s3", "serviceAccountName": "reader"}, "set secretName ('s3') or"),
    ],
)
def test_storage_kserve_would_refuse_or_misread_is_refused(storage: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        StorageArgs.model_validate(storage)


def test_credentials_in_a_uri_are_never_echoed() -> None:
    with pytest.raises(ValidationError) as info:
        StorageArgs.model_validate({"uris": [{"uri": "s3://AKIA:hunter2@bucket/m", "mountPath": "/mnt/m"}]})
    assert "hunter2" not in str(info.value)


def test_a_custom_container_may_need_no_model_storage(crd_schemas: CrdSchemas) -> None:
    echo = {
        "name": "echo",
        "tenant": "fraud",
        "runtime": "custom",
        "image": "ghcr.io/example/echo:1.0.0",
        "version": "v1",
    }
    objects = build(_stack(models=[echo])).objects
    isvc = next(o for o in objects if o["kind"] == "InferenceService")
    runtime = next(o for o in objects if o["kind"] == "ServingRuntime")
    # The image runs as the model's own runtime; no storage initializer, no STORAGE_URI.
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert [c["image"] for c in runtime["spec"]["containers"]] == ["ghcr.io/example/echo:1.0.0"]
    assert "storageUri" not in str(isvc)
    assert "STORAGE_URI" not in str(runtime)
    assert crd_schemas.validate(isvc) == crd_schemas.validate(runtime) == []


def test_a_catalog_model_needs_storage() -> None:
    with pytest.raises(ValidationError, match="storage"):
        _model(storage=None)


# --- runtimes the cluster already has -------------------------------------------------------

EXTERNAL = {"name": "kserve-sklearnserver", "formats": [{"name": "sklearn", "version": "1"}]}


def _stack(**top: Any) -> ServingPlatformArgs:
    data: dict[str, Any] = yaml.safe_load((STACKS / "dev.yaml").read_text(encoding="utf-8"))
    data = data | {"graphs": [], "externalRuntimes": [EXTERNAL]} | top
    return ServingPlatformArgs.model_validate(data)


def test_a_model_on_an_external_runtime_names_it_and_renders_no_runtime() -> None:
    stack = _stack()
    model = stack.models[0].model_dump(by_alias=True, exclude_none=True) | {"runtime": "kserve-sklearnserver"}
    stack = _stack(models=[model])
    assert rules.problems(stack, catalog=CATALOG) == []
    objects = build(stack).objects
    isvc = next(o for o in objects if o["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "kserve-sklearnserver"
    runtimes = {
        o["metadata"]["name"] for o in objects if o["kind"] in ("ServingRuntime", "ClusterServingRuntime")
    }
    assert "kserve-sklearnserver" not in runtimes


def test_an_external_runtime_is_checked_like_the_catalog() -> None:
    model = _stack().models[0].model_dump(by_alias=True, exclude_none=True) | {
        "runtime": "kserve-sklearnserver",
        "format": {"name": "xgboost", "version": "1"},
    }
    problems = rules.problems(_stack(models=[model]), catalog=CATALOG)
    assert [(p.path, p.value) for p in problems] == [(("models", 0, "format"), "xgboost:1")]


@pytest.mark.parametrize(
    ("fmt", "clash"),
    [
        ({"name": "sklearn", "version": "1", "priority": 1}, True),  # modelplane-sklearn's priority
        ({"name": "SKLearn", "version": "1", "priority": 1}, True),  # KServe compares names ignoring case
        ({"name": "sklearn", "version": "1", "priority": 3}, False),
        ({"name": "sklearn", "version": "1", "priority": 1, "autoSelect": False}, False),
        ({"name": "sklearn", "version": "2", "priority": 1}, False),
    ],
)
def test_an_external_runtime_never_shares_a_format_priority_with_a_rendered_runtime(
    fmt: dict[str, Any], clash: bool
) -> None:
    problems = rules.problems(_stack(externalRuntimes=[EXTERNAL | {"formats": [fmt]}]), catalog=CATALOG)
    assert [(p.path, p.value) for p in problems] == (
        [(("externalRuntimes", 0, "formats", 0, "priority"), 1)] if clash else []
    )


def test_an_external_runtime_may_not_shadow_a_catalog_runtime() -> None:
    problems = rules.problems(_stack(externalRuntimes=[EXTERNAL | {"name": "sklearn"}]), catalog=CATALOG)
    assert [p.path for p in problems] == [("externalRuntimes", 0, "name")]
    assert isinstance(problems[0], Problem)

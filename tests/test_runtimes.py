"""The runtime catalog: typed, complete, hardened, and rendered into valid runtime objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.errors import PlatformError
from modelplane.runtimes import FormatSpec, RuntimeSpec, catalog_dir, load_catalog, render_runtime
from modelplane.validation import CrdSchemas

CATALOG = load_catalog(catalog_dir())
REQUIRED = ["custom", "huggingface", "lightgbm", "mlserver", "sklearn", "torchserve", "triton", "xgboost"]


def test_the_catalog_has_every_required_runtime() -> None:
    assert sorted(CATALOG) == REQUIRED


@pytest.mark.parametrize("fmt", ["onnx", "tensorrt", "pytorch", "tensorflow"])
def test_triton_serves_the_deep_learning_formats(fmt: str) -> None:
    assert CATALOG["triton"].serves(fmt, None)


def test_mesh_capable_runtimes_are_declared() -> None:
    assert sorted(n for n, r in CATALOG.items() if r.mesh) == ["mlserver", "triton"]


@pytest.mark.parametrize("name", [n for n in REQUIRED if n != "custom"])
def test_catalog_runtime_renders_a_valid_hardened_cluster_runtime(name: str, crd_schemas: CrdSchemas) -> None:
    obj = render_runtime(CATALOG[name], name=f"modelplane-{name}", labels={"a": "b"})
    assert obj["kind"] == "ClusterServingRuntime"
    assert crd_schemas.validate(obj) == []
    container = obj["spec"]["containers"][0]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] > 0
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is CATALOG[name].read_only_root_filesystem
    assert {"readinessProbe", "livenessProbe", "startupProbe"} <= set(container)
    assert set(container["resources"]) == {"requests", "limits"}
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert mounted == {v["name"] for v in obj["spec"]["volumes"]}


@pytest.mark.parametrize("name", ["mlserver", "triton"])
def test_mesh_runtime_is_multi_model_with_the_adapter(name: str, crd_schemas: CrdSchemas) -> None:
    obj = render_runtime(
        CATALOG[name],
        name=f"modelplane-{name}-mesh",
        labels={},
        mesh_replicas=3,
        mesh_memory_buffer_bytes=134217728,
        mesh_load_timeout_ms=90000,
    )
    spec = obj["spec"]
    assert spec["multiModel"] is True and spec["replicas"] == 3
    assert spec["protocolVersions"] == ["grpc-v2"]
    assert spec["builtInAdapter"]["memBufferBytes"] == 134217728
    assert crd_schemas.validate(obj) == []


def test_custom_runtime_is_namespaced_with_the_models_image_and_format(crd_schemas: CrdSchemas) -> None:
    obj = render_runtime(
        CATALOG["custom"],
        name="intent-runtime",
        namespace="assistants",
        labels={},
        image="ghcr.io/example/intent:3.2.0",
        formats=[FormatSpec(name="custom-intent", version="3", auto_select=False)],
    )
    assert obj["kind"] == "ServingRuntime" and obj["metadata"]["namespace"] == "assistants"
    assert obj["spec"]["containers"][0]["image"] == "ghcr.io/example/intent:3.2.0"
    assert obj["spec"]["supportedModelFormats"] == [
        {"autoSelect": False, "name": "custom-intent", "version": "3"}
    ]
    assert crd_schemas.validate(obj) == []


def test_custom_runtime_without_an_image_is_refused() -> None:
    with pytest.raises(PlatformError, match="runtime 'custom' has no image"):
        render_runtime(CATALOG["custom"], name="x", labels={})


def test_rendering_is_deterministic() -> None:
    first = render_runtime(CATALOG["triton"], name="t", labels={"b": "2", "a": "1"})
    second = render_runtime(CATALOG["triton"], name="t", labels={"a": "1", "b": "2"})
    assert first == second


def test_a_broken_catalog_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parent.parent / "runtimes"
    (tmp_path / "servingruntime.yaml.j2").write_text((source / "servingruntime.yaml.j2").read_text())
    (tmp_path / "broken.yaml").write_text("name: broken\nhttpPort: lots\n")
    with pytest.raises(PlatformError, match=r"broken\.yaml: invalid runtime"):
        load_catalog(tmp_path)


def test_a_runtime_name_must_match_its_file(tmp_path: Path) -> None:
    data = (Path(__file__).resolve().parent.parent / "runtimes" / "sklearn.yaml").read_text()
    (tmp_path / "other.yaml").write_text(data)
    with pytest.raises(PlatformError, match=r"other\.yaml: name: must match the file name \(got 'sklearn'\)"):
        load_catalog(tmp_path)


def test_runtime_spec_refuses_unknown_fields() -> None:
    data = CATALOG["sklearn"].model_dump(by_alias=True) | {"privileged": True}
    with pytest.raises(ValueError, match="privileged"):
        RuntimeSpec.model_validate(data)

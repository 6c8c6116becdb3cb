"""The runtime catalog: typed, complete, hardened, and rendered into valid runtime objects."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelplane.errors import PlatformError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.runtimes import FormatSpec, RuntimeSpec, catalog_dir, load_catalog, render_runtime
from modelplane.upstream import Versions
from modelplane.validation import CrdSchemas
from tests.conftest import REFERENCE_DIR
from tests.test_model import _isvc, _model

CATALOG = load_catalog(catalog_dir())
KSERVE_VERSION = Versions().kserve
REQUIRED = [
    "autogluon",
    "custom",
    "huggingface",
    "huggingface-multinode",
    "lightgbm",
    "mlserver",
    "openvino",
    "paddle",
    "pmml",
    "predictive",
    "sklearn",
    "tensorflow",
    "torchserve",
    "triton",
    "vllm",
    "xgboost",
]


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


@pytest.mark.parametrize(
    ("edit", "clash"),
    [
        # Two runtimes auto-selecting sklearn:1 at priority 1 for v2: KServe cannot choose.
        (
            ("mlserver.yaml", '{name: sklearn, version: "1", autoSelect: true, priority: 2}', "priority: 1}"),
            "mlserver and sklearn: both auto-select format sklearn:1 at priority 1 for protocol v2",
        ),
        # One runtime auto-selecting tensorflow at two priorities.
        (
            (
                "triton.yaml",
                '{name: tensorflow, version: "2", autoSelect: true, priority: 1}',
                "priority: 3}",
            ),
            "triton: format 'tensorflow' is auto-selected at priorities 1 and 3",
        ),
    ],
)
def test_a_catalog_kserves_runtime_webhook_would_refuse_is_an_error(
    tmp_path: Path, edit: tuple[str, str, str], clash: str
) -> None:
    catalog = tmp_path / "runtimes"
    catalog.mkdir()
    for path in catalog_dir().iterdir():
        (catalog / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    name, old, priority = edit
    text = (catalog / name).read_text(encoding="utf-8")
    assert old in text
    (catalog / name).write_text(
        text.replace(old, old.rsplit("priority: ", 1)[0] + priority), encoding="utf-8"
    )
    with pytest.raises(PlatformError, match=re.escape(clash)):
        load_catalog(catalog)


def test_runtime_spec_refuses_unknown_fields() -> None:
    data = CATALOG["sklearn"].model_dump(by_alias=True) | {"privileged": True}
    with pytest.raises(ValueError, match="privileged"):
        RuntimeSpec.model_validate(data)


# --- the catalog against upstream's own runtime definitions ------------------------------------
#
# KServe's built-in ClusterServingRuntimes (config/runtimes/ at the commit in the reference
# data's SOURCES.md) are the upstream truth for what each server needs from its container.

UPSTREAM_RUNTIMES = REFERENCE_DIR / "runtimes"
UPSTREAM_NAMES = {
    "huggingface": "kserve-huggingfaceserver",
    "lightgbm": "kserve-lgbserver",
    "mlserver": "kserve-mlserver",
    "sklearn": "kserve-sklearnserver",
    "torchserve": "kserve-torchserve",
    "triton": "kserve-tritonserver",
    "xgboost": "kserve-xgbserver",
    "autogluon": "kserve-autogluonserver",
    "huggingface-multinode": "kserve-huggingfaceserver-multinode",
    "openvino": "kserve-openvino",
    "paddle": "kserve-paddleserver",
    "pmml": "kserve-pmmlserver",
    "predictive": "kserve-predictiveserver",
    "tensorflow": "kserve-tensorflow-serving",
    "vllm": "kserve-vllmserver",
}
ADDED = sorted(
    set(UPSTREAM_NAMES)
    - {"huggingface", "lightgbm", "mlserver", "sklearn", "torchserve", "triton", "xgboost"}
)
"""Runtimes taken into the catalog with upstream's definitions as they stand (the others were
changed where the real servers disagreed with them: docs/runtimes.md)."""


def _upstream(name: str) -> dict[str, Any]:
    path = UPSTREAM_RUNTIMES / f"{UPSTREAM_NAMES[name]}.yaml"
    if not path.is_file():
        pytest.skip(f"upstream runtime {path.name} not found in {UPSTREAM_RUNTIMES} (the shared/ directory)")
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def _rendered(name: str) -> dict[str, Any]:
    return render_runtime(CATALOG[name], name=f"modelplane-{name}", labels={})


@pytest.mark.parametrize("name", sorted(UPSTREAM_NAMES))
def test_server_type_is_upstreams_so_kserve_applies_its_runtime_defaults(name: str) -> None:
    # KServe's controller picks the per-server defaults (MLServer's modelClass label, TorchServe's
    # serviceEnvelope label, the -gpu image tag) by this annotation: v0.20.0
    # pkg/apis/serving/v1beta1/inference_service_defaults.go:392-410.
    key = "serving.kserve.io/server-type"
    assert _rendered(name)["metadata"]["annotations"][key] == _upstream(name)["metadata"]["annotations"][key]


@pytest.mark.parametrize("name", sorted(UPSTREAM_NAMES))
def test_every_placeholder_upstream_fills_from_the_inference_service_is_set(name: str) -> None:
    # `{{.Labels.modelClass}}` (MLServer's inference runtime per format) and
    # `{{.Labels.serviceEnvelope}}` (TorchServe's v1/v2 request envelope) are filled from the
    # labels KServe's controller puts on the model; without them MLServer has no model class to
    # load and TorchServe answers in its own format, not KServe's.
    upstream = _upstream(name)["spec"]["containers"][0]
    ours = _rendered(name)["spec"]["containers"][0]
    wanted_env = {e["name"]: e["value"] for e in upstream.get("env", []) if "{{" in str(e.get("value"))}
    have_env = {e["name"]: e.get("value") for e in ours["env"]}
    assert {k: have_env.get(k) for k in wanted_env} == wanted_env
    wanted_args = [a for a in upstream.get("args", []) if "{{" in a]
    assert [a for a in ours["args"] if "{{" in a] == wanted_args


def test_mlserver_and_torchserve_carry_the_per_model_settings() -> None:
    env = {
        n: {e["name"]: e.get("value") for e in _rendered(n)["spec"]["containers"][0]["env"]}
        for n in UPSTREAM_NAMES
    }
    assert env["mlserver"]["MLSERVER_MODEL_IMPLEMENTATION"] == "{{.Labels.modelClass}}"
    assert env["torchserve"]["TS_SERVICE_ENVELOPE"] == "{{.Labels.serviceEnvelope}}"


def _formats(runtime: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (f["name"], f.get("version"), f.get("autoSelect", False), f.get("priority"))
        for f in runtime["spec"]["supportedModelFormats"]
    )


def _is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(item in rest for item in part)


@pytest.mark.parametrize("name", ADDED)
def test_added_runtime_serves_and_speaks_what_upstream_declares(name: str) -> None:
    # The formats (with autoSelect and priority: KServe picks a runtime by them), the protocol
    # versions (KServe refuses a model whose protocol the runtime does not list) and the server's
    # own arguments and environment are upstream's; the catalog may only add to them (a gRPC
    # port, OpenVINO's --metrics_enable, a writable HOME for the non-root user).
    upstream, ours = _upstream(name), _rendered(name)
    assert _formats(ours) == _formats(upstream)
    assert ours["spec"].get("protocolVersions") == upstream["spec"].get("protocolVersions")
    up_c, our_c = upstream["spec"]["containers"][0], ours["spec"]["containers"][0]
    assert _is_subsequence(up_c.get("args", []), our_c.get("args", []))
    our_env = {e["name"]: e.get("value") for e in our_c.get("env", [])}
    assert {e["name"]: our_env.get(e["name"]) for e in up_c.get("env", [])} == {
        e["name"]: e.get("value") for e in up_c.get("env", [])
    }
    if name != "huggingface-multinode":
        # The multi-node server's head and worker run modelplane's own Ray start-up scripts
        # (docs/runtimes.md); every other server keeps upstream's entrypoint.
        assert our_c.get("command") == up_c.get("command")
    assert ("workerSpec" in ours["spec"]) == ("workerSpec" in upstream["spec"])
    assert (
        ours["spec"]["annotations"]["prometheus.kserve.io/port"]
        == upstream["spec"]["annotations"]["prometheus.kserve.io/port"]
    )


def _upstream_images() -> dict[str, tuple[str, str]]:
    path = UPSTREAM_RUNTIMES / "kustomization.yaml"
    if not path.is_file():
        pytest.skip(f"upstream {path.name} not found in {UPSTREAM_RUNTIMES} (the shared/ directory)")
    images = yaml.safe_load(path.read_text(encoding="utf-8"))["images"]
    return {i["name"]: (i["newName"], str(i["newTag"])) for i in images}


def _registry(image: str) -> str:
    """The image with Docker's default registry spelled out, as the catalog writes it."""
    first = image.split("/", 1)[0]
    return image if "." in first else f"docker.io/{image}"


@pytest.mark.parametrize("name", ADDED)
def test_added_runtime_runs_upstreams_image_at_a_pinned_tag(name: str) -> None:
    # Upstream names each image by a placeholder that its kustomization (config/runtimes/
    # kustomization.yaml) replaces; the catalog runs the same repository, pinned: KServe's own
    # servers at the release's tag, not `latest`. vLLM's CPU-only default is the `-cpu` sibling
    # repository KServe itself switches to without a GPU (utils.go:383-388), the multi-node
    # server the CUDA build.
    placeholder = _upstream(name)["spec"]["containers"][0]["image"].removesuffix(":replace")
    ours = CATALOG[name]
    assert ours.image is not None
    repository, tag = ours.image.rsplit(":", 1)
    assert tag != "latest"
    images = _upstream_images()
    if placeholder not in images:
        # kserve-openvino is outside upstream's kustomization; its placeholder is the repository.
        assert repository == _registry(placeholder)
        return
    upstream_repo, upstream_tag = images[placeholder]
    expected = _registry(upstream_repo)
    if name == "vllm":
        assert (repository, ours.gpu_image) == (f"{expected}-cpu", f"{expected}:{tag}")
    elif name == "huggingface-multinode":
        assert (repository, tag) == (expected, f"{KSERVE_VERSION}-gpu")
    elif upstream_tag == "latest" and upstream_repo.startswith("kserve/"):
        assert (repository, tag) == (expected, KSERVE_VERSION)
    else:
        assert (repository, tag) == (expected, upstream_tag)


GPU_SUFFIXED = ("torchserve", "huggingfaceserver", "tensorflow-serving")
"""Server types whose CUDA build KServe v0.20.0 names `<tag>-gpu`
(pkg/controller/v1beta1/inferenceservice/utils/utils.go:373-381)."""


@pytest.mark.parametrize(
    "name",
    sorted(
        n
        for n, r in CATALOG.items()
        if r.server_type in GPU_SUFFIXED and r.image is not None and not r.image.endswith("-gpu")
    ),
)
def test_gpu_image_is_the_cuda_build_kserve_names(name: str) -> None:
    spec = CATALOG[name]
    assert spec.image is not None
    assert spec.gpu_image == spec.image + "-gpu"


@pytest.mark.parametrize(
    ("sharing", "resource"),
    [
        ({"mode": "exclusive"}, "nvidia.com/gpu"),
        # KServe swaps the image only for nvidia.com/gpu and nvidia.com/mig-*, not for this one.
        ({"mode": "time-slicing", "replicas": 4}, "nvidia.com/gpu.shared"),
        ({"mode": "mig", "strategy": "mixed", "profiles": {"1g.10gb": 7}}, "nvidia.com/mig-1g.10gb"),
    ],
)
@pytest.mark.parametrize(
    ("runtime", "fmt", "image"),
    [
        ("torchserve", "pytorch", "docker.io/pytorch/torchserve-kfs:0.12.0-gpu"),
        ("huggingface", "huggingface", "docker.io/kserve/huggingfaceserver:v0.20.0-gpu"),
    ],
)
def test_gpu_model_runs_the_gpu_build(
    sharing: dict[str, Any], resource: str, runtime: str, fmt: str, image: str, crd_schemas: CrdSchemas
) -> None:
    pool = GpuPoolArgs.model_validate({"name": "gpus", "product": "NVIDIA-A100", "sharing": sharing})
    model = _model(
        runtime=runtime, format={"name": fmt, "version": "1"}, resources={"gpu": 1, "pool": "gpus"}
    )
    isvc = _isvc(model, pool=pool)
    spec = isvc["spec"]["predictor"]["model"]
    assert resource in spec["resources"]["limits"]
    assert spec["image"] == image
    assert crd_schemas.validate(isvc) == []


@pytest.mark.parametrize("runtime", ["torchserve", "huggingface"])
def test_cpu_model_keeps_the_runtime_image(runtime: str) -> None:
    fmt = "pytorch" if runtime == "torchserve" else "huggingface"
    isvc = _isvc(_model(runtime=runtime, format={"name": fmt, "version": "1"}))
    assert "image" not in isvc["spec"]["predictor"]["model"]


def test_gpu_image_on_a_cpu_only_runtime_is_refused() -> None:
    data = CATALOG["sklearn"].model_dump(by_alias=True) | {
        "gpuImage": "docker.io/kserve/sklearnserver:v0.20.0-gpu"
    }
    with pytest.raises(
        ValidationError,
        match=re.escape(
            "gpuImage 'docker.io/kserve/sklearnserver:v0.20.0-gpu' is set but gpuCapable is false"
        ),
    ):
        RuntimeSpec.model_validate(data)


@pytest.mark.parametrize("name", sorted(n for n, r in CATALOG.items() if "grpc-v2" in r.protocols))
@pytest.mark.parametrize("mode", ["knative", "standard"])
def test_grpc_model_gets_one_h2c_port_on_the_runtimes_grpc_port(
    name: str, mode: str, crd_schemas: CrdSchemas
) -> None:
    spec = CATALOG[name]
    fmt = (
        spec.formats[0].model_dump(exclude_none=True, include={"name", "version"})
        if spec.formats
        else {"name": "x"}
    )
    extra: dict[str, Any] = {"image": "ghcr.io/example/server:1.0.0"} if name == "custom" else {}
    model = _model(runtime=name, format=fmt, protocol={"version": "v2", "transport": "grpc"}, **extra)
    isvc = _isvc(model, mode=mode)
    ports = isvc["spec"]["predictor"]["model"]["ports"]
    # Knative accepts exactly one port named h2c or http1; KServe's Service marks h2c as gRPC.
    assert ports == [{"containerPort": spec.grpc_port, "name": "h2c", "protocol": "TCP"}]
    assert crd_schemas.validate(isvc) == []


def test_http_model_declares_no_port() -> None:
    isvc = _isvc(_model(runtime="mlserver", format={"name": "sklearn", "version": "1"}))
    assert "ports" not in isvc["spec"]["predictor"]["model"]


def test_a_model_pins_its_runtimes_image_tag_with_runtime_version(crd_schemas: CrdSchemas) -> None:
    # KServe replaces the runtime image's tag with runtimeVersion (utils.go:347-355), so the
    # model names the tag only, and keeps the catalog runtime's hardening and probes.
    isvc = _isvc(_model(runtimeVersion="v0.19.0"))
    model = isvc["spec"]["predictor"]["model"]
    assert (model["runtime"], model["runtimeVersion"]) == ("modelplane-sklearn", "v0.19.0")
    assert "image" not in model
    assert crd_schemas.validate(isvc) == []


def test_a_runtime_version_is_a_tag_not_an_image() -> None:
    with pytest.raises(ValidationError, match="runtimeVersion"):
        _model(runtimeVersion="docker.io/kserve/sklearnserver:v0.19.0")


def _shell_scripts() -> list[tuple[str, str]]:
    scripts: list[tuple[str, str]] = []
    for name, spec in sorted(CATALOG.items()):
        commands = [("command", spec.command)]
        if spec.worker is not None:
            commands += [
                ("worker.command", spec.worker.command),
                ("worker.livenessCommand", spec.worker.liveness_command),
            ]
        for where, command in commands:
            if command[:2] in (["/bin/bash", "-c"], ["bash", "-c"]):
                scripts.append((f"{name} {where}", command[2]))
    return scripts


@pytest.mark.parametrize(("where", "script"), _shell_scripts(), ids=[w for w, _ in _shell_scripts()])
def test_the_catalogs_start_up_scripts_are_valid_bash(where: str, script: str) -> None:
    # The multi-node server's own Ray start-up scripts (upstream's are replaced, docs/runtimes.md):
    # a syntax error would only show as a crash-looping pod.
    result = subprocess.run(["bash", "-n", "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{where}: {result.stderr}"


def test_there_are_start_up_scripts_to_check() -> None:
    assert {w for w, _ in _shell_scripts()} >= {
        "huggingface-multinode command",
        "huggingface-multinode worker.command",
        "huggingface-multinode worker.livenessCommand",
    }

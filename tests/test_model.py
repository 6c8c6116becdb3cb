"""A model compiles into the InferenceService its deployment mode expects."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelplane.gpu_pool import GpuPoolArgs
from modelplane.model import ModelArgs, objects, storage_service_account_name
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.validation import CrdSchemas

CATALOG = load_catalog(catalog_dir())


def _model(**overrides: Any) -> ModelArgs:
    data: dict[str, Any] = {
        "name": "fraud",
        "tenant": "payments",
        "runtime": "sklearn",
        "format": {"name": "sklearn", "version": "1"},
        "storage": {"uri": "s3://bucket/fraud/v1"},
        "version": "v1",
    }
    data.update(overrides)
    return ModelArgs.model_validate(data)


def _isvc(model: ModelArgs, mode: str = "standard", pool: GpuPoolArgs | None = None) -> dict[str, Any]:
    objs = objects(
        model, stack="test", namespace="payments", mode=mode, runtime=CATALOG[model.runtime], pool=pool
    )  # type: ignore[arg-type]
    return next(o for o in objs if o["kind"] == "InferenceService")


@pytest.mark.parametrize(
    ("mode", "annotation"), [("knative", "Knative"), ("standard", "Standard"), ("modelmesh", "ModelMesh")]
)
def test_mode_annotation(mode: str, annotation: str) -> None:
    model = _model(runtime="mlserver") if mode == "modelmesh" else _model()
    isvc = _isvc(model, mode)
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == annotation


def test_knative_mode_scales_to_zero_on_concurrency_by_default() -> None:
    predictor = _isvc(_model(scaling={"minReplicas": 0, "maxReplicas": 4}), "knative")["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (0, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 10)


def test_standard_mode_uses_an_hpa_on_cpu_by_default() -> None:
    isvc = _isvc(_model())
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["scaleMetric"], predictor["scaleMetricType"], predictor["scaleTarget"]) == (
        "cpu",
        "Utilization",
        80,
    )


def test_standard_mode_scales_on_prometheus_metrics_through_keda() -> None:
    isvc = _isvc(
        _model(
            runtime="triton",
            format={"name": "onnx", "version": "1"},
            scaling={"metric": "queue-depth", "target": 8},
        )
    )
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    metric = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]
    assert metric["metric"]["backend"] == "prometheus"
    assert (
        metric["metric"]["query"] == 'sum(nv_inference_pending_request_count{namespace="payments",'
        'pod=~"fraud-predictor-?[bcdfghjklmnpqrstvwxz2456789-]{5,}"})'
    )
    assert metric["target"] == {"type": "Value", "value": "8"}
    assert "scaleMetric" not in isvc["spec"]["predictor"]


def test_modelmesh_mode_has_no_per_model_resources_or_scaling() -> None:
    predictor = _isvc(_model(runtime="mlserver"), "modelmesh")["spec"]["predictor"]
    assert predictor == {
        "model": {
            "modelFormat": {"name": "sklearn", "version": "1"},
            "runtime": "modelplane-mlserver-mesh",
            "storageUri": "s3://bucket/fraud/v1",
        }
    }


def test_model_resources_default_to_the_runtimes() -> None:
    resources = _isvc(_model())["spec"]["predictor"]["model"]["resources"]
    assert resources == {
        "limits": {"cpu": "1", "memory": "1Gi"},
        "requests": {"cpu": "250m", "memory": "512Mi"},
    }


def test_a_limit_never_falls_below_the_request() -> None:
    resources = _isvc(_model(resources={"cpu": "3", "memory": "4Gi"}))["spec"]["predictor"]["model"][
        "resources"
    ]
    assert resources["limits"] == {"cpu": "3", "memory": "4Gi"}


@pytest.mark.parametrize(
    ("sharing", "mig_profile", "resource"),
    [
        ({"mode": "exclusive"}, None, "nvidia.com/gpu"),
        ({"mode": "time-slicing", "replicas": 4}, None, "nvidia.com/gpu.shared"),
        (
            {"mode": "mig", "strategy": "mixed", "profiles": {"1g.10gb": 7}},
            "1g.10gb",
            "nvidia.com/mig-1g.10gb",
        ),
        ({"mode": "mig", "strategy": "single", "profiles": {"3g.40gb": 2}}, None, "nvidia.com/gpu"),
    ],
)
def test_gpu_models_request_the_resource_their_pool_advertises(
    sharing: dict[str, Any], mig_profile: str | None, resource: str
) -> None:
    pool = GpuPoolArgs.model_validate({"name": "gpus", "product": "NVIDIA-H100", "sharing": sharing})
    model = _model(
        runtime="triton",
        format={"name": "onnx", "version": "1"},
        resources={"gpu": 1, "pool": "gpus", "migProfile": mig_profile},
    )
    predictor = _isvc(model, pool=pool)["spec"]["predictor"]
    assert predictor["model"]["resources"]["limits"][resource] == "1"
    assert predictor["nodeSelector"] == {"modelplane.dev/gpu-pool": "gpus"}
    assert predictor["tolerations"] == [
        {"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Equal", "value": "present"}
    ]


def test_storage_credentials_are_referenced_through_a_shared_service_account() -> None:
    objs = objects(
        _model(storage={"uri": "s3://bucket/m", "secretName": "models-s3"}),
        stack="test",
        namespace="payments",
        mode="standard",
        runtime=CATALOG["sklearn"],
    )
    account = next(o for o in objs if o["kind"] == "ServiceAccount")
    assert account["metadata"]["name"] == storage_service_account_name("models-s3") == "storage-models-s3"
    assert account["secrets"] == [{"name": "models-s3"}]
    assert account["automountServiceAccountToken"] is False
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "storage-models-s3"


def test_every_model_pod_runs_non_root_with_the_default_seccomp_profile() -> None:
    predictor = _isvc(_model())["spec"]["predictor"]
    assert predictor["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_a_transformer_is_hardened_sized_and_probed() -> None:
    isvc = _isvc(_model(transformer={"image": "ghcr.io/example/tok:1.0.0", "cpu": "500m", "memory": "1Gi"}))
    container = isvc["spec"]["transformer"]["containers"][0]
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "1Gi"},
        "requests": {"cpu": "500m", "memory": "1Gi"},
    }
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "readinessProbe" in container and "livenessProbe" in container
    assert isvc["spec"]["transformer"]["minReplicas"] == isvc["spec"]["predictor"]["minReplicas"]


def kserve_transformer_args(container: dict[str, Any], *, isvc: str, namespace: str) -> list[str]:
    """The arguments KServe v0.20.0 runs a custom transformer with: its own, then what it appends.

    pkg/apis/serving/v1beta1/transformer_custom.go:93-110: ``--model_name``, ``--predictor_host``
    and ``--http_port 8080``, each unless an argument already starts with the flag
    (pkg/utils/collections.go:48-55).
    """
    args = list(container.get("args", []))
    for flag, value in (
        ("--model_name", isvc),
        ("--predictor_host", f"{isvc}-predictor.{namespace}"),
        ("--http_port", "8080"),
    ):
        if not any(a == flag or a.startswith(flag) for a in args):
            args += [flag, value]
    return args


@pytest.mark.parametrize("port", [8080, 9000])
def test_a_transformer_is_told_the_port_its_container_and_probes_name(port: int) -> None:
    isvc = _isvc(
        _model(transformer={"image": "ghcr.io/example/tok:1.0.0", "args": ["--workers=2"], "port": port})
    )
    container = isvc["spec"]["transformer"]["containers"][0]
    assert container["ports"] == [{"containerPort": port, "name": "http1", "protocol": "TCP"}]
    assert container["readinessProbe"]["tcpSocket"]["port"] == port
    args = kserve_transformer_args(container, isvc="fraud", namespace="payments")
    # The last --http_port wins in KServe's argparse parser (tests/servers checks it with the real one).
    values = [a.split("=", 1)[1] for a in args if a.startswith("--http_port=")]
    values += [args[i + 1] for i, a in enumerate(args) if a == "--http_port"]
    assert values == [str(port)]
    assert args[0] == "--workers=2"


def _effective_annotations(isvc: dict[str, Any], component: str) -> dict[str, str]:
    """A component's annotations as KServe computes them: the InferenceService's, then its own
    (components/transformer.go:118-121, utils.Union: later maps win)."""
    own: dict[str, str] = isvc["spec"][component].get("annotations", {})
    return dict(isvc["metadata"]["annotations"]) | own


@pytest.mark.parametrize("metric", ["cpu", None])
def test_a_component_beside_an_hpa_predictor_shares_its_class(metric: str | None) -> None:
    scaling = {"metric": metric} if metric else {}
    isvc = _isvc(_model(scaling=scaling, transformer={"image": "ghcr.io/example/tok:1.0.0"}))
    assert "annotations" not in isvc["spec"]["transformer"]
    assert _effective_annotations(isvc, "transformer")["serving.kserve.io/autoscalerClass"] == "hpa"


@pytest.mark.parametrize("mode", ["knative", "standard", "modelmesh"])
def test_each_mode_passes_the_inferenceservice_schema(mode: str, crd_schemas: CrdSchemas) -> None:
    model = (
        _model(runtime="mlserver")
        if mode == "modelmesh"
        else _model(transformer={"image": "ghcr.io/example/tok:1.0.0"})
    )
    assert crd_schemas.validate(_isvc(model, mode)) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"image": "ghcr.io/x/y:1.0"},
            "image: is only for runtime 'custom' (runtime is 'sklearn'); use runtimeVersion to change the runtime's "
            "image tag, or set runtime: custom",
        ),
        ({"runtime": "custom"}, "image: runtime 'custom' needs image, the model server to run"),
        (
            {"resources": {"gpu": 1}},
            "resources.pool: resources.gpu is 1, so the model needs a GPU pool; name one of gpuPools here",
        ),
        (
            {"explainer": {"image": "ghcr.io/example/why:1.0.0", "port": 9000}},
            "port: KServe appends --http_port 8080 to a custom explainer's arguments "
            "(explainer_custom.go), so its server listens on 8080 whatever the port; remove port",
        ),
        (
            {"scaling": {"minReplicas": 5, "maxReplicas": 2}},
            "scaling.minReplicas: is greater than scaling.maxReplicas 2; lower minReplicas or raise maxReplicas",
        ),
        (
            {"storage": {"uri": "ftp://host/model"}},
            "uri: must be <scheme>://<path> with scheme one of s3, gs, pvc, hf, oci, oci+native, oci+fetch, https, "
            "hdfs, webhdfs",
        ),
        (
            {"storage": {"uri": "s3://key:secret@bucket/model"}},
            "uri: must not embed credentials; reference a secret with secretName",
        ),
    ],
)
def test_model_shape_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="Value error, " + re.escape(message) + r" \["):
        _model(**overrides)


def test_a_moved_server_is_probed_the_way_its_runtime_probes_it() -> None:
    # The runtime's HTTP checks move to the new port: a TCP check merged into them by KServe would
    # give each probe two handlers, which the API server refuses.
    model = _model(
        runtime="custom", image="ghcr.io/example/server:1.0.0", predictor={"ports": [{"containerPort": 8085}]}
    )
    container = _isvc(model)["spec"]["predictor"]["model"]
    assert {name: container[name] for name in ("readinessProbe", "livenessProbe", "startupProbe")} == {
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8085}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": 8085}},
        "startupProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8085}},
    }

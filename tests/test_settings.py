"""Component settings: what a stack writes lands in the InferenceService in Kubernetes' own shape.

The refusals a user sees (inline credentials, reserved keys, what a mode cannot carry) are whole
stack files in ``tests/test_stack_errors.py``; here the rendering, the Knative feature flags the
settings need, the placement rules of the API server and the transformer's scaling under KEDA.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelplane import model as model_part
from modelplane.container import EnvVar
from modelplane.overrides import ComponentSettings, knative_features, mode_problems
from modelplane.placement import PlacementArgs
from modelplane.stack import load_stack
from modelplane.validation import CrdSchemas
from tests.conftest import STACKS
from tests.test_graph import knative_serving
from tests.test_model import _isvc, _model

SETTINGS: dict[str, Any] = {
    "args": ["--workers=2"],
    "env": [
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "HF_TOKEN", "secretKeyRef": {"name": "hf", "key": "token"}},
        {"name": "POD", "fieldRef": "metadata.name"},
    ],
    "envFrom": [{"configMapRef": "opts", "prefix": "OPT_"}],
    "volumes": [{"name": "cache", "mountPath": "/cache", "persistentVolumeClaim": {"claimName": "c"}}],
    "readinessProbe": {"httpGet": {"path": "/ready"}},
    "nodeSelector": {"disk": "ssd"},
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
    "labels": {"team": "fraud"},
    "annotations": {"sidecar.istio.io/inject": "false"},
    "containerConcurrency": 4,
    "timeout": 30,
    "imagePullSecrets": ["registry"],
    "logger": {"url": "http://sink.example/", "mode": "request"},
    "batcher": {"maxBatchSize": 16},
    "sharedMemory": "1Gi",
}


def test_predictor_settings_render_where_kserve_reads_them(crd_schemas: CrdSchemas) -> None:
    isvc = _isvc(_model(deploymentMode="knative", predictor=SETTINGS), "knative")
    predictor = isvc["spec"]["predictor"]
    container = predictor["model"]
    assert container["args"] == ["--workers=2"]
    assert container["env"] == [
        {"name": "LOG_LEVEL", "value": "debug"},
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token", "optional": False}},
        },
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    assert container["envFrom"] == [{"configMapRef": {"name": "opts"}, "prefix": "OPT_"}]
    # A probe without a port probes the runtime's HTTP port.
    assert container["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}}
    # A claim is read-only unless the stack says otherwise; shared memory is a memory-backed emptyDir.
    assert container["volumeMounts"] == [
        {"name": "cache", "mountPath": "/cache", "readOnly": True},
        {"name": "devshm", "mountPath": "/dev/shm"},
    ]
    assert predictor["volumes"] == [
        {"name": "cache", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}},
        {"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
    ]
    assert (predictor["nodeSelector"], predictor["tolerations"]) == (
        {"disk": "ssd"},
        [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
    )
    assert predictor["labels"]["team"] == "fraud"
    assert predictor["labels"]["modelplane.dev/model"] == "fraud"
    assert predictor["annotations"] == {"sidecar.istio.io/inject": "false"}
    assert (predictor["containerConcurrency"], predictor["timeout"]) == (4, 30)
    assert predictor["imagePullSecrets"] == [{"name": "registry"}]
    assert predictor["logger"] == {"mode": "request", "url": "http://sink.example/"}
    assert predictor["batcher"] == {"maxBatchSize": 16}
    assert crd_schemas.validate(isvc) == []


def test_a_standard_mode_deployment_strategy_renders_as_apps_v1_spells_it(crd_schemas: CrdSchemas) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "0%"}}
    isvc = _isvc(_model(predictor={"deploymentStrategy": strategy}))
    assert isvc["spec"]["predictor"]["deploymentStrategy"] == strategy
    assert crd_schemas.validate(isvc) == []


@pytest.mark.parametrize(
    ("settings", "flags"),
    [
        ({}, set()),
        ({"nodeSelector": {"disk": "ssd"}}, {"kubernetes.podspec-nodeselector"}),
        ({"tolerations": [{"operator": "Exists"}]}, {"kubernetes.podspec-tolerations"}),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {
                                "weight": 1,
                                "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
                            }
                        ]
                    }
                }
            },
            {"kubernetes.podspec-affinity"},
        ),
        ({"priorityClassName": "high"}, {"kubernetes.podspec-priorityclassname"}),
        ({"env": [{"name": "POD_IP", "fieldRef": "status.podIP"}]}, {"kubernetes.podspec-fieldref"}),
        (
            {"volumes": [{"name": "c", "mountPath": "/c", "persistentVolumeClaim": {"claimName": "c"}}]},
            {"kubernetes.podspec-persistent-volume-claim"},
        ),
        (
            {
                "volumes": [
                    {
                        "name": "c",
                        "mountPath": "/c",
                        "persistentVolumeClaim": {"claimName": "c", "readOnly": False},
                    }
                ]
            },
            {"kubernetes.podspec-persistent-volume-claim", "kubernetes.podspec-persistent-volume-write"},
        ),
        # ConfigMaps, Secrets and emptyDirs need no flag (knative serving pkg/apis/serving/k8s_validation.go).
        ({"volumes": [{"name": "c", "mountPath": "/c", "configMap": {"name": "c"}}]}, set()),
    ],
)
def test_knative_features_are_the_flags_knative_needs_for_the_settings(
    settings: dict[str, Any], flags: set[str]
) -> None:
    # knative serving pkg/apis/config/features.go: each of these flags is Disabled by default and
    # the webhook refuses the pod-spec field while it is.
    assert knative_features(ComponentSettings.model_validate(settings)) == flags


def test_the_stack_turns_on_exactly_the_knative_flags_its_knative_models_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data: dict[str, Any] = yaml.safe_load((STACKS / "dev.yaml").read_text(encoding="utf-8"))
    data = copy.deepcopy(data) | {"graphs": []}
    data["models"][0]["predictor"] = {"tolerations": [{"operator": "Exists"}], "priorityClassName": "high"}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    features = knative_serving(load_stack(tmp_path / "s.yaml"))["spec"]["config"]["features"]
    assert {k: features[k] for k in sorted(features) if k.startswith("kubernetes.podspec")} == {
        "kubernetes.podspec-priorityclassname": "enabled",
        # Every Knative stack's: the predictor's restricted pod securityContext needs it.
        "kubernetes.podspec-securitycontext": "enabled",
        "kubernetes.podspec-tolerations": "enabled",
    }


def test_a_standard_mode_model_needs_no_knative_flag() -> None:
    model = _model(deploymentMode="standard", predictor={"nodeSelector": {"disk": "ssd"}})
    assert model_part.knative_features(model, "standard") == set()
    assert model_part.knative_features(model, "knative") == {"kubernetes.podspec-nodeselector"}


def test_knative_serves_one_port() -> None:
    settings = ComponentSettings.model_validate(
        {"ports": [{"containerPort": 8080}, {"containerPort": 9000, "name": "h2c"}]}
    )
    (problem,) = mode_problems(settings, "knative", path=("predictor",))
    assert (problem.path, problem.value) == (("predictor", "ports"), 2)
    assert problem.message == (
        "Knative serves exactly one port per revision (knative serving pkg/apis/serving/"
        "k8s_validation.go validateContainersPorts); keep one, or use deploymentMode standard"
    )
    assert mode_problems(settings, "standard", path=("predictor",)) == []


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("HF_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("OPENAI_API_KEY", True),
        ("DB_PASSWORD", True),
        ("api-key", True),
        # Words that merely contain one of the credential words are not credentials.
        ("MAX_TOKENS", False),
        ("TOKENIZER_PATH", False),
        ("SECRETARY", False),
        ("KEY_COLUMN", False),
    ],
)
def test_a_credential_is_recognised_by_its_name(name: str, credential: bool) -> None:
    if credential:
        with pytest.raises(ValidationError, match="names a credential"):
            EnvVar.model_validate({"name": name, "value": "x"})
    else:
        assert EnvVar.model_validate({"name": name, "value": "x"}).manifest() == {"name": name, "value": "x"}


def test_a_credential_by_reference_is_accepted_under_any_name() -> None:
    var = EnvVar.model_validate({"name": "HF_TOKEN", "secretKeyRef": {"name": "hf", "key": "token"}})
    assert var.manifest()["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token", "optional": False}}


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        (
            {"tolerations": [{"operator": "Exists", "value": "x", "key": "k"}]},
            "operator Exists takes no value; remove it",
        ),
        ({"tolerations": [{"value": "x"}]}, "a toleration without key must use operator Exists"),
        (
            {"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 30}]},
            "is only for effect NoExecute",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In"}]}]
                        }
                    }
                }
            },
            "operator In needs at least one value",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "gpus", "operator": "Gt", "values": ["a"]}]}
                            ]
                        }
                    }
                }
            },
            "operator Gt takes exactly one integer value",
        ),
    ],
)
def test_placement_is_refused_where_the_api_server_would_refuse_it(
    placement: dict[str, Any], message: str
) -> None:
    # k8s.io/kubernetes pkg/apis/core/validation: validateTolerations, ValidateNodeSelectorRequirement.
    with pytest.raises(ValidationError, match=message):
        PlacementArgs.model_validate(placement)


def test_a_transformer_beside_a_keda_predictor_scales_through_keda_too(crd_schemas: CrdSchemas) -> None:
    # Under the KEDA autoscaler class KServe builds every component's ScaledObject triggers from
    # its autoScaling metrics (v0.20.0 reconcilers/keda/keda_reconciler.go:81-86); a transformer
    # without them got a ScaledObject with no trigger, which never scales.
    isvc = _isvc(
        _model(
            runtime="triton",
            format={"name": "onnx", "version": "1"},
            scaling={"metric": "queue-depth", "target": 8},
            transformer={"image": "ghcr.io/example/tok:1.0.0"},
        )
    )
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    assert isvc["spec"]["transformer"]["autoScaling"] == {
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    }
    assert crd_schemas.validate(isvc) == []


def test_a_transformer_scales_on_its_own_knobs() -> None:
    isvc = _isvc(
        _model(
            deploymentMode="knative",
            scaling={"minReplicas": 0, "maxReplicas": 4},
            transformer={
                "image": "ghcr.io/example/tok:1.0.0",
                "scaling": {"maxReplicas": 8, "metric": "rps"},
            },
        ),
        "knative",
    )
    transformer = isvc["spec"]["transformer"]
    assert (transformer["minReplicas"], transformer["maxReplicas"]) == (0, 8)
    assert (transformer["scaleMetric"], transformer["scaleTarget"]) == ("rps", 100)


def test_a_collocated_transformer_is_a_second_container_of_the_predictor(crd_schemas: CrdSchemas) -> None:
    isvc = _isvc(_model(transformer={"image": "ghcr.io/example/tok:1.0.0", "collocated": True, "port": 8000}))
    assert "transformer" not in isvc["spec"]
    containers = isvc["spec"]["predictor"]["containers"]
    assert [c["name"] for c in containers] == ["transformer-container"]
    assert containers[0]["ports"] == [{"containerPort": 8000, "name": "http1", "protocol": "TCP"}]
    assert crd_schemas.validate(isvc) == []


def test_placement_of_a_model_and_its_transformer_are_their_own() -> None:
    isvc = _isvc(
        _model(
            predictor={"nodeSelector": {"pool": "cpu-large"}},
            transformer={"image": "ghcr.io/example/tok:1.0.0", "nodeSelector": {"pool": "cpu-small"}},
        )
    )
    assert isvc["spec"]["predictor"]["nodeSelector"] == {"pool": "cpu-large"}
    assert isvc["spec"]["transformer"]["nodeSelector"] == {"pool": "cpu-small"}


def test_the_settings_render_deterministically() -> None:
    first = _isvc(_model(deploymentMode="knative", predictor=SETTINGS), "knative")
    again = _isvc(_model(deploymentMode="knative", predictor=copy.deepcopy(SETTINGS)), "knative")
    assert yaml.safe_dump(first) == yaml.safe_dump(again)

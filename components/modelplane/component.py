"""A transformer or an explainer beside a model: its own image, size, scaling and placement.

KServe runs each as its own component of the InferenceService (or, a collocated transformer,
as a second container of the predictor's pod). It scales on its own knobs but under the
InferenceService's one autoscaler class: in Standard mode a transformer beside a KEDA-scaled
predictor must scale through KEDA too, or KServe gives it a ScaledObject with no trigger
(``reconcilers/keda/keda_reconciler.go``). ``scaling_fields`` compiles a component's scaling
for the class its InferenceService runs under; ``refusal`` says what cannot be expressed.
A transformer in front of a ModelMesh predictor runs as a Knative Service
(``components/transformer.go:169-175``), so it scales as one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.kube import restricted_pod_security_context, restricted_security_context
from modelplane.overrides import ComponentSettings
from modelplane.storage import uri_problem
from modelplane.types import FieldPath, ImageRef, Quantity, parse_quantity

ComponentMetric = Literal["concurrency", "rps", "cpu", "memory"]

TRANSFORMER_CONTAINER = "transformer-container"
"""The container name KServe recognises as a collocated transformer (pkg/constants TransformerContainerName)."""

DEFAULT_COMPONENT_TARGETS: dict[str, int] = {"concurrency": 10, "rps": 100, "cpu": 80, "memory": 80}

HTTP_PORT_FLAG = "--http_port"
"""KServe's model-server flag for the HTTP port (kserve 0.20.0 kserve/model_server.py:53; the
controller's constants.ArgumentHttpPort)."""

KSERVE_DEFAULT_HTTP_PORT = 8080
"""The port KServe appends to a custom transformer's or explainer's arguments unless they name
``--http_port`` (pkg/apis/serving/v1beta1/transformer_custom.go:105-110, explainer_custom.go:86-89;
constants.InferenceServiceDefaultHttpPort)."""


class ComponentScaling(StrictModel):
    """How a transformer or explainer scales; unset fields follow the predictor."""

    min_replicas: int | None = Field(
        default=None, ge=0, le=1000, description="Fewest replicas. Default: the predictor's."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=1000, description="Most replicas. Default: the predictor's."
    )
    metric: ComponentMetric | None = Field(
        default=None,
        description="What it scales on. Default: concurrency in Knative mode, cpu in Standard mode.",
    )
    target: int | None = Field(
        default=None, ge=1, description="Target per replica (percent for cpu and memory)."
    )


class ArtExplainer(StrictModel):
    """KServe's built-in ART explainer (adversarial robustness), from the pinned KServe release."""

    type: Literal["SquareAttack"] = Field(description="The attack ART runs (v0.20.0 knows SquareAttack).")
    config: dict[str, str] = Field(
        default_factory=dict, description='Attack settings, e.g. `nb_classes: "10"`.'
    )


class ComponentArgs(ComponentSettings):
    """A transformer or explainer: your image (or a built-in explainer), hardened and sized."""

    image: ImageRef | None = Field(default=None, description="Container image, pinned by tag or digest.")
    cpu: Quantity = Field(default="250m", description="CPU request. Default: 250m.")
    memory: Quantity = Field(default="512Mi", description="Memory request. Default: 512Mi.")
    cpu_limit: Quantity | None = Field(default=None, description="CPU limit. Default: twice the request.")
    memory_limit: Quantity | None = Field(default=None, description="Memory limit. Default: the request.")
    port: int = Field(default=8080, ge=1024, le=65535, description="HTTP port it listens on. Default: 8080.")
    storage_uri: str | None = Field(
        default=None,
        description="Files the component needs (a tokenizer, feature definitions), downloaded to /mnt/models "
        "before it starts by KServe's storage initializer. Default: none.",
    )
    scaling: ComponentScaling = Field(
        default_factory=ComponentScaling, description="Its own replica bounds and autoscaling."
    )

    @model_validator(mode="after")
    def _limits(self) -> ComponentArgs:
        problems: list[Problem] = []
        for i, arg in enumerate(self.args):
            # KServe's own test for a flag is a prefix match (pkg/utils/collections.go:48-55).
            if not arg.startswith(HTTP_PORT_FLAG):
                continue
            value = (
                arg.partition("=")[2] if "=" in arg else (self.args[i + 1] if i + 1 < len(self.args) else "")
            )
            if value != str(self.port):
                problems.append(
                    Problem(
                        ("args",),
                        f"sets {HTTP_PORT_FLAG}; set port instead, which also names the probes' port",
                        arg,
                    )
                )
        if self.storage_uri is not None and (why := uri_problem(self.storage_uri)) is not None:
            problems.append(Problem(("storageUri",), why, None if "credentials" in why else self.storage_uri))
        for request, limit in (("cpu", "cpuLimit"), ("memory", "memoryLimit")):
            bound = getattr(self, f"{request}_limit")
            if bound is not None and parse_quantity(bound) < parse_quantity(getattr(self, request)):
                problems.append(
                    Problem((limit,), f"is below the {request} request {getattr(self, request)}", bound)
                )
        scaling = self.scaling
        if (
            scaling.min_replicas is not None
            and scaling.max_replicas is not None
            and scaling.min_replicas > scaling.max_replicas
        ):
            problems.append(
                Problem(
                    ("scaling", "minReplicas"),
                    f"is greater than maxReplicas {scaling.max_replicas}",
                    scaling.min_replicas,
                )
            )
        if problems:
            raise ProblemError(problems)
        return self

    def resources(self) -> dict[str, dict[str, str]]:
        """Requests and limits of the container."""
        cpu_limit = self.cpu_limit or format(parse_quantity(self.cpu) * 2, "f").rstrip("0").rstrip(".")
        return {
            "limits": {"cpu": cpu_limit, "memory": self.memory_limit or self.memory},
            "requests": {"cpu": self.cpu, "memory": self.memory},
        }


class TransformerArgs(ComponentArgs):
    """Pre- and post-processing in front of the predictor."""

    collocated: bool = Field(
        default=False,
        description="Run in the predictor's pod as a second container (KServe's collocation) instead of its own "
        "component. Default: false.",
    )

    @model_validator(mode="after")
    def _image(self) -> TransformerArgs:
        if self.image is None:
            raise ProblemError([Problem(("image",), "a transformer needs image, the container to run")])
        if self.collocated and self.scaling.model_fields_set:
            raise ProblemError(
                [
                    Problem(
                        ("scaling",),
                        "a collocated transformer runs in the predictor's pods and scales with them; remove scaling",
                    )
                ]
            )
        return self


class ExplainerArgs(ComponentArgs):
    """Explanations beside the predictor: your image, or KServe's ART explainer."""

    art: ArtExplainer | None = Field(default=None, description="KServe's ART explainer instead of an image.")

    @model_validator(mode="after")
    def _image_or_art(self) -> ExplainerArgs:
        if (self.image is None) == (self.art is None):
            raise ProblemError(
                [Problem(("image",), "give image (your explainer) or art (KServe's), not both or neither")]
            )
        if self.art is not None and self.port != KSERVE_DEFAULT_HTTP_PORT:
            # KServe starts the ART server with --http_port 8080 (v1beta1 explainer_art.go GetContainer).
            raise ProblemError(
                [Problem(("port",), "KServe's ART explainer listens on 8080; remove port", self.port)]
            )
        if self.port != KSERVE_DEFAULT_HTTP_PORT:
            raise ProblemError(
                [
                    Problem(
                        ("port",),
                        f"KServe appends {HTTP_PORT_FLAG} {KSERVE_DEFAULT_HTTP_PORT} to a custom explainer's arguments "
                        "(explainer_custom.go), so its server listens on 8080 whatever the port; remove port",
                        self.port,
                    )
                ]
            )
        return self


def component_mode(model_mode: str) -> str:
    """The mode a model's transformer or explainer runs in: ModelMesh's runs as a Knative Service."""
    return "knative" if model_mode == "modelmesh" else model_mode


def refusal(component: ComponentArgs, mode: str, *, keda: bool) -> tuple[FieldPath, str, object] | None:
    """Why a component's scaling cannot run in its mode, as (field, message, value); None when it can.

    ``keda`` says the InferenceService runs under KEDA (its predictor scales on a Prometheus metric).
    """
    scaling = component.scaling
    metric = scaling.metric
    mode = component_mode(mode)
    if mode == "knative":
        if metric in ("cpu", "memory"):
            return (
                ("scaling", "metric"),
                f"metric {metric!r} cannot be expressed in knative mode (Knative's pod autoscaler scales on "
                "concurrency or rps); use one of those, or deploymentMode standard",
                metric,
            )
        return None
    if metric in ("concurrency", "rps"):
        how = "KEDA (the predictor scales on a Prometheus metric)" if keda else "an HPA"
        return (
            ("scaling", "metric"),
            f"metric {metric!r} cannot be expressed for a component in standard mode, which scales through {how} "
            "on cpu or memory; use cpu or memory, or deploymentMode knative",
            metric,
        )
    if scaling.min_replicas == 0:
        return (
            ("scaling", "minReplicas"),
            "minReplicas 0 cannot be expressed for a component in standard mode (its cpu or memory scaler keeps at "
            "least 1 replica); use 1 or more, or deploymentMode knative",
            0,
        )
    if scaling.target is not None and scaling.target > 100:
        return (
            ("scaling", "target"),
            "is a utilisation percentage in standard mode; use 1-100",
            scaling.target,
        )
    return None


def scaling_fields(
    component: ComponentArgs, mode: str, *, keda: bool, predictor: dict[str, Any]
) -> dict[str, Any]:
    """The component's scaling fields for its mode and its InferenceService's autoscaler class.

    ``predictor`` holds the predictor's compiled fields, whose replica bounds are the default.
    The scaling must already have passed ``refusal``.
    """
    scaling = component.scaling
    mode = component_mode(mode)
    fields: dict[str, Any] = {}
    low = scaling.min_replicas if scaling.min_replicas is not None else predictor.get("minReplicas")
    high = scaling.max_replicas if scaling.max_replicas is not None else predictor.get("maxReplicas")
    if mode == "standard" and low == 0:
        low = 1  # a component's cpu/memory scaler cannot hold 0 replicas (refusal() covers an explicit 0)
    if low is not None:
        fields["minReplicas"] = low
    if high is not None:
        fields["maxReplicas"] = max(high, low or 0)
    if mode == "knative":
        if scaling.metric is not None or scaling.target is not None:
            metric = scaling.metric or "concurrency"
            fields["scaleMetric"] = metric
            fields["scaleTarget"] = scaling.target or DEFAULT_COMPONENT_TARGETS[metric]
        return fields
    metric = scaling.metric or "cpu"
    target = scaling.target or DEFAULT_COMPONENT_TARGETS[metric]
    if keda:
        # KServe's webhook accepts Resource metrics under KEDA with a Utilization target
        # (inference_service_validation.go:567-600, validateScalingKedaCompExtension).
        fields["autoScaling"] = {
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": metric,
                        "target": {"type": "Utilization", "averageUtilization": target},
                    },
                }
            ]
        }
        return fields
    if scaling.metric is not None or scaling.target is not None:
        # Without them KServe's HPA scales the component on cpu at 80% (pkg/constants DefaultCPUUtilization).
        fields |= {"scaleMetric": metric, "scaleMetricType": "Utilization", "scaleTarget": target}
    return fields


def container(
    component: ComponentArgs, *, name: str = "kserve-container", http_port_flag: bool = False
) -> dict[str, Any]:
    """The component's hardened container: image, port, probes on that port, resources, settings.

    ``http_port_flag`` passes a port other than 8080 as ``--http_port``: KServe appends
    ``--http_port 8080`` to a custom transformer's arguments unless they name the flag
    (``KSERVE_DEFAULT_HTTP_PORT``), so without it the server listens on 8080 whatever the
    container port and probes say. Arguments that already name the port (``_limits`` refuses
    any other value) are left as they are.
    """
    probe = {
        "tcpSocket": {"port": component.port},
        "periodSeconds": 10,
        "failureThreshold": 3,
        "timeoutSeconds": 5,
    }
    result: dict[str, Any] = {
        "name": name,
        "image": component.image,
        "args": list(component.args),
        "ports": [{"containerPort": component.port, "name": "http1", "protocol": "TCP"}],
        "resources": component.resources(),
        "securityContext": restricted_security_context(run_as_user=1000, read_only_root=True),
        "readinessProbe": probe,
        "livenessProbe": probe | {"periodSeconds": 30},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    named = any(arg.startswith(HTTP_PORT_FLAG) for arg in component.args)
    if http_port_flag and component.port != KSERVE_DEFAULT_HTTP_PORT and not named:
        result["args"].append(f"{HTTP_PORT_FLAG}={component.port}")
    own = component.container_fields(component.port)
    own.pop("args", None)
    if component.storage_uri is not None:
        # KServe downloads a custom container's files when it carries STORAGE_URI
        # (pkg/constants CustomSpecStorageUriEnvVarKey; the storage-initializer injector).
        own["env"] = [*own.get("env", []), {"name": "STORAGE_URI", "value": component.storage_uri}]
    mounts = own.pop("volumeMounts", [])
    result |= own
    result["volumeMounts"] = result["volumeMounts"] + mounts
    return result


def pod_volumes(component: ComponentArgs) -> list[dict[str, Any]]:
    """The volumes of the component's pod: its writable /tmp and its own."""
    return [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}, *component.pod_volumes()]


def spec(
    component: ComponentArgs,
    mode: str,
    *,
    keda: bool,
    predictor: dict[str, Any],
    kserve_version: str,
) -> dict[str, Any]:
    """The component's InferenceService spec (``spec.transformer`` or ``spec.explainer``)."""
    pod: dict[str, Any] = {
        **component.pod_fields(),
        **scaling_fields(component, mode, keda=keda, predictor=predictor),
        "securityContext": restricted_pod_security_context(),
        "volumes": pod_volumes(component),
    }
    art = component.art if isinstance(component, ExplainerArgs) else None
    if art is not None:
        built = container(component)
        built.pop("name")
        built.pop("image")
        built.pop("ports")
        # KServe builds the ART container from the image in inferenceservice-config and this
        # runtimeVersion (v1beta1 explainer_art.go GetContainer); pinning it pins the image.
        art_spec: dict[str, Any] = {"type": art.type, "runtimeVersion": kserve_version, **built}
        if art.config:
            art_spec["config"] = dict(sorted(art.config.items()))
        return {"art": art_spec, **pod}
    custom_transformer = isinstance(component, TransformerArgs)
    return {"containers": [container(component, http_port_flag=custom_transformer)], **pod}

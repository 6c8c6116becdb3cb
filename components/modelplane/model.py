"""One served model, compiled into an InferenceService correct for its deployment mode.

The stack says what a model is (format, storage, version, resources, scaling, runtime);
``objects()`` turns it into the InferenceService KServe expects in that mode (the mode
annotation, scaling fields as that mode accepts them, GPU limits and pool placement) and
the ServiceAccount that carries its storage credentials by reference.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.inference import SampleRequest
from modelplane.kube import (
    KSERVE_MODE_NAMES,
    LABEL_MODEL,
    LABEL_RUNTIME,
    LABEL_TENANT,
    LABEL_VERSION,
    Obj,
    dns_name,
    labels,
    reserved_label,
    restricted_pod_security_context,
    restricted_security_context,
)
from modelplane.rollout.policy import RolloutOverride
from modelplane.runtimes import RuntimeSpec
from modelplane.scaling import AUTOSCALER_CLASS, PROMETHEUS_ADDRESS, ScalingArgs, predictor_scaling
from modelplane.types import (
    DeploymentMode,
    DnsLabel,
    DnsSubdomain,
    ImageRef,
    LabelKey,
    LabelValue,
    ModelName,
    Quantity,
    parse_quantity,
)

STORAGE_SCHEMES: tuple[str, ...] = ("s3", "gs", "pvc", "hf", "oci", "https", "hdfs", "webhdfs")
_URI = re.compile(r"^(?P<scheme>[a-z0-9]+)://(?P<rest>\S+)$")


class ModelFormat(StrictModel):
    """The format a model is stored in."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        description="Format name as KServe spells it (`onnx`, `sklearn`, ...).",
    )
    version: str | None = Field(default=None, pattern=r"^[0-9][0-9.]*$", description="Format major version.")


class StorageArgs(StrictModel):
    """Where the model's files live and which credentials read them (by reference only)."""

    uri: str = Field(description=f"Model location; schemes: {', '.join(STORAGE_SCHEMES)}.")
    secret_name: DnsSubdomain | None = Field(
        default=None,
        description="Secret with storage credentials (KServe's annotations); modelplane references it by name.",
    )
    service_account_name: DnsSubdomain | None = Field(
        default=None, description="Existing ServiceAccount that carries storage credentials."
    )

    @model_validator(mode="after")
    def _uri_and_credentials(self) -> StorageArgs:
        problems: list[Problem] = []
        match = _URI.fullmatch(self.uri)
        if match is None or match.group("scheme") not in STORAGE_SCHEMES:
            problems.append(
                Problem(
                    ("uri",),
                    f"must be <scheme>://<path> with scheme one of {', '.join(STORAGE_SCHEMES)}",
                    self.uri,
                )
            )
        elif "@" in match.group("rest").split("/", 1)[0]:
            # The value itself is the secret here, so it is not echoed back.
            problems.append(
                Problem(("uri",), "must not embed credentials; reference a secret with secretName")
            )
        if self.secret_name and self.service_account_name:
            problems.append(
                Problem(
                    ("serviceAccountName",),
                    f"set secretName ({self.secret_name!r}) or serviceAccountName, not both",
                    self.service_account_name,
                )
            )
        if problems:
            raise ProblemError(problems)
        return self


class ResourceArgs(StrictModel):
    """What one replica of the model needs."""

    cpu: Quantity | None = Field(default=None, description="CPU request. Default: the runtime's.")
    memory: Quantity | None = Field(default=None, description="Memory request. Default: the runtime's.")
    cpu_limit: Quantity | None = Field(
        default=None, description="CPU limit. Default: the runtime's (or cpu if larger)."
    )
    memory_limit: Quantity | None = Field(
        default=None, description="Memory limit. Default: the runtime's (or memory if larger)."
    )
    gpu: int = Field(default=0, ge=0, le=16, description="GPUs (or GPU shares / MIG slices) per replica.")
    mig_profile: str | None = Field(
        default=None, description="MIG profile to request on a mixed-strategy MIG pool."
    )
    exclusive_gpu_memory: bool = Field(
        default=False,
        description="The model needs GPU memory no other workload can touch (refused on time-sliced pools).",
    )
    pool: DnsLabel | None = Field(
        default=None, description="GPU pool the model runs on; required when gpu > 0."
    )


class ProtocolArgs(StrictModel):
    """The inference protocol a model speaks."""

    version: Literal["v1", "v2"] = Field(
        default="v2", description="KServe V1 or the Open Inference Protocol (V2)."
    )
    transport: Literal["http", "grpc"] = Field(default="http", description="HTTP/REST or gRPC.")

    @property
    def kserve_value(self) -> str:
        """KServe's ``protocolVersion`` value."""
        return f"grpc-{self.version}" if self.transport == "grpc" else self.version


HTTP_PORT_FLAG = "--http_port"
"""KServe's model-server flag for the HTTP port (kserve 0.20.0 kserve/model_server.py:53; the
controller's constants.ArgumentHttpPort)."""

KSERVE_DEFAULT_HTTP_PORT = 8080
"""The port KServe appends to a custom explainer's arguments whatever it listens on
(pkg/apis/serving/v1beta1/explainer_custom.go:86-89, constants.InferenceServiceDefaultHttpPort)."""


class SidecarComponentArgs(StrictModel):
    """A transformer or explainer: your image, hardened and sized like the predictor."""

    image: ImageRef = Field(description="Container image, pinned by tag or digest.")
    args: list[str] = Field(default_factory=list, description="Container arguments.")
    cpu: Quantity = Field(default="250m", description="CPU request (and limit x2).")
    memory: Quantity = Field(default="512Mi", description="Memory request and limit.")
    port: int = Field(
        default=KSERVE_DEFAULT_HTTP_PORT,
        ge=1024,
        le=65535,
        description="HTTP port the component listens on; passed as `--http_port` (KServe's model-server flag). "
        "An explainer must keep 8080, which KServe appends to its arguments.",
    )

    @model_validator(mode="after")
    def _port_by_field(self) -> SidecarComponentArgs:
        for arg in self.args:
            # KServe's own test for a flag is a prefix match (pkg/utils/collections.go:48-55).
            if arg.startswith(HTTP_PORT_FLAG):
                raise ProblemError(
                    [
                        Problem(
                            ("args",),
                            f"sets {HTTP_PORT_FLAG}; set port instead, which also names the probes' port",
                            arg,
                        )
                    ]
                )
        return self


class ModelArgs(StrictModel):
    """One served model."""

    name: ModelName = Field(description="Model name; the InferenceService name.")
    tenant: DnsLabel = Field(description="Owning tenant; the model lives in its namespace.")
    runtime: str = Field(description="Runtime catalog name (`triton`, `mlserver`, `sklearn`, ..., `custom`).")
    format: ModelFormat = Field(description="Model format (and version).")
    storage: StorageArgs = Field(description="Where the model is stored.")
    version: LabelValue = Field(description="Model version label; a change starts a rollout.")
    image: ImageRef | None = Field(default=None, description="Server image, for runtime `custom` only.")
    deployment_mode: DeploymentMode | None = Field(
        default=None,
        description="knative | standard | modelmesh. Default: controlPlane.defaultDeploymentMode.",
    )
    resources: ResourceArgs = Field(default_factory=ResourceArgs, description="Per-replica resources.")
    scaling: ScalingArgs = Field(
        default_factory=ScalingArgs, description="Replica bounds and autoscaling intent."
    )
    protocol: ProtocolArgs = Field(default_factory=ProtocolArgs, description="Inference protocol.")
    transformer: SidecarComponentArgs | None = Field(
        default=None, description="Pre/post-processing in front."
    )
    explainer: SidecarComponentArgs | None = Field(
        default=None, description="Explanations beside the predictor."
    )
    rollout: RolloutOverride | None = Field(
        default=None, description="Changes to the stack's rollout policy."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Extra labels on the model's objects. Keys modelplane, KServe or Knative set themselves "
        "(`modelplane.dev/*`, `app.kubernetes.io/{managed-by,part-of,component}`, `serving.kserve.io/*`, "
        "`serving.knative.dev/*`, `app`, `component`) are refused.",
    )
    sample_request: SampleRequest | None = Field(
        default=None,
        description="A V2 inference request (`inputs`, optional `outputs`) that `modelplane probe` and the "
        "rollout policy's `probe` send to the model. Default: none (probes check health, readiness and "
        "metadata only).",
    )

    @model_validator(mode="after")
    def _shape(self) -> ModelArgs:
        problems: list[Problem] = []
        scaling, resources = self.scaling, self.resources
        if scaling.min_replicas > scaling.max_replicas:
            problems.append(
                Problem(
                    ("scaling", "minReplicas"),
                    f"is greater than scaling.maxReplicas {scaling.max_replicas}; "
                    "lower minReplicas or raise maxReplicas",
                    scaling.min_replicas,
                )
            )
        if self.image is not None and self.runtime != "custom":
            problems.append(
                Problem(
                    ("image",),
                    f"is only for runtime 'custom' (runtime is {self.runtime!r}); "
                    "remove image, or set runtime: custom",
                    self.image,
                )
            )
        if self.runtime == "custom" and self.image is None:
            problems.append(Problem(("image",), "runtime 'custom' needs image, the model server to run"))
        if resources.gpu and resources.pool is None:
            problems.append(
                Problem(
                    ("resources", "pool"),
                    f"resources.gpu is {resources.gpu}, so the model needs a GPU pool; name one of gpuPools here",
                )
            )
        if resources.pool is not None and not resources.gpu:
            problems.append(
                Problem(
                    ("resources", "pool"),
                    "names a GPU pool but resources.gpu is 0 (a CPU model); set resources.gpu or remove pool",
                    resources.pool,
                )
            )
        for key in self.labels:
            whose = reserved_label(key)
            if whose is not None:
                problems.append(
                    Problem(("labels", key), f"is a reserved label key ({whose}); choose another key", key)
                )
        if self.explainer is not None and self.explainer.port != KSERVE_DEFAULT_HTTP_PORT:
            problems.append(
                Problem(
                    ("explainer", "port"),
                    f"KServe appends {HTTP_PORT_FLAG} {KSERVE_DEFAULT_HTTP_PORT} to a custom explainer's arguments "
                    "(explainer_custom.go), so its server listens on 8080 whatever the port; remove port",
                    self.explainer.port,
                )
            )
        if problems:
            raise ProblemError(problems)
        return self


# --- what the deployment mode's own code refuses --------------------------------------------------

KNATIVE_RESERVED_PORTS: tuple[int, ...] = (8008, 8012, 8013, 8022, 9090, 9091)
"""Ports Knative keeps for its queue-proxy and profiling and refuses as a container port (knative
serving v0.48.1 = knative-v1.21.1 pkg/apis/serving/k8s_validation.go:61-67, 794-803;
pkg/networking/constants.go:24-42; knative.dev/pkg observability/runtime/pprof.go:34)."""

MODELMESH_STORAGE_SCHEMES: tuple[str, ...] = ("pvc", "s3", "gs", "https")
"""The storage URI schemes ModelMesh Serving v0.12.0 resolves for an InferenceService (its
``http`` too, which modelplane does not accept); others fail with "unsupported storageUri scheme"
(pkg/predictor_source/inferenceservice_registry.go:162-195)."""


def deployment_problems(model: ModelArgs, *, mode: DeploymentMode) -> list[Problem]:
    """What the model's deployment mode would refuse of it, at the fields concerned."""
    problems: list[Problem] = []
    if mode == "knative":
        for part in ("transformer", "explainer"):
            component: SidecarComponentArgs | None = getattr(model, part)
            if component is not None and component.port in KNATIVE_RESERVED_PORTS:
                problems.append(
                    Problem(
                        (part, "port"),
                        f"is reserved by Knative (its queue-proxy and profiling use "
                        f"{', '.join(map(str, KNATIVE_RESERVED_PORTS))}), which refuses it as a container port "
                        "in knative mode; choose another port",
                        component.port,
                    )
                )
    if mode == "modelmesh":
        scheme = model.storage.uri.split("://", 1)[0]
        if scheme not in MODELMESH_STORAGE_SCHEMES:
            problems.append(
                Problem(
                    ("storage", "uri"),
                    f"ModelMesh cannot read {scheme}:// storage (it reads "
                    f"{', '.join(s + '://' for s in MODELMESH_STORAGE_SCHEMES)}); copy the model there, or use "
                    "deploymentMode knative or standard",
                    model.storage.uri,
                )
            )
    return problems


# --- names KServe derives from a model's ------------------------------------------------------

DNS_LABEL_MAX = 63
"""The most characters of a DNS label, a label value and a Service name."""

RAW_APP_LABEL_PREFIX = "isvc."
"""KServe labels a Standard-mode component's pods ``app: isvc.<component>`` (pkg/constants/
constants.go:755-757, reconcilers/deployment/deployment_reconciler.go:146), a label value."""

MIN_VERSION_NAME = 8
"""The shortest name ``rollout.version.version_name`` gives a version that collides: a letter, a
dash and six digest characters."""

KNATIVE_CANARY_TAG = "prev-"
"""During a Knative canary KServe tags the previous revision ``prev`` (reconcilers/knative/
ksvc_reconciler.go:146-151), and Knative names that tag's Service and host ``prev-<service>``
(knative.dev/networking pkg/config/config.go:60 DefaultTagTemplate; serving
pkg/reconciler/route/resources/service.go:45-57)."""


def standard_component_limit(namespace: str) -> int:
    """The longest name KServe can give a Standard-mode component (Deployment, Service, HPA) in ``namespace``.

    Its pods carry ``app: isvc.<name>``, a label value of at most 63 characters; and its host is
    ``<name>-<namespace>.<domain>`` (the default domainTemplate, pkg/apis/serving/v1beta1/
    configmap.go:55, built by reconcilers/raw/raw_kube_reconciler.go:231), which KServe refuses
    unless every DNS label has at most 63 characters (reconcilers/ingress/domain.go:61).
    """
    return min(DNS_LABEL_MAX - len(RAW_APP_LABEL_PREFIX), DNS_LABEL_MAX - 1 - len(namespace))


def derived_name_problems(
    model: ModelArgs, *, namespace: str, mode: DeploymentMode, canary: bool
) -> list[Problem]:
    """The model's name when a name KServe or Knative derives from it would be too long, at ``name``.

    Standard: ``<model>-<version>-predictor`` (with room for a version name of ``MIN_VERSION_NAME``),
    ``<model>-transformer`` and ``<model>-explainer`` within ``standard_component_limit``.
    Knative: the Knative Services ``<model>-predictor`` (``prev-<model>-predictor`` while a canary
    splits traffic), ``-transformer`` and ``-explainer`` within 63 characters, the most a
    Kubernetes Service name and a DNS label hold. ModelMesh derives none. Only the longest is
    reported.
    """
    if mode == "modelmesh":
        return []
    # (the derived name as shown, its length)
    derived: list[tuple[str, int]] = []
    if mode == "standard":
        limit = standard_component_limit(namespace)
        why = f"its pods' label app=isvc.<name> and its host <name>-{namespace}.<domain> allow {limit} characters"
        derived.append(
            (
                f"'{model.name}-<version>-predictor' ({MIN_VERSION_NAME} characters for the version)",
                len(model.name) + 1 + MIN_VERSION_NAME + len("-predictor"),
            )
        )
    else:
        limit = DNS_LABEL_MAX
        why = f"a Kubernetes Service name and a DNS label allow {limit} characters"
        predictor = f"{KNATIVE_CANARY_TAG if canary else ''}{model.name}-predictor"
        derived.append((f"'{predictor}'", len(predictor)))
    for component, present in (("transformer", model.transformer), ("explainer", model.explainer)):
        if present is not None:
            derived.append((f"'{model.name}-{component}'", len(model.name) + 1 + len(component)))
    shown, length = max(derived, key=lambda item: item[1])
    if length <= limit:
        return []
    return [
        Problem(
            ("name",),
            f"is too long for {mode} mode: KServe derives {shown} from it, {length} characters, and {why}; "
            f"use a name of at most {len(model.name) - (length - limit)} characters",
            model.name,
        )
    ]


def storage_service_account_name(secret_name: str) -> str:
    """The ServiceAccount that carries a storage secret for the models of a namespace."""
    return dns_name("storage", secret_name.replace(".", "-"))


def mode_of(model: ModelArgs, default: DeploymentMode) -> DeploymentMode:
    """The deployment mode a model runs in."""
    return model.deployment_mode or default


def runtime_object_name(model: ModelArgs, *, mesh: bool) -> str:
    """Name of the ServingRuntime/ClusterServingRuntime a model runs on."""
    if model.runtime == "custom":
        return dns_name(model.name, "runtime")
    return f"modelplane-{model.runtime}-mesh" if mesh else f"modelplane-{model.runtime}"


def _max_quantity(a: str, b: str) -> str:
    return a if parse_quantity(a) >= parse_quantity(b) else b


def container_resources(
    model: ModelArgs, runtime: RuntimeSpec, pool: GpuPoolArgs | None
) -> dict[str, dict[str, str | int]]:
    """Requests and limits of the model container: the model's, else the runtime's; GPUs as limits."""
    res = model.resources
    cpu = res.cpu or runtime.resources.cpu
    memory = res.memory or runtime.resources.memory
    cpu_limit = res.cpu_limit or _max_quantity(runtime.resources.cpu_limit, cpu)
    memory_limit = res.memory_limit or _max_quantity(runtime.resources.memory_limit, memory)
    requests: dict[str, str | int] = {"cpu": cpu, "memory": memory}
    limits: dict[str, str | int] = {"cpu": cpu_limit, "memory": memory_limit}
    if res.gpu and pool is not None:
        gpu_resource = pool.resource_name(res.mig_profile)
        limits[gpu_resource] = str(res.gpu)
        requests[gpu_resource] = str(res.gpu)
    return {"limits": dict(sorted(limits.items())), "requests": dict(sorted(requests.items()))}


def _sidecar(
    component: SidecarComponentArgs, replicas: dict[str, Any], *, http_port_flag: bool, own_hpa: bool
) -> dict[str, Any]:
    """A transformer or explainer.

    ``http_port_flag`` passes the port as ``--http_port``: KServe appends ``--http_port 8080`` to a
    custom transformer's arguments unless they name the flag (pkg/apis/serving/v1beta1/
    transformer_custom.go:105-110), so without it the server listens on 8080 whatever the
    container port and probes say. ``own_hpa`` gives the component its own HPA on CPU: the
    InferenceService's autoscaler class reaches every component (components/transformer.go:118-121),
    and KEDA builds a component's triggers from its own ``autoScaling`` only
    (reconcilers/keda/keda_reconciler.go:81-86), so a transformer beside a KEDA-scaled predictor
    would get a ScaledObject with no triggers. Its class annotation wins over the InferenceService's
    (utils.Union, later maps win) and KServe's HPA then scales on CPU at 80% (reconcilers/hpa/
    hpa_reconciler.go:105-117).
    """
    cpu_limit = format(parse_quantity(component.cpu) * 2, "f").rstrip("0").rstrip(".")
    probe = {
        "tcpSocket": {"port": component.port},
        "periodSeconds": 10,
        "failureThreshold": 3,
        "timeoutSeconds": 5,
    }
    args = list(component.args)
    if http_port_flag:
        args.append(f"{HTTP_PORT_FLAG}={component.port}")
    scaling: dict[str, Any] = {"annotations": {AUTOSCALER_CLASS: "hpa"}} if own_hpa else {}
    return {
        "containers": [
            {
                "name": "kserve-container",
                "image": component.image,
                "args": args,
                "ports": [{"containerPort": component.port, "name": "http1", "protocol": "TCP"}],
                "resources": {
                    "limits": {"cpu": cpu_limit, "memory": component.memory},
                    "requests": {"cpu": component.cpu, "memory": component.memory},
                },
                "securityContext": restricted_security_context(run_as_user=1000, read_only_root=True),
                "readinessProbe": probe,
                "livenessProbe": probe | {"periodSeconds": 30},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        "securityContext": restricted_pod_security_context(),
        **replicas,
        **scaling,
    }


def objects(
    model: ModelArgs,
    *,
    stack: str,
    namespace: str,
    mode: DeploymentMode,
    runtime: RuntimeSpec,
    pool: GpuPoolArgs | None = None,
    predictor_overrides: dict[str, Any] | None = None,
    prometheus: str = PROMETHEUS_ADDRESS,
    canary: list[dict[str, Any]] | None = None,
) -> list[Obj]:
    """The objects that serve one model: its InferenceService and, when needed, a storage ServiceAccount.

    ``predictor_overrides`` lets the rollout engine add fields (such as
    ``canaryTrafficPercent``) without this module knowing about rollouts; ``canary`` becomes
    ``spec.canary`` (Standard mode's canary predictors, compiled by ``modelplane.rollout``);
    ``prometheus`` is the address KEDA-scaled models query (from the stack's monitoring settings).
    """
    common = labels(
        stack,
        "model",
        **{LABEL_MODEL: model.name, LABEL_TENANT: model.tenant, LABEL_VERSION: model.version},
    )
    common = dict(sorted((common | dict(model.labels)).items()))
    result: list[Obj] = []
    service_account = model.storage.service_account_name
    mesh = mode == "modelmesh"
    if mesh:
        # ModelMesh pulls with its own puller from the namespace's `storage-config` secret and
        # ignores ServiceAccounts: secretName names the entry of that secret to use.
        service_account = None
    elif model.storage.secret_name:
        # One ServiceAccount per (namespace, secret), shared by every model reading with it.
        service_account = storage_service_account_name(model.storage.secret_name)
        result.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": service_account,
                    "namespace": namespace,
                    "labels": labels(stack, "model", **{LABEL_TENANT: model.tenant}),
                },
                "automountServiceAccountToken": False,
                "secrets": [{"name": model.storage.secret_name}],
            }
        )
    annotations = {"serving.kserve.io/deploymentMode": KSERVE_MODE_NAMES[mode]}
    scaling_annotations, scaling_fields = predictor_scaling(
        mode,
        model.scaling,
        runtime=model.runtime,
        namespace=namespace,
        model=model.name,
        # Standard mode names the stable predictor (rollout.compile); its pods are the ones KEDA scales.
        predictor=(predictor_overrides or {}).get("name"),
        pool=pool,
        prometheus=prometheus,
    )
    annotations |= scaling_annotations
    if mesh and model.storage.secret_name:
        annotations["serving.kserve.io/secretKey"] = model.storage.secret_name
    model_spec: dict[str, Any] = {
        "modelFormat": model.format.model_dump(exclude_none=True),
        "runtime": runtime_object_name(model, mesh=mode == "modelmesh"),
        "storageUri": model.storage.uri,
    }
    predictor: dict[str, Any] = {"model": model_spec, **scaling_fields}
    if mode != "modelmesh":
        model_spec["protocolVersion"] = model.protocol.kserve_value
        model_spec["resources"] = container_resources(model, runtime, pool)
        if pool is not None and runtime.gpu_image is not None:
            # The runtime's image is its CPU build. KServe v0.20 swaps in `<tag>-gpu` itself only
            # for `nvidia.com/gpu` and `nvidia.com/mig-*` limits (pkg/controller/v1beta1/
            # inferenceservice/utils/utils.go:373-381, pkg/utils/utils.go:58-70), not for a
            # time-sliced pool's renamed `nvidia.com/gpu.shared`; it leaves a `-gpu` tag alone.
            model_spec["image"] = runtime.gpu_image
        if model.protocol.transport == "grpc":
            # One port named h2c: Knative then speaks HTTP/2 to the container (it allows exactly
            # one port, named h2c or http1: knative serving pkg/apis/serving/k8s_validation.go
            # validateContainersPorts/validPortNames), and KServe's Standard-mode Service sends
            # its port 80 there with appProtocol kubernetes.io/h2c (pkg/controller/v1beta1/
            # inferenceservice/reconcilers/service/service_reconciler.go:66-76, 111-124).
            model_spec["ports"] = [{"containerPort": runtime.grpc_port, "name": "h2c", "protocol": "TCP"}]
        predictor["securityContext"] = restricted_pod_security_context()
        predictor["labels"] = {
            LABEL_MODEL: model.name,
            LABEL_RUNTIME: model.runtime,
            LABEL_VERSION: model.version,
        }
        if pool is not None:
            predictor["nodeSelector"] = pool.selector
            predictor["tolerations"] = pool.tolerations()
            predictor["priorityClassName"] = pool.priority_class_name
    if service_account:
        predictor["serviceAccountName"] = service_account
    if predictor_overrides:
        predictor |= predictor_overrides
    spec: dict[str, Any] = {"predictor": predictor}
    if canary:
        spec["canary"] = canary
    replicas = {k: v for k, v in scaling_fields.items() if k in ("minReplicas", "maxReplicas")}
    own_hpa = scaling_annotations.get(AUTOSCALER_CLASS) == "keda"
    if model.transformer is not None:
        spec["transformer"] = _sidecar(model.transformer, replicas, http_port_flag=True, own_hpa=own_hpa)
    if model.explainer is not None:
        spec["explainer"] = _sidecar(model.explainer, replicas, http_port_flag=False, own_hpa=own_hpa)
    result.append(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": model.name,
                "namespace": namespace,
                "labels": common,
                "annotations": dict(sorted(annotations.items())),
            },
            "spec": spec,
        }
    )
    return result

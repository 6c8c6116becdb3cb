"""One served model, compiled into an InferenceService correct for its deployment mode.

The stack says what a model is (format, storage, version, resources, scaling, runtime) and
what its components get beside that (the predictor's container and pod settings, a
transformer, an explainer, multi-node workers); ``objects()`` turns it into the
InferenceService KServe expects in that mode (the mode annotation, scaling fields as that mode
accepts them, GPU limits and pool placement, the settings where KServe reads them) and the
ServiceAccount that carries its storage credentials by reference. Whether a mode can carry a
setting is checked by ``modelplane.rules`` through ``modelplane.overrides.mode_problems``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane import component, overrides
from modelplane.base import Problem, StrictModel
from modelplane.component import TRANSFORMER_CONTAINER, ComponentArgs, ExplainerArgs, TransformerArgs
from modelplane.container import EnvVar
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
    restricted_pod_security_context,
)
from modelplane.overrides import ComponentSettings, metadata_problems
from modelplane.rollout.policy import RolloutOverride
from modelplane.runtimes import RuntimeSpec, probe_paths
from modelplane.scaling import PROMETHEUS_ADDRESS, ScalingArgs, predictor_scaling
from modelplane.storage import StorageArgs
from modelplane.types import (
    DeploymentMode,
    DnsLabel,
    FieldPath,
    ImageRef,
    LabelKey,
    LabelValue,
    ModelName,
    Quantity,
    parse_quantity,
)

__all__ = [
    "ModelArgs",
    "ModelFormat",
    "PredictorArgs",
    "ProtocolArgs",
    "ResourceArgs",
    "StorageArgs",
    "WorkerArgs",
    "container_resources",
    "mode_of",
    "objects",
    "runtime_object_name",
    "storage_service_account_name",
]

CUSTOM_FORMAT = "custom"
"""The format of a ``custom`` model that names none: its namespaced ServingRuntime serves only it."""


class ModelFormat(StrictModel):
    """The format a model is stored in."""

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_-]*$",
        description="Format name as KServe spells it (`onnx`, `sklearn`, ...).",
    )
    version: str | None = Field(default=None, pattern=r"^[0-9][0-9.]*$", description="Format major version.")


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


class SloArgs(StrictModel):
    """A model's own service-level objectives, where they differ from the stack's."""

    availability: float | None = Field(
        default=None,
        gt=50,
        lt=100,
        description="Availability objective in percent. Default: monitoring.availabilityObjective.",
    )
    latency_ms: int | None = Field(
        default=None,
        ge=1,
        le=600000,
        description="p99 latency objective in milliseconds. Default: monitoring.latencyObjectiveMs.",
    )


class WorkerArgs(StrictModel):
    """Multi-node serving: the model spread over a head pod and worker pods (KServe's ``workerSpec``)."""

    tensor_parallel_size: int = Field(
        default=1, ge=1, le=64, description="GPUs a tensor is split over. Default: 1."
    )
    pipeline_parallel_size: int = Field(
        default=1, ge=1, le=64, description="Pipeline stages (usually nodes). Default: 1."
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Environment of the worker containers (NCCL settings; secrets by reference). Default: none.",
    )

    @property
    def total_gpus(self) -> int:
        """GPUs one replica uses across its pods (tensor x pipeline)."""
        return self.tensor_parallel_size * self.pipeline_parallel_size


class PredictorArgs(ComponentSettings):
    """The model's own container and pods (KServe's predictor): what the runtime does not say."""


def _format_key(fmt: ModelFormat) -> str:
    return f"{fmt.name}:{fmt.version}" if fmt.version else fmt.name


class ModelArgs(StrictModel):
    """One served model."""

    name: ModelName = Field(description="Model name; the InferenceService name.")
    tenant: DnsLabel = Field(description="Owning tenant; the model lives in its namespace.")
    runtime: str = Field(
        description="Runtime: a catalog name (`triton`, `mlserver`, `sklearn`, ..., `custom`) or a stack "
        "`externalRuntimes` name."
    )
    format: ModelFormat | None = Field(
        default=None, description="Model format (and version). Required except for runtime `custom`."
    )
    storage: StorageArgs | None = Field(
        default=None,
        description="Where the model is stored. Required except for runtime `custom` (an image that carries its "
        "model).",
    )
    version: LabelValue = Field(description="Model version label; a change starts a rollout.")
    image: ImageRef | None = Field(default=None, description="Server image, for runtime `custom` only.")
    runtime_version: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        description="Image tag of the runtime's server for this model (KServe's `runtimeVersion`, e.g. "
        "`23.10-py3`). Default: the runtime's pinned image.",
    )
    deployment_mode: DeploymentMode | None = Field(
        default=None,
        description="knative | standard | modelmesh. Default: controlPlane.defaultDeploymentMode.",
    )
    resources: ResourceArgs = Field(default_factory=ResourceArgs, description="Per-replica resources.")
    scaling: ScalingArgs = Field(
        default_factory=ScalingArgs, description="Replica bounds and autoscaling intent."
    )
    protocol: ProtocolArgs = Field(default_factory=ProtocolArgs, description="Inference protocol.")
    predictor: PredictorArgs = Field(
        default_factory=PredictorArgs,
        description="The predictor's container and pod settings: args, env, ports, probes, volumes, placement, "
        "metadata, timeout, logger, batcher. Default: none beyond the runtime's.",
    )
    workers: WorkerArgs | None = Field(
        default=None,
        description="Spread each replica over several GPU pods (runtime `huggingface-multinode`). Default: one pod.",
    )
    transformer: TransformerArgs | None = Field(default=None, description="Pre/post-processing in front.")
    explainer: ExplainerArgs | None = Field(default=None, description="Explanations beside the predictor.")
    rollout: RolloutOverride | None = Field(
        default=None, description="Changes to the stack's rollout policy."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Extra labels on the model's objects. Keys modelplane, KServe or Knative set themselves "
        "(`modelplane.dev/*`, `app.kubernetes.io/{managed-by,part-of,component}`, `serving.kserve.io/*`, "
        "`serving.knative.dev/*`, `app`, `component`) are refused.",
    )
    slo: SloArgs | None = Field(
        default=None,
        description="The model's own SLO objectives (burn-rate and latency alerts). Default: the "
        "monitoring section's.",
    )
    annotations: dict[LabelKey, str] = Field(
        default_factory=dict,
        description="Extra annotations on the InferenceService (scraping, KServe's `enable-tag-routing`, ...); "
        "keys modelplane derives are refused. Default: none.",
    )
    sample_request: SampleRequest | None = Field(
        default=None,
        description="A V2 inference request (`inputs`, optional `outputs`) that `modelplane probe` and the "
        "rollout policy's `probe` send to the model. Default: none (probes check health, readiness and "
        "metadata only).",
    )

    @property
    def model_format(self) -> ModelFormat:
        """The format served: the model's, or ``custom`` for a custom model that names none."""
        return self.format if self.format is not None else ModelFormat(name=CUSTOM_FORMAT)

    @property
    def format_key(self) -> str:
        """The format as ``name`` or ``name:version``."""
        return _format_key(self.model_format)

    @model_validator(mode="after")
    def _shape(self) -> ModelArgs:
        problems: list[Problem] = []
        scaling, resources = self.scaling, self.resources
        custom = self.runtime == "custom"
        if scaling.min_replicas > scaling.max_replicas:
            problems.append(
                Problem(
                    ("scaling", "minReplicas"),
                    f"is greater than scaling.maxReplicas {scaling.max_replicas}; "
                    "lower minReplicas or raise maxReplicas",
                    scaling.min_replicas,
                )
            )
        if self.image is not None and not custom:
            problems.append(
                Problem(
                    ("image",),
                    f"is only for runtime 'custom' (runtime is {self.runtime!r}); "
                    "use runtimeVersion to change the runtime's image tag, or set runtime: custom",
                    self.image,
                )
            )
        if custom and self.image is None:
            problems.append(Problem(("image",), "runtime 'custom' needs image, the model server to run"))
        if custom and self.runtime_version is not None:
            problems.append(
                Problem(
                    ("runtimeVersion",),
                    "runtime 'custom' runs image; put the tag there",
                    self.runtime_version,
                )
            )
        if self.format is None and not custom:
            problems.append(Problem(("format",), f"runtime {self.runtime!r} needs the model's format"))
        if self.storage is None and not custom:
            problems.append(
                Problem(
                    ("storage",), f"runtime {self.runtime!r} loads the model from storage; give storage.uri"
                )
            )
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
        problems += metadata_problems(dict(self.labels), dict(self.annotations))
        problems += self._port_problems()
        if problems:
            raise ProblemError(problems)
        return self

    def _port_problems(self) -> list[Problem]:
        ports = self.predictor.ports
        if self.protocol.transport == "grpc" and ports and ports[0].name != "h2c":
            return [
                Problem(
                    ("predictor", "ports", 0, "name"),
                    "a gRPC model serves on an h2c port (Knative and KServe's Service speak HTTP/2 only to h2c)",
                    ports[0].name,
                )
            ]
        collocated = self.transformer is not None and self.transformer.collocated
        if collocated and self.protocol.transport == "grpc":
            return [
                Problem(
                    ("transformer", "collocated"),
                    "a collocated transformer serves the pod's one port and calls the predictor over HTTP on "
                    "localhost; use protocol.transport http, or a transformer of its own",
                    True,
                )
            ]
        return []


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
    if component.component_mode(mode) == "knative":  # a mesh model's transformer runs on Knative too
        for part in ("transformer", "explainer"):
            settings: ComponentArgs | None = getattr(model, part)
            if settings is not None and settings.port in KNATIVE_RESERVED_PORTS:
                problems.append(
                    Problem(
                        (part, "port"),
                        f"is reserved by Knative (its queue-proxy and profiling use "
                        f"{', '.join(map(str, KNATIVE_RESERVED_PORTS))}), which refuses it as a container port "
                        "in knative mode; choose another port",
                        settings.port,
                    )
                )
    if mode == "modelmesh" and model.storage is not None:
        located: list[tuple[FieldPath, str]] = []
        if model.storage.uri is not None:
            located.append((("storage", "uri"), model.storage.uri))
        located += [(("storage", "uris", i, "uri"), item.uri) for i, item in enumerate(model.storage.uris)]
        for where, uri in located:
            scheme = uri.split("://", 1)[0]
            if scheme not in MODELMESH_STORAGE_SCHEMES:
                problems.append(
                    Problem(
                        where,
                        f"ModelMesh cannot read {scheme}:// storage (it reads "
                        f"{', '.join(s + '://' for s in MODELMESH_STORAGE_SCHEMES)}); copy the model there, or use "
                        "deploymentMode knative or standard",
                        uri,
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
    for part, present in (("transformer", model.transformer), ("explainer", model.explainer)):
        if present is not None:
            derived.append((f"'{model.name}-{part}'", len(model.name) + 1 + len(part)))
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


def runtime_object_name(model: ModelArgs, *, mesh: bool, external: bool = False) -> str:
    """Name of the ServingRuntime/ClusterServingRuntime a model runs on.

    ``external`` marks a runtime the cluster already has (a stack's ``externalRuntimes``): its own name.
    """
    if external:
        return model.runtime
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


def served_port(model: ModelArgs, runtime: RuntimeSpec) -> int:
    """The port the predictor's container serves on: its own, or the runtime's for the protocol."""
    if model.predictor.ports:
        return model.predictor.ports[0].container_port
    return runtime.grpc_port if model.protocol.transport == "grpc" else runtime.http_port


def _probes_for_port(model: ModelArgs, runtime: RuntimeSpec) -> dict[str, Any]:
    """The runtime's probes, moved to the port the stack moved the server to.

    The runtime's probes name its own port; a server told to listen elsewhere (a custom image on
    5000, TorchServe's own gRPC API on 7070) would fail them and never become ready.
    """
    if not model.predictor.ports or runtime.external is not None:
        return {}
    port = model.predictor.ports[0].container_port
    if port in (runtime.http_port, runtime.grpc_port):
        return {}
    # KServe merges this container into the runtime's with a strategic merge patch
    # (pkg/utils/utils.go MergeContainerWithPatch), probe by probe and field by field: a TCP
    # check over the runtime's HTTP check would give the probe two handlers, which the API
    # server refuses. So the runtime's own check moves to the port: its path, or a TCP connect.
    return {
        name: ({"httpGet": {"path": path, "port": port}} if path else {"tcpSocket": {"port": port}})
        for name, path in probe_paths(runtime).items()
        if getattr(model.predictor, PROBE_FIELDS[name]) is None
    }


PROBE_FIELDS = {
    "readinessProbe": "readiness_probe",
    "livenessProbe": "liveness_probe",
    "startupProbe": "startup_probe",
}
"""The predictor field of each probe, by its Kubernetes name."""


def _model_container(model: ModelArgs, runtime: RuntimeSpec, pool: GpuPoolArgs | None) -> dict[str, Any]:
    """KServe's ``predictor.model``: format, runtime, storage, protocol, resources and the container settings."""
    mesh = False
    spec: dict[str, Any] = {
        "modelFormat": model.model_format.model_dump(exclude_none=True),
        "runtime": runtime_object_name(model, mesh=mesh, external=runtime.external is not None),
    }
    if model.storage is not None:
        spec |= model.storage.model_fields_for_isvc()
    spec["protocolVersion"] = model.protocol.kserve_value
    spec["resources"] = container_resources(model, runtime, pool)
    if pool is not None and runtime.gpu_image is not None:
        # The runtime's image is its CPU build. KServe v0.20 swaps in `<tag>-gpu` itself only
        # for `nvidia.com/gpu` and `nvidia.com/mig-*` limits (pkg/controller/v1beta1/
        # inferenceservice/utils/utils.go:373-381, pkg/utils/utils.go:58-70), not for a
        # time-sliced pool's renamed `nvidia.com/gpu.shared`; it leaves a `-gpu` tag alone.
        image = runtime.gpu_image
        if model.runtime_version is not None:
            image = f"{image.rsplit(':', 1)[0]}:{model.runtime_version}"
        spec["image"] = image
    if model.runtime_version is not None:
        # KServe replaces the image's tag with it (pkg/controller/v1beta1/inferenceservice/
        # utils/utils.go:347-355); model_rules checks a GPU model names the GPU build's tag.
        spec["runtimeVersion"] = model.runtime_version
    port = served_port(model, runtime)
    if model.protocol.transport == "grpc" and not model.predictor.ports:
        # One port named h2c: Knative then speaks HTTP/2 to the container (it allows exactly
        # one port, named h2c or http1: knative serving pkg/apis/serving/k8s_validation.go
        # validateContainersPorts/validPortNames), and KServe's Standard-mode Service sends
        # its port 80 there with appProtocol kubernetes.io/h2c (pkg/controller/v1beta1/
        # inferenceservice/reconcilers/service/service_reconciler.go:66-76, 111-124).
        spec["ports"] = [{"containerPort": runtime.grpc_port, "name": "h2c", "protocol": "TCP"}]
    spec |= model.predictor.container_fields(port)
    spec |= _probes_for_port(model, runtime)
    if model.transformer is not None and model.transformer.collocated:
        # The collocated transformer serves the pod's one port (Knative allows one across all
        # containers: k8s_validation.go validateContainersPorts); the predictor's port, where the
        # transformer reaches it on localhost, only steers its probes.
        spec.pop("ports", None)
    return spec


def _placement(model: ModelArgs, pool: GpuPoolArgs | None) -> dict[str, Any]:
    """Pod placement: the GPU pool's selector, tolerations and priority, with the stack's own added."""
    own = model.predictor.placement_manifest()
    if pool is None:
        return own
    placed: dict[str, Any] = {
        "nodeSelector": dict(sorted((own.get("nodeSelector", {}) | pool.selector).items())),
        "tolerations": pool.tolerations() + own.get("tolerations", []),
        "priorityClassName": pool.priority_class_name,
    }
    if "affinity" in own:
        placed["affinity"] = own["affinity"]
    return placed


def _workers(model: ModelArgs, runtime: RuntimeSpec, pool: GpuPoolArgs | None) -> dict[str, Any]:
    """KServe's ``workerSpec``: the parallel sizes, the worker container, the worker pods' placement.

    KServe builds the worker pods from the runtime's worker spec and this one alone, not from the
    predictor's pod (v0.20.0 components/predictor.go:593-603), so the GPU pool's placement, the
    hardened pod security context and the shared memory are stated here again.
    """
    workers = model.workers
    assert workers is not None
    container: dict[str, Any] = {
        "name": "worker-container",
        "resources": container_resources(model, runtime, pool),
    }
    if workers.env:
        container["env"] = [v.manifest() for v in workers.env]
    spec: dict[str, Any] = {
        "pipelineParallelSize": workers.pipeline_parallel_size,
        "tensorParallelSize": workers.tensor_parallel_size,
        "containers": [container],
        **_placement(model, pool),
        "securityContext": restricted_pod_security_context(),
    }
    shared = [v for v in model.predictor.pod_volumes() if v["name"] == "devshm"]
    if shared:
        spec["volumes"] = shared
    return spec


def _collocated(transformer: TransformerArgs) -> dict[str, Any]:
    """A transformer as the predictor pod's second container, named as KServe expects."""
    return component.container(transformer, name=TRANSFORMER_CONTAINER)


def knative_features(model: ModelArgs, mode: DeploymentMode) -> set[str]:
    """The Knative ``config-features`` flags a model's Knative Services need (``overrides.knative_features``).

    A mesh model's transformer runs as a Knative Service too. A collocated transformer makes the
    predictor's own container a probed sidecar, which Knative allows only with
    ``multi-container-probing`` (serving pkg/apis/serving/k8s_validation.go validateSidecarContainer).
    """
    flags: set[str] = set()
    if mode == "knative":
        flags |= overrides.knative_features(model.predictor)
        if model.transformer is not None and model.transformer.collocated:
            flags |= overrides.knative_features(model.transformer) | {"multi-container-probing"}
    own_pods = [
        p
        for p in (model.transformer, model.explainer)
        if p is not None and not getattr(p, "collocated", False)
    ]
    if component.component_mode(mode) == "knative":
        for part in own_pods:
            flags |= overrides.knative_features(part)
    return flags


def needs_knative(model: ModelArgs, mode: DeploymentMode) -> bool:
    """Whether a model needs Knative Serving: its own mode, or a mesh model's transformer."""
    return mode == "knative" or (mode == "modelmesh" and model.transformer is not None)


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
    kserve_version: str = "v0.20.0",
) -> list[Obj]:
    """The objects that serve one model: its InferenceService and, when needed, a storage ServiceAccount.

    ``predictor_overrides`` lets the rollout engine add fields (such as
    ``canaryTrafficPercent``) without this module knowing about rollouts; ``canary`` becomes
    ``spec.canary`` (Standard mode's canary predictors, compiled by ``modelplane.rollout``);
    ``prometheus`` is the address KEDA-scaled models query (from the stack's monitoring settings);
    ``kserve_version`` pins KServe's own images a model names (the ART explainer).
    """
    common = labels(
        stack,
        "model",
        **{LABEL_MODEL: model.name, LABEL_TENANT: model.tenant, LABEL_VERSION: model.version},
    )
    common = dict(sorted((common | dict(model.labels)).items()))
    result: list[Obj] = []
    storage = model.storage
    service_account = storage.service_account_name if storage is not None else None
    mesh = mode == "modelmesh"
    if mesh:
        # ModelMesh pulls with its own puller from the namespace's `storage-config` secret and
        # ignores ServiceAccounts: secretName names the entry of that secret to use.
        service_account = None
    elif storage is not None and storage.secret_name:
        # One ServiceAccount per (namespace, secret), shared by every model reading with it.
        service_account = storage_service_account_name(storage.secret_name)
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
                "secrets": [{"name": storage.secret_name}],
            }
        )
    annotations = {"serving.kserve.io/deploymentMode": KSERVE_MODE_NAMES[mode]} | dict(model.annotations)
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
    if model.workers is not None:
        # Multi-node serving runs fixed replicas: KServe's webhook requires autoscaler class none
        # (v1beta1 inference_service_validation.go:415-417).
        scaling_annotations = {"serving.kserve.io/autoscalerClass": "none"}
        scaling_fields = {"minReplicas": model.scaling.min_replicas}
    annotations |= scaling_annotations
    if storage is not None and storage.read_only is not None and not mesh:
        annotations["storage.kserve.io/readonly"] = str(storage.read_only).lower()
    predictor: dict[str, Any]
    if mesh:
        model_spec: dict[str, Any] = {
            "modelFormat": model.model_format.model_dump(exclude_none=True),
            "runtime": runtime_object_name(model, mesh=True),
        }
        if storage is not None:
            model_spec |= storage.model_fields_for_isvc()
        if storage is not None and storage.secret_name:
            annotations["serving.kserve.io/secretKey"] = storage.secret_name
        predictor = {"model": model_spec, **scaling_fields}
    else:
        predictor = {"model": _model_container(model, runtime, pool), **scaling_fields}
        if storage is not None:
            predictor |= storage.predictor_fields_for_isvc()
        predictor |= model.predictor.pod_fields()
        predictor |= _placement(model, pool)
        predictor["securityContext"] = restricted_pod_security_context()
        own_labels = dict(model.predictor.labels)
        predictor["labels"] = dict(
            sorted(
                (
                    own_labels
                    | {LABEL_MODEL: model.name, LABEL_RUNTIME: model.runtime, LABEL_VERSION: model.version}
                ).items()
            )
        )
        pod_annotations = dict(model.predictor.annotations) | scaling_fields.get("annotations", {})
        if pod_annotations:
            predictor["annotations"] = dict(sorted(pod_annotations.items()))
        volumes = model.predictor.pod_volumes()
        if volumes:
            predictor["volumes"] = volumes
        if model.workers is not None:
            predictor["workerSpec"] = _workers(model, runtime, pool)
        if model.transformer is not None and model.transformer.collocated:
            predictor["containers"] = [_collocated(model.transformer)]
            tmp = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}
            predictor["volumes"] = [*predictor.get("volumes", []), tmp, *model.transformer.pod_volumes()]
    if service_account and "serviceAccountName" not in predictor:
        predictor["serviceAccountName"] = service_account
    if predictor_overrides:
        predictor |= predictor_overrides
    spec: dict[str, Any] = {"predictor": predictor}
    if canary:
        spec["canary"] = canary
    keda = annotations.get("serving.kserve.io/autoscalerClass") == "keda"
    if model.transformer is not None and not model.transformer.collocated:
        spec["transformer"] = component.spec(
            model.transformer, mode, keda=keda, predictor=scaling_fields, kserve_version=kserve_version
        )
    if model.explainer is not None:
        spec["explainer"] = component.spec(
            model.explainer, mode, keda=keda, predictor=scaling_fields, kserve_version=kserve_version
        )
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

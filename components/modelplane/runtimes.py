"""The serving-runtime catalog: typed runtime data rendered into ServingRuntime objects.

Each runtime is one YAML file in ``runtimes/`` (formats, protocols, ports, default
resources, whether it can serve many models) and all of them share one template. The
catalog is validated when loaded, so a broken runtime file is an error that names the file,
and every rendered runtime pod is hardened the same way: non-root, seccomp RuntimeDefault,
no privilege escalation, all capabilities dropped, and a read-only root where the server
allows, with writable paths mounted as emptyDir volumes.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any, Literal

import jinja2
import yaml
from pydantic import Field, ValidationError, model_validator

from modelplane.base import StrictModel
from modelplane.errors import PlatformError
from modelplane.kube import restricted_security_context
from modelplane.types import ImageRef, Quantity

ExternalKind = Literal["ClusterServingRuntime", "ServingRuntime"]

Protocol = Literal["v1", "v2", "grpc-v1", "grpc-v2"]

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: every runtime render parses its template's output."""

RUNTIMES_DIR_ENV = "MODELPLANE_RUNTIMES"
"""Environment variable naming another runtime catalog directory."""


class FormatSpec(StrictModel):
    """A model format a runtime serves."""

    name: str = Field(min_length=1, description="Format name as KServe spells it (`onnx`, `sklearn`, ...).")
    version: str | None = Field(default=None, description="Format major version, when the runtime needs one.")
    auto_select: bool = Field(
        default=True, description="Whether KServe may pick this runtime by format alone."
    )
    priority: int | None = Field(
        default=None, ge=1, description="Priority among runtimes for the same format."
    )


class RuntimeResources(StrictModel):
    """Default resources of a runtime container; a model's own resources replace them."""

    cpu: Quantity = Field(description="CPU request.")
    memory: Quantity = Field(description="Memory request.")
    cpu_limit: Quantity = Field(description="CPU limit.")
    memory_limit: Quantity = Field(description="Memory limit.")


class MeshSpec(StrictModel):
    """How a runtime runs inside the model mesh (a multi-model ServingRuntime)."""

    server_type: Literal["triton", "mlserver", "ovms", "torchserve"] = Field(
        description="ModelMesh adapter type."
    )
    image: ImageRef = Field(description="Runtime image inside the mesh.")
    management_port: int = Field(ge=1, le=65535, description="Runtime management port the adapter calls.")
    grpc_endpoint: str = Field(description="ModelMesh management endpoint, `port:N`.")
    grpc_data_endpoint: str = Field(description="Inference endpoint, `port:N`.")
    command: list[str] = Field(
        default_factory=list, description="Container command inside the mesh, when the image needs one."
    )
    args: list[str] = Field(default_factory=list, description="Runtime arguments inside the mesh.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Container environment inside the mesh (replaces the standalone env: ports and model "
        "directory differ, and the server must listen on loopback only).",
    )
    resources: RuntimeResources | None = Field(
        default=None,
        description="Container resources inside the mesh. Default: the runtime's. ModelMesh fills the memory "
        "request with models, so keep the memory limit equal to the request.",
    )
    liveness_command: list[str] = Field(
        default_factory=list,
        description="Exec liveness check run inside the container (the server listens on loopback only, so the "
        "kubelet cannot reach it over the network); none when empty.",
    )
    max_loading_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Models one pod loads at once (ModelMesh's `maxLoadingConcurrency`).",
    )
    formats: list[FormatSpec] = Field(description="Formats served inside the mesh.")


class WorkerSpec(StrictModel):
    """The worker pods of a multi-node runtime (KServe's ServingRuntime ``workerSpec``)."""

    command: list[str] = Field(min_length=1, description="Worker container command.")
    args: list[str] = Field(default_factory=list, description="Worker container arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Worker environment (never secrets).")
    env_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Worker environment from pod fields (`POD_NAMESPACE: metadata.namespace`).",
    )
    resources: RuntimeResources = Field(description="Default worker resources; a model's replace them.")
    liveness_command: list[str] = Field(
        default_factory=list, description="Exec liveness check of a worker; none when empty."
    )


class RuntimeSpec(StrictModel):
    """One runtime of the catalog."""

    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="Catalog name that models use in `runtime`.")
    description: str = Field(description="One line about the server.")
    server_type: str = Field(description="Value of KServe's `serving.kserve.io/server-type` annotation.")
    image: ImageRef | None = Field(
        description="Pinned image; `null` for `custom`, where the model brings it."
    )
    gpu_image: ImageRef | None = Field(
        default=None,
        description="Image for models on a GPU pool, where the server publishes its CUDA build under "
        "another tag. Default: none (`image` serves both).",
    )
    command: list[str] = Field(
        default_factory=list, description="Container command, when the image needs one."
    )
    args: list[str] = Field(default_factory=list, description="Container arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Container environment (never secrets).")
    env_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Container environment from pod fields (`POD_IP: status.podIP`). Default: none.",
    )
    formats: list[FormatSpec] = Field(
        description="Formats served; empty for `custom` (the model declares it)."
    )
    protocols: list[Protocol] = Field(
        description="Protocol versions served; empty for a server with its own API (vLLM's OpenAI API), which "
        "KServe accepts with any protocolVersion (v1alpha1 servingruntime_types.go:304-314)."
    )
    http_port: int = Field(ge=1024, le=65535, description="HTTP inference port.")
    grpc_port: int = Field(ge=1024, le=65535, description="gRPC inference port.")
    metrics_port: int = Field(ge=1024, le=65535, description="Prometheus metrics port.")
    metrics_path: str = Field(default="/metrics", description="Prometheus metrics path.")
    readiness_path: str | None = Field(description="HTTP readiness path; a TCP check when null.")
    liveness_path: str | None = Field(description="HTTP liveness path; a TCP check when null.")
    resources: RuntimeResources = Field(description="Default container resources.")
    read_only_root_filesystem: bool = Field(description="Whether the server runs with a read-only root.")
    writable_paths: list[str] = Field(default_factory=list, description="Paths mounted as emptyDir volumes.")
    shared_memory: bool = Field(
        default=False, description="Mount a memory-backed /dev/shm (PyTorch, Triton, vLLM)."
    )
    shared_memory_size: Quantity = Field(
        default="2Gi", description="Size of /dev/shm when mounted. Default: 2Gi."
    )
    run_as_user: int = Field(ge=1, description="Non-root user id the server runs as.")
    gpu_capable: bool = Field(description="Whether the server can use GPUs.")
    startup_seconds: int = Field(default=600, ge=30, description="How long the server may take to start.")
    mesh: MeshSpec | None = Field(
        default=None, description="Multi-model (mesh) support, when the server has it."
    )
    worker: WorkerSpec | None = Field(
        default=None, description="Worker pods, for a runtime that spreads one model over several nodes."
    )
    external: ExternalKind | None = Field(
        default=None,
        description="Set for a runtime the cluster already has (a stack's `externalRuntimes`): modelplane renders "
        "no object for it and models name it as it is. Default: none (a catalog runtime).",
    )

    @model_validator(mode="after")
    def _gpu_image_needs_gpu(self) -> RuntimeSpec:
        if self.gpu_image is not None and not self.gpu_capable:
            raise ValueError(f"gpuImage {self.gpu_image!r} is set but gpuCapable is false")
        return self

    def image_for(self, *, gpu: bool) -> ImageRef | None:
        """The image a model runs: the GPU build on a GPU pool when there is one."""
        return self.gpu_image if gpu and self.gpu_image is not None else self.image

    def serves(self, format_name: str, version: str | None) -> bool:
        """Whether this runtime serves a format (and version, when given)."""
        for spec in self.formats:
            if spec.name == format_name and (
                version is None or spec.version is None or spec.version == version
            ):
                return True
        return False

    def format_names(self) -> list[str]:
        """Formats served, as `name` or `name:version`, sorted."""
        return sorted({f"{f.name}:{f.version}" if f.version else f.name for f in self.formats})

    def mesh_serves(self, format_name: str, version: str | None) -> bool:
        """Whether this runtime serves a format inside the mesh."""
        if self.mesh is None:
            return False
        return any(
            f.name == format_name and (version is None or f.version is None or f.version == version)
            for f in self.mesh.formats
        )


PACKAGED_CATALOG = "_catalog"
"""Where an installed package keeps the catalog: ``runtimes/`` shipped as ``modelplane/_catalog``
(pyproject.toml maps it)."""


def catalog_dir() -> Path:
    """The default runtime catalog directory: ``$MODELPLANE_RUNTIMES``, else the one shipped with modelplane.

    An installed wheel carries the catalog inside the package (``modelplane/_catalog``); a source
    checkout (and an editable install) reads ``runtimes/`` of the project, its source. The one
    place that decides where the catalog lives by default; everything else takes the directory
    (or the loaded catalog) as an argument.
    """
    override = os.environ.get(RUNTIMES_DIR_ENV)
    if override:
        return Path(override)
    package = Path(__file__).resolve().parent
    packaged = package / PACKAGED_CATALOG
    if packaged.is_dir():
        return packaged
    return package.parents[1] / "runtimes"


@functools.cache
def _load_catalog(directory: Path) -> dict[str, RuntimeSpec]:
    if not directory.is_dir():
        raise PlatformError(f"{directory}: runtime catalog directory not found (set {RUNTIMES_DIR_ENV})")
    catalog: dict[str, RuntimeSpec] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            spec = RuntimeSpec.model_validate(data)
        except (yaml.YAMLError, ValidationError) as err:
            raise PlatformError(f"{path}: invalid runtime: {err}") from err
        if spec.name != path.stem:
            raise PlatformError(f"{path}: name: must match the file name (got {spec.name!r})")
        catalog[spec.name] = spec
    clashes = _priority_clashes(catalog)
    if clashes:
        raise PlatformError(
            f"{directory}: KServe's ServingRuntime webhook would refuse these runtimes: {'; '.join(clashes)}; "
            "give each format one priority per runtime and a different priority in each runtime"
        )
    return catalog


def _priority_clashes(catalog: dict[str, RuntimeSpec]) -> list[str]:
    """What KServe's ServingRuntime webhook would refuse of the catalog's runtimes, as rendered.

    Within a runtime, one format auto-selected at two priorities; across runtimes that share a
    protocol, one format (same name and version) auto-selected at the same priority: KServe
    could not choose, and refuses the second runtime (v0.20.0 pkg/webhook/admission/servingruntime/
    servingruntime_webhook.go:162-209). Mesh runtimes carry no priorities.
    """
    found: list[str] = []
    for spec in catalog.values():
        seen: dict[str, int] = {}
        for fmt in spec.formats:
            if not fmt.auto_select or fmt.priority is None:
                continue
            first = seen.setdefault(fmt.name.lower(), fmt.priority)
            if first != fmt.priority:
                found.append(
                    f"{spec.name}: format {fmt.name!r} is auto-selected at priorities {first} and {fmt.priority}"
                )
    names = sorted(catalog)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sorted(set(catalog[a].protocols) & set(catalog[b].protocols))
            if not shared:
                continue
            for fa in catalog[a].formats:
                for fb in catalog[b].formats:
                    same = fa.name.lower() == fb.name.lower() and fa.version == fb.version
                    if (
                        same
                        and fa.auto_select
                        and fb.auto_select
                        and fa.priority is not None
                        and fa.priority == fb.priority
                    ):
                        found.append(
                            f"{a} and {b}: both auto-select format {fa.name}:{fa.version} at priority {fa.priority} "
                            f"for protocol {shared[0]}"
                        )
    return found


def load_catalog(directory: Path) -> dict[str, RuntimeSpec]:
    """The runtime catalog in ``directory``, keyed by runtime name (loaded once per directory).

    Raises:
        PlatformError: the directory is missing, or a runtime file is invalid (naming the file).
    """
    return _load_catalog(directory.resolve())


@functools.cache
def _template(directory: Path) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.policies["json.dumps_kwargs"] = {"sort_keys": True}
    return env.get_template("servingruntime.yaml.j2")


def probe_paths(spec: RuntimeSpec) -> dict[str, str | None]:
    """The HTTP path each probe of the runtime's server container checks (None: a TCP check)."""
    return {
        "readinessProbe": spec.readiness_path,
        "livenessProbe": spec.liveness_path,
        "startupProbe": spec.readiness_path,
    }


def _probe(path: str | None, port: int, *, period: int, failures: int, timeout: int) -> dict[str, Any]:
    action: dict[str, Any] = (
        {"httpGet": {"path": path, "port": port}} if path else {"tcpSocket": {"port": port}}
    )
    return action | {"periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": timeout}


def _env(values: dict[str, str], fields: dict[str, str]) -> list[dict[str, Any]]:
    """Environment variables by name: plain values and pod fields."""
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
    env += [{"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in fields.items()]
    return sorted(env, key=lambda e: str(e["name"]))


def _exec_liveness(command: list[str], *, timeout: int) -> dict[str, Any]:
    """A liveness check run inside the container, for servers the kubelet cannot reach over the network."""
    return {
        "exec": {"command": list(command)},
        "initialDelaySeconds": 30,
        "periodSeconds": 30,
        "timeoutSeconds": timeout,
        "failureThreshold": 3,
    }


def worker_container(spec: RuntimeSpec) -> dict[str, Any]:
    """The hardened ``worker-container`` of a multi-node runtime (its workers join the head's cluster)."""
    worker = spec.worker
    assert worker is not None
    container: dict[str, Any] = {
        "name": "worker-container",
        "image": spec.image,
        "command": list(worker.command),
        "args": list(worker.args),
        "env": _env(worker.env, worker.env_fields),
        "resources": {
            "requests": {"cpu": worker.resources.cpu, "memory": worker.resources.memory},
            "limits": {"cpu": worker.resources.cpu_limit, "memory": worker.resources.memory_limit},
        },
        "securityContext": restricted_security_context(
            run_as_user=spec.run_as_user, read_only_root=spec.read_only_root_filesystem
        ),
        "volumeMounts": [
            {"name": f"writable-{i}", "mountPath": p} for i, p in enumerate(spec.writable_paths)
        ],
    }
    if spec.shared_memory:
        container["volumeMounts"].append({"name": "devshm", "mountPath": "/dev/shm"})
    if worker.liveness_command:
        container["livenessProbe"] = _exec_liveness(worker.liveness_command, timeout=15)
    return container


def runtime_container(
    spec: RuntimeSpec,
    *,
    image: str | None = None,
    resources: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """The hardened ``kserve-container`` of a runtime, with probes, ports and volume mounts."""
    mounts = [{"name": f"writable-{i}", "mountPath": p} for i, p in enumerate(spec.writable_paths)]
    if spec.shared_memory:
        mounts.append({"name": "devshm", "mountPath": "/dev/shm"})
    startup_failures = max(1, spec.startup_seconds // 10)
    container: dict[str, Any] = {
        "name": "kserve-container",
        "image": image or spec.image,
        "args": list(spec.args),
        "env": _env(spec.env, spec.env_fields),
        "resources": resources
        or {
            "requests": {"cpu": spec.resources.cpu, "memory": spec.resources.memory},
            "limits": {"cpu": spec.resources.cpu_limit, "memory": spec.resources.memory_limit},
        },
        "securityContext": restricted_security_context(
            run_as_user=spec.run_as_user, read_only_root=spec.read_only_root_filesystem
        ),
        "readinessProbe": _probe(spec.readiness_path, spec.http_port, period=10, failures=3, timeout=5),
        "livenessProbe": _probe(spec.liveness_path, spec.http_port, period=30, failures=3, timeout=10),
        "startupProbe": _probe(
            spec.readiness_path, spec.http_port, period=10, failures=startup_failures, timeout=5
        ),
        "volumeMounts": mounts,
    }
    if spec.command:
        container["command"] = list(spec.command)
    return container


def runtime_volumes(spec: RuntimeSpec) -> list[dict[str, Any]]:
    """EmptyDir volumes for the runtime's writable paths and shared memory."""
    volumes: list[dict[str, Any]] = [
        {"name": f"writable-{i}", "emptyDir": {"sizeLimit": "1Gi"}} for i, _ in enumerate(spec.writable_paths)
    ]
    if spec.shared_memory:
        volumes.append(
            {"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shared_memory_size}}
        )
    return volumes


def _worker_spec(spec: RuntimeSpec) -> dict[str, Any]:
    """The runtime's ``workerSpec``: one worker container, sized per node, and its volumes."""
    return {
        "pipelineParallelSize": 1,
        "tensorParallelSize": 1,
        "containers": [worker_container(spec)],
        "volumes": runtime_volumes(spec),
    }


def render_runtime(
    spec: RuntimeSpec,
    *,
    name: str,
    labels: dict[str, str],
    namespace: str | None = None,
    image: str | None = None,
    formats: list[FormatSpec] | None = None,
    mesh_replicas: int | None = None,
    mesh_memory_buffer_bytes: int | None = None,
    mesh_load_timeout_ms: int | None = None,
    mesh_resources: dict[str, dict[str, str]] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, str]] | None = None,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Render one runtime into a ServingRuntime (with ``namespace``) or ClusterServingRuntime object.

    With ``mesh_replicas`` set, the runtime is rendered as a multi-model (ModelMesh) runtime.
    """
    if spec.external is not None:
        raise PlatformError(
            f"runtime {spec.name!r} is the cluster's own {spec.external}; modelplane renders none"
        )
    if image is None and spec.image is None:
        raise PlatformError(f"runtime {spec.name!r} has no image; a model using it must set `image`")
    mesh_context: dict[str, Any] | None = None
    container = runtime_container(spec, image=image)
    served = formats if formats is not None else spec.formats
    protocols: list[str] = list(spec.protocols)
    annotations = {"serving.kserve.io/server-type": spec.server_type}
    pod_annotations = {
        "prometheus.kserve.io/path": spec.metrics_path,
        "prometheus.kserve.io/port": str(spec.metrics_port),
    }
    if mesh_replicas is not None:
        if spec.mesh is None:
            raise PlatformError(f"runtime {spec.name!r} cannot serve in the model mesh")
        mesh = spec.mesh
        served = mesh.formats
        protocols = ["grpc-v2"]
        container["image"] = mesh.image
        container["args"] = list(mesh.args)
        container["env"] = [{"name": k, "value": v} for k, v in sorted(mesh.env.items())]
        container["name"] = mesh.server_type
        if mesh.command:
            container["command"] = list(mesh.command)
        else:
            container.pop("command", None)
        mesh_res = mesh.resources or spec.resources
        container["resources"] = mesh_resources or {
            "requests": {"cpu": mesh_res.cpu, "memory": mesh_res.memory},
            "limits": {"cpu": mesh_res.cpu_limit, "memory": mesh_res.memory_limit},
        }
        # Inside the mesh the runtime listens on loopback for the adapter: network probes from the
        # kubelet cannot reach it. The pod's readiness comes from ModelMesh's own container, which
        # the controller injects with its probes; liveness of the runtime is an exec check.
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            container.pop(probe)
        if mesh.liveness_command:
            container["livenessProbe"] = _exec_liveness(mesh.liveness_command, timeout=10)
        # ModelMesh scrapes its own metrics (port 2112); the runtime's port is not exposed in the mesh.
        pod_annotations = {}
        if mesh.max_loading_concurrency is not None:
            annotations["maxLoadingConcurrency"] = str(mesh.max_loading_concurrency)
        adapter: dict[str, Any] = {
            "serverType": spec.mesh.server_type,
            "runtimeManagementPort": spec.mesh.management_port,
        }
        if mesh_memory_buffer_bytes is not None:
            adapter["memBufferBytes"] = mesh_memory_buffer_bytes
        if mesh_load_timeout_ms is not None:
            adapter["modelLoadingTimeoutMillis"] = mesh_load_timeout_ms
        mesh_context = {
            "grpc_endpoint": spec.mesh.grpc_endpoint,
            "grpc_data_endpoint": spec.mesh.grpc_data_endpoint,
            "replicas": mesh_replicas,
            "adapter": adapter,
        }
    context = {
        "kind": "ServingRuntime" if namespace else "ClusterServingRuntime",
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": dict(sorted(annotations.items())),
        "pod_annotations": pod_annotations,
        "formats": [f.model_dump(by_alias=True, exclude_none=True) for f in served],
        "protocols": protocols,
        "multi_model": mesh_replicas is not None,
        "mesh": mesh_context,
        "containers": [container],
        "volumes": runtime_volumes(spec),
        "worker": _worker_spec(spec) if spec.worker is not None and mesh_replicas is None else None,
        "node_selector": node_selector or {},
        "tolerations": tolerations or [],
    }
    text = _template((directory or catalog_dir()).resolve()).render(**context)
    try:
        rendered = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as err:  # pragma: no cover - a broken template is a bug, not bad input
        raise PlatformError(f"runtime template produced invalid YAML for {name}: {err}") from err
    if not isinstance(rendered, dict):  # pragma: no cover
        raise PlatformError(f"runtime template produced no object for {name}")
    # A round trip through JSON proves the object holds plain data only.
    result: dict[str, Any] = json.loads(json.dumps(rendered, sort_keys=True))
    return result

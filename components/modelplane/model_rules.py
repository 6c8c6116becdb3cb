"""What a model's deployment mode, runtime and pool can carry of its settings: the model's own rules.

A model's fields are valid on their own (``modelplane.model``); these rules check them against
the facts the stack hands in: the mode the model runs in, its runtime, its GPU pool, the rollout
strategy it will roll out with, the Kubernetes version. Each problem names the field, the value,
the upstream rule that refuses it and what to do instead. ``modelplane.rules`` calls them for
every model.
"""

from __future__ import annotations

from modelplane.base import Problem
from modelplane.component import component_mode, refusal
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.model import PROBE_FIELDS, ModelArgs, served_port
from modelplane.overrides import mode_problems
from modelplane.runtimes import RuntimeSpec, probe_paths
from modelplane.storage import MODELCAR_SCHEMES, image_volume_problem, scheme_of
from modelplane.types import DeploymentMode, FieldPath


def _kserve_counts_as_gpu(resource: str) -> bool:
    """Whether KServe v0.20 counts a limit as a GPU request.

    Exactly ``nvidia.com/gpu``, or the MIG prefix (pkg/utils/utils.go:58-70 IsGPUEnabled); a
    renamed ``nvidia.com/gpu.shared`` is not one.
    """
    return resource == "nvidia.com/gpu" or resource.startswith("nvidia.com/mig")


def _mesh(model: ModelArgs, path: FieldPath) -> list[Problem]:
    """A mesh model has no pod of its own: container and pod settings have nowhere to go."""
    found: list[Problem] = []
    settings = model.predictor.container_set() + model.predictor.pod_set()
    if settings:
        found.append(
            Problem(
                (*path, "predictor"),
                "modelmesh mode loads the model into shared runtime pods, which take no per-model container or pod "
                f"settings ({', '.join(settings)}); set them on the mesh runtime, or use deploymentMode knative or "
                "standard",
                settings[0],
            )
        )
    for field, value, why in (
        ("runtimeVersion", model.runtime_version, "the mesh runtime's image serves every model"),
        ("workers", model.workers, "multi-node serving needs its own pods"),
    ):
        if value is not None:
            found.append(
                Problem(
                    (*path, field),
                    f"modelmesh mode cannot carry it: {why}; use deploymentMode standard",
                    field,
                )
            )
    storage = model.storage
    if storage is not None and storage.uris:
        found.append(
            Problem(
                (*path, "storage", "uris"),
                "ModelMesh's puller reads one location per model; use storage.uri",
                len(storage.uris),
            )
        )
    if storage is not None and storage.read_only is not None:
        found.append(
            Problem(
                (*path, "storage", "readOnly"),
                "ModelMesh mounts no PVC into a model's pod",
                storage.read_only,
            )
        )
    if model.explainer is not None:
        found.append(
            Problem(
                (*path, "explainer"),
                "modelmesh mode has no explainer; use knative or standard mode",
                "explainer",
            )
        )
    if model.transformer is not None and model.transformer.collocated:
        found.append(
            Problem(
                (*path, "transformer", "collocated"),
                "a mesh model has no pod to share; the transformer runs as its own Knative Service in front "
                "(remove collocated)",
                True,
            )
        )
    return found


def _components(model: ModelArgs, mode: DeploymentMode, *, keda: bool, path: FieldPath) -> list[Problem]:
    found: list[Problem] = []
    for name in ("transformer", "explainer"):
        part = getattr(model, name)
        if part is None or (name == "transformer" and part.collocated):
            continue
        where = (*path, name)
        found += mode_problems(part, component_mode(mode), path=where)
        refused = refusal(part, mode, keda=keda)
        if refused is not None:
            field, message, value = refused
            found.append(Problem((*where, *field), message, value))
    return found


def _collocated(model: ModelArgs, runtime: RuntimeSpec, path: FieldPath) -> list[Problem]:
    transformer = model.transformer
    if transformer is None or not transformer.collocated:
        return []
    # A catalog server binds its gRPC and metrics ports too; a custom image's are the catalog's guess.
    taken = {} if runtime.name == "custom" else {runtime.grpc_port: "gRPC", runtime.metrics_port: "metrics"}
    taken[served_port(model, runtime)] = "HTTP"
    if transformer.port in taken:
        return [
            Problem(
                (*path, "transformer", "port"),
                f"the collocated transformer shares the pod with runtime {runtime.name!r}, whose server takes port "
                f"{transformer.port} ({taken[transformer.port]}); give the transformer another port and point it at "
                f"localhost:{served_port(model, runtime)} (or move the server with predictor.ports)",
                transformer.port,
            )
        ]
    return []


def _identity_and_placement(model: ModelArgs, pool: GpuPoolArgs | None, path: FieldPath) -> list[Problem]:
    found: list[Problem] = []
    predictor = model.predictor
    storage = model.storage
    if (
        predictor.service_account_name is not None
        and storage is not None
        and (storage.secret_name or storage.service_account_name)
    ):
        found.append(
            Problem(
                (*path, "predictor", "serviceAccountName"),
                "the pod already runs as the storage ServiceAccount (storage.secretName or "
                "storage.serviceAccountName); a pod has one, so set one of them",
                predictor.service_account_name,
            )
        )
    if pool is not None:
        if predictor.priority_class_name is not None:
            found.append(
                Problem(
                    (*path, "predictor", "priorityClassName"),
                    f"GPU pool {pool.name!r} sets the priority class ({pool.priority_class_name}); remove it here",
                    predictor.priority_class_name,
                )
            )
        for key, value in predictor.node_selector.items():
            if key in pool.selector and pool.selector[key] != value:
                found.append(
                    Problem(
                        (*path, "predictor", "nodeSelector", key),
                        f"conflicts with GPU pool {pool.name!r}, whose nodes carry {key}={pool.selector[key]}",
                        value,
                    )
                )
    return found


def _image(
    model: ModelArgs, runtime: RuntimeSpec, pool: GpuPoolArgs | None, path: FieldPath
) -> list[Problem]:
    found: list[Problem] = []
    gpu_image = runtime.gpu_image
    if (
        pool is not None
        and model.runtime_version is not None
        and gpu_image is not None
        and gpu_image.endswith("-gpu")
        and not model.runtime_version.endswith("-gpu")
    ):
        found.append(
            Problem(
                (*path, "runtimeVersion"),
                f"a GPU model runs runtime {runtime.name!r}'s CUDA build, tagged `<version>-gpu`; KServe uses "
                "runtimeVersion as the whole tag (utils.go:347-355); write "
                f"{model.runtime_version}-gpu",
                model.runtime_version,
            )
        )
    if pool is not None and runtime.server_type == "vllmserver":
        resource = pool.resource_name(model.resources.mig_profile)
        if not _kserve_counts_as_gpu(resource):
            found.append(
                Problem(
                    (*path, "resources", "pool"),
                    f"KServe v0.20 rewrites vLLM to its CPU build unless the container asks for nvidia.com/gpu or "
                    f"nvidia.com/mig-* (utils.go:373-388), and pool {pool.name!r} gives {resource}; use a pool "
                    "without renamed time-slicing, or runtime huggingface",
                    pool.name,
                )
            )
    return found


def _storage_uris(model: ModelArgs, mode: DeploymentMode) -> list[tuple[FieldPath, str]]:
    """Every URI KServe's pod webhook materialises for the model, at its path under the model.

    A mesh model's own files are ModelMesh's puller's; its transformer still runs as a KServe pod.
    """
    found: list[tuple[FieldPath, str]] = []
    storage = model.storage
    if storage is not None and mode != "modelmesh":
        if storage.uri is not None:
            found.append((("storage", "uri"), storage.uri))
        found += [(("storage", "uris", i, "uri"), entry.uri) for i, entry in enumerate(storage.uris)]
    for name in ("transformer", "explainer"):
        part = getattr(model, name)
        if part is not None and part.storage_uri is not None:
            found.append(((name, "storageUri"), part.storage_uri))
    return found


def _modelcar_message(scheme: str, pod_security: str, *, multi_node: bool, advise: bool) -> str:
    why = (
        "KServe v0.20.0 still materialises oci+fetch:// as a modelcar (storage_initializer_injector.go:372)"
        if scheme == "oci+fetch"
        else "oci:// runs the model as a modelcar"
    )
    instead = (
        "use pvc:// (KServe's webhook refuses oci+native:// for multi-node serving: "
        "inference_service_validation.go:407-414)"
        if multi_node
        else "use oci+native:// (the same image mounted as an ImageVolume: pkg/utils/storage.go:641-693), "
        "or another scheme"
    )
    return (
        f"{why}, whose sidecar and init container KServe v0.20.0 builds without allowPrivilegeEscalation: false or "
        f"capabilities.drop: [ALL] (pkg/utils/storage.go:385-441), and the tenant's namespace enforces Pod "
        f"Security {pod_security!r}, which refuses such pods: they would never start"
    ) + (f"; {instead}" if advise else "")


def oci_problems(
    uris: list[tuple[FieldPath, str]],
    *,
    kubernetes: str,
    image_volume: bool | None,
    pod_security: str | None,
    multi_node: bool = False,
    advise: bool = True,
) -> list[Problem]:
    """OCI storage a pod cannot start with: a refused modelcar, or an unmountable ImageVolume.

    ``uris`` are ``(path, uri)`` pairs; a modelcar is refused where the namespace enforces Pod
    Security "restricted" (``pod_security``; None when the tenant is not known);
    ``image_volume`` is ``controlPlane.imageVolume``; ``advise`` adds what to use instead.
    """
    found: list[Problem] = []
    volume_problem = image_volume_problem(kubernetes, image_volume)
    for where, uri in uris:
        scheme = scheme_of(uri)
        if scheme in MODELCAR_SCHEMES and pod_security == "restricted":
            message = _modelcar_message(scheme, pod_security, multi_node=multi_node, advise=advise)
            found.append(Problem(where, message, uri))
        elif scheme == "oci+native" and volume_problem is not None:
            found.append(Problem(where, volume_problem + ("; or use another scheme" if advise else ""), uri))
    return found


def storage_problems(
    model: ModelArgs,
    *,
    mode: DeploymentMode,
    kubernetes: str,
    image_volume: bool | None,
    pod_security: str | None,
    path: FieldPath,
    advise: bool = True,
) -> list[Problem]:
    """The model's storage, its transformer's and its explainer's, through ``oci_problems``."""
    found: list[Problem] = []
    for where, uri in _storage_uris(model, mode):
        found += oci_problems(
            [((*path, *where), uri)],
            kubernetes=kubernetes,
            image_volume=image_volume,
            pod_security=pod_security,
            multi_node=model.workers is not None and where[0] == "storage",
            advise=advise,
        )
    return found


def _workers(
    model: ModelArgs, runtime: RuntimeSpec, mode: DeploymentMode, *, strategy: str, path: FieldPath
) -> list[Problem]:
    workers = model.workers
    if workers is None:
        if runtime.worker is not None:
            return [
                Problem(
                    (*path, "runtime"),
                    f"runtime {runtime.name!r} spreads a model over several nodes and needs workers "
                    "(tensorParallelSize, pipelineParallelSize); add workers, or use runtime huggingface",
                    model.runtime,
                )
            ]
        return []
    found: list[Problem] = []
    where = (*path, "workers")
    if runtime.worker is None:
        multi = "huggingface-multinode"
        found.append(
            Problem(
                where,
                f"runtime {runtime.name!r} has no worker pods (KServe needs the runtime's workerSpec); use runtime {multi}",
                runtime.name,
            )
        )
    if mode != "standard":
        found.append(
            Problem((*path, "deploymentMode"), "multi-node serving runs in standard mode only", mode)
        )
    schemes = model.storage.schemes if model.storage is not None else []
    if [s for s in schemes if s not in ("pvc", "oci")] or not schemes:
        # v1beta1 inference_service_validation.go:407-414 (InvalidNotSupportedStorageURIProtocolError).
        found.append(
            Problem(
                (*path, "storage", "uri"),
                "multi-node serving reads its model from pvc:// or oci:// only (KServe's webhook)",
                ", ".join(schemes) or None,
            )
        )
    gpu = model.resources.gpu
    if not gpu:
        found.append(
            Problem(
                (*path, "resources", "gpu"),
                "multi-node serving spreads GPUs over pods; give each pod's GPUs",
                0,
            )
        )
    elif workers.total_gpus % gpu:
        found.append(
            Problem(
                (*path, "resources", "gpu"),
                f"tensorParallelSize x pipelineParallelSize is {workers.total_gpus} GPUs, which pods of {gpu} GPUs do not "
                "divide evenly",
                gpu,
            )
        )
    scaling = model.scaling
    if scaling.metric is not None or scaling.min_replicas != scaling.max_replicas:
        found.append(
            Problem(
                (*path, "scaling"),
                "multi-node serving runs a fixed number of replicas (KServe requires autoscaler class none: "
                "inference_service_validation.go:415-417); set minReplicas equal to maxReplicas and no metric",
                scaling.metric or scaling.min_replicas,
            )
        )
    if strategy in ("canary", "ab"):
        found.append(
            Problem(
                (*path, "rollout", "strategy"),
                "KServe refuses workerSpec on a canary predictor (inference_service_validation.go:231-233); use "
                "strategy direct for a multi-node model",
                strategy,
            )
        )
    return found


def _probes(model: ModelArgs, runtime: RuntimeSpec, path: FieldPath) -> list[Problem]:
    """A predictor probe must check the way the runtime's own probe does.

    KServe merges the predictor's container into the runtime's with a strategic merge patch
    (kserve v0.20.0 pkg/controller/v1beta1/inferenceservice/utils/utils.go:253-263,
    MergeContainerWithPatch), probe by probe and field by field: a TCP check over the runtime's
    HTTP check becomes one probe with two handlers, and the API server refuses the Deployment
    ("may not specify more than 1 handler type"). The cluster's own runtimes are not known here.
    """
    if runtime.external is not None:
        return []
    found: list[Problem] = []
    for name, runtime_path in probe_paths(runtime).items():
        probe = getattr(model.predictor, PROBE_FIELDS[name])
        if probe is None:
            continue
        wanted = "httpGet" if runtime_path else "tcpSocket"
        given = (
            "httpGet"
            if probe.http_get
            else "tcpSocket"
            if probe.tcp_socket
            else "exec"
            if probe.exec
            else "grpc"
        )
        if given != wanted:
            found.append(
                Problem(
                    (*path, "predictor", name, given),
                    f"runtime {runtime.name!r} checks its server with {wanted}"
                    + (f" ({runtime_path})" if runtime_path else "")
                    + f", and KServe merges the predictor's {name} into it, which would give the probe two "
                    f"handlers; use {wanted} here too",
                    given,
                )
            )
    return found


def problems(
    model: ModelArgs,
    *,
    mode: DeploymentMode,
    runtime: RuntimeSpec,
    pool: GpuPoolArgs | None,
    keda: bool,
    strategy: str,
    kubernetes: str,
    image_volume: bool | None,
    pod_security: str | None,
    path: FieldPath,
) -> list[Problem]:
    """Every setting of a model its mode, runtime, pool, rollout strategy, cluster or namespace refuses.

    ``keda`` says the model's InferenceService runs under KEDA (its predictor scales on a
    Prometheus metric); ``image_volume`` is ``controlPlane.imageVolume``; ``pod_security`` the
    Pod Security level the model's namespace enforces; ``path`` is the model's path in the stack file.
    """
    storage = storage_problems(
        model,
        mode=mode,
        kubernetes=kubernetes,
        image_volume=image_volume,
        pod_security=pod_security,
        path=path,
    )
    if mode == "modelmesh":
        return _mesh(model, path) + _components(model, mode, keda=keda, path=path) + storage
    found = mode_problems(model.predictor, mode, path=(*path, "predictor"))
    found += _components(model, mode, keda=keda, path=path)
    found += _collocated(model, runtime, path)
    found += _identity_and_placement(model, pool, path)
    found += _image(model, runtime, pool, path)
    found += storage
    found += _workers(model, runtime, mode, strategy=strategy, path=path)
    found += _probes(model, runtime, path)
    return found

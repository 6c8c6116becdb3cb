"""The model mesh: many small models sharing a few multi-model runtime pods.

Upstream ModelMesh Serving is archived (its repositories say so, and KServe's Helm chart
dropped it in 2025); modelplane keeps it a supported backend because nothing else packs
thousands of small models into a handful of pods. It has no Helm chart, so it is installed
from its tagged release's kustomize directories (``config/rbac/cluster-scope`` and
``config/default``), with patches: the copies of KServe's CRDs it bundles are dropped
(KServe's own release owns them), and its controller is hardened and scaled.

What is ours: the ``model-serving-config`` ConfigMap, the multi-model ServingRuntimes, the
etcd it keeps its state in (``modelplane.mesh_etcd``), and the checks that tie them to the
models and GPU pools.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import Field, model_validator

from modelplane import mesh_etcd
from modelplane.base import Problem, StrictModel
from modelplane.gpu_pool import GpuPoolArgs, gpu_request_problems
from modelplane.kube import Obj, labels, restricted_pod_security_context, restricted_security_context
from modelplane.mesh_etcd import EtcdArgs
from modelplane.model import ModelArgs
from modelplane.runtimes import RuntimeSpec, render_runtime
from modelplane.types import (
    DnsLabel,
    Duration,
    FieldPath,
    Quantity,
    parse_duration,
    parse_quantity,
)
from modelplane.upstream import KustomizePatch, KustomizeRelease, Versions

REPOSITORY = "https://github.com/kserve/modelmesh-serving"
"""ModelMesh Serving's repository (archived upstream); installs come from its release tags."""
INSTALL_PATHS = ("config/rbac/cluster-scope", "config/default")
"""Kustomize directories of a cluster-scope install, in order (as upstream's install script)."""
BUNDLED_KSERVE_CRDS = (
    "inferenceservices.serving.kserve.io",
    "servingruntimes.serving.kserve.io",
    "clusterservingruntimes.serving.kserve.io",
)
"""CRDs ModelMesh Serving bundles older copies of; KServe's release owns them."""
CONTROLLER = "modelmesh-controller"
CONTROLLER_UID = 2000
"""The user ModelMesh's controller image runs as."""
CONFIG_MAP = "model-serving-config"
MESH_OVERHEAD_CPU = 0.4
"""CPU requests ModelMesh adds to every runtime pod: mm 300m, REST proxy 50m, puller 50m."""
MESH_OVERHEAD_MEMORY = (448 + 96 + 96) * 2**20
"""Memory requests ModelMesh adds to every runtime pod: mm 448Mi, REST proxy 96Mi, puller 96Mi."""


class MeshRuntimeArgs(StrictModel):
    """Settings of one mesh runtime (a catalog runtime serving in the mesh)."""

    pods: int | None = Field(
        default=None, ge=1, le=100, description="Pods of this runtime per namespace. Default: podsPerRuntime."
    )
    memory: Quantity | None = Field(
        default=None,
        description="Memory of the runtime container (request = limit); minus memoryBuffer, what models may fill. "
        "Default: the catalog's.",
    )
    cpu: Quantity | None = Field(
        default=None, description="CPU request of the runtime container. Default: the catalog's."
    )
    pool: DnsLabel | None = Field(default=None, description="GPU pool the runtime's pods run on.")
    gpu: int = Field(default=0, ge=0, le=16, description="GPUs (or shares, or MIG devices) per runtime pod.")
    mig_profile: str | None = Field(default=None, description="MIG profile, on a mixed-strategy MIG pool.")

    @model_validator(mode="after")
    def _pool_and_gpu(self) -> MeshRuntimeArgs:
        if self.gpu and self.pool is None:
            raise ValueError(f"gpu is {self.gpu}; name the GPU pool in pool")
        if self.pool is not None and not self.gpu:
            raise ValueError(f"pool {self.pool!r} is a GPU pool but gpu is 0; set gpu or remove pool")
        return self


class ModelMeshArgs(StrictModel):
    """ModelMesh Serving settings."""

    enabled: bool = Field(
        default=False, description="Install ModelMesh Serving; models in `modelmesh` mode need it."
    )
    namespace: DnsLabel = Field(
        default="modelmesh-serving", description="Namespace of the ModelMesh controller."
    )
    controller_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="ModelMesh controller replicas (leader-elected). Default: 1 in the dev tier, 2 elsewhere.",
    )
    pods_per_runtime: int = Field(default=2, ge=1, le=100, description="Runtime pods per mesh runtime.")
    memory_buffer: Quantity = Field(
        default="128Mi", description="Runtime memory kept free of models (ModelMesh's `memBufferBytes`)."
    )
    model_load_timeout: Duration = Field(default="90s", description="How long one model load may take.")
    rest_proxy: bool = Field(default=True, description="Run the REST proxy so V2 REST works beside gRPC.")
    scale_to_zero: bool = Field(
        default=True, description="Scale a runtime's pods to zero in namespaces where no model uses it."
    )
    default_model_size: Quantity = Field(
        default="64Mi",
        description="Memory a mesh model takes when it states none in `resources.memory` (its loaded size).",
    )
    runtimes: dict[str, MeshRuntimeArgs] = Field(
        default_factory=dict,
        description="Per-runtime settings, keyed by catalog runtime (`triton`, `mlserver`): pods, memory, GPU pool.",
    )
    etcd: EtcdArgs = Field(default_factory=EtcdArgs, description="ModelMesh's etcd.")

    def runtime(self, name: str) -> MeshRuntimeArgs:
        """The settings of one mesh runtime (defaults when the stack states none)."""
        return self.runtimes.get(name) or MeshRuntimeArgs()

    def pods(self, name: str) -> int:
        """Pods of a mesh runtime per namespace."""
        return self.runtime(name).pods or self.pods_per_runtime

    @property
    def buffer_bytes(self) -> int:
        """The memory buffer in bytes."""
        return int(parse_quantity(self.memory_buffer))


def runtime_name(runtime: str) -> str:
    """The ClusterServingRuntime a catalog runtime serves the mesh as."""
    return f"modelplane-{runtime}-mesh"


def controller_replicas(args: ModelMeshArgs, tier: str) -> int:
    """ModelMesh controller replicas: the stack's, else 1 in dev and 2 elsewhere."""
    if args.controller_replicas is not None:
        return args.controller_replicas
    return 1 if tier == "dev" else 2


def runtime_memory(args: ModelMeshArgs, spec: RuntimeSpec) -> str:
    """Memory of a mesh runtime's container (request = limit)."""
    override = args.runtime(spec.name).memory
    if override is not None:
        return override
    resources = spec.mesh.resources if spec.mesh is not None and spec.mesh.resources else spec.resources
    return resources.memory


def runtime_capacity_bytes(args: ModelMeshArgs, spec: RuntimeSpec) -> int:
    """Bytes of models one runtime pod holds: container memory minus the buffer (as ModelMesh computes it)."""
    return max(0, int(parse_quantity(runtime_memory(args, spec))) - args.buffer_bytes)


def model_size_bytes(model: ModelArgs, args: ModelMeshArgs) -> int:
    """The loaded size of a mesh model: its `resources.memory`, else the mesh's default."""
    return int(parse_quantity(model.resources.memory or args.default_model_size))


def runtime_resources(
    args: ModelMeshArgs, spec: RuntimeSpec, pool: GpuPoolArgs | None
) -> dict[str, dict[str, str]]:
    """Requests and limits of a mesh runtime's container, GPUs included when it runs on a pool."""
    settings = args.runtime(spec.name)
    base = spec.mesh.resources if spec.mesh is not None and spec.mesh.resources else spec.resources
    memory = runtime_memory(args, spec)
    cpu = settings.cpu or base.cpu
    cpu_limit = base.cpu_limit if parse_quantity(base.cpu_limit) >= parse_quantity(cpu) else cpu
    requests = {"cpu": cpu, "memory": memory}
    limits = {"cpu": cpu_limit, "memory": memory}
    if pool is not None and settings.gpu:
        resource = pool.resource_name(settings.mig_profile)
        requests[resource] = limits[resource] = str(settings.gpu)
    return {"limits": dict(sorted(limits.items())), "requests": dict(sorted(requests.items()))}


def runtime_object(mesh: ModelMeshArgs, spec: RuntimeSpec, *, stack: str, pool: GpuPoolArgs | None) -> Obj:
    """The multi-model ClusterServingRuntime of one catalog runtime, placed on its GPU ``pool`` if it has one."""
    return render_runtime(
        spec,
        name=runtime_name(spec.name),
        labels=labels(stack, "runtime"),
        mesh_replicas=mesh.pods(spec.name),
        mesh_memory_buffer_bytes=mesh.buffer_bytes,
        mesh_load_timeout_ms=parse_duration(mesh.model_load_timeout) * 1000,
        mesh_resources=runtime_resources(mesh, spec, pool),
        node_selector=pool.selector if pool is not None else None,
        tolerations=pool.tolerations() if pool is not None else None,
    )


def user_config(args: ModelMeshArgs) -> dict[str, Any]:
    """The user configuration ModelMesh reads from ``model-serving-config`` (key ``config.yaml``)."""
    return {
        "podsPerRuntime": args.pods_per_runtime,
        "restProxy": {"enabled": args.rest_proxy},
        "scaleToZero": {"enabled": args.scale_to_zero, "gracePeriodSeconds": 60},
        # Plain HTTP inside the cluster: the tenant NetworkPolicy admits only the monitoring
        # namespace, and Prometheus need not skip TLS verification of a self-signed certificate.
        # Scraping is modelplane's (monitoring.py's `modelplane-mesh` ServiceMonitor): without
        # disablePrometheusOperatorSupport, ModelMesh v0.12.0 creates its own ServiceMonitor on
        # the same Service and port (controllers/service_controller.go:338-390, key in
        # pkg/config/config.go:118), and every mesh target is scraped twice.
        "metrics": {"enabled": True, "scheme": "http", "disablePrometheusOperatorSupport": True},
        "headlessService": True,
    }


def _controller_patch(args: ModelMeshArgs, tier: str) -> str:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": CONTROLLER},
        "spec": {
            "replicas": controller_replicas(args, tier),
            "template": {
                "spec": {
                    "securityContext": restricted_pod_security_context(run_as_user=CONTROLLER_UID),
                    "containers": [
                        {
                            "name": "manager",
                            "env": [{"name": "ETCD_SECRET_NAME", "value": args.etcd.secret_name}],
                            # The pod's context sets the user and the seccomp profile.
                            "securityContext": restricted_security_context(
                                read_only_root=True, seccomp=False
                            ),
                        }
                    ],
                }
            },
        },
    }
    text: str = yaml.safe_dump(patch, sort_keys=True)
    return text


def release(args: ModelMeshArgs, versions: Versions, *, tier: str, stack: str) -> KustomizeRelease:
    """ModelMesh Serving from its release tag: cluster-scope RBAC, then CRDs, controller and webhook.

    Its namespace carries the stack's upstream labels and Pod Security "restricted".
    """
    patches = [
        KustomizePatch(
            target={"kind": "CustomResourceDefinition", "name": crd},
            patch=yaml.safe_dump(
                {
                    "$patch": "delete",
                    "apiVersion": "apiextensions.k8s.io/v1",
                    "kind": "CustomResourceDefinition",
                    "metadata": {"name": crd},
                },
                sort_keys=True,
            ),
        )
        for crd in BUNDLED_KSERVE_CRDS
    ]
    patches.append(
        KustomizePatch(target={"kind": "Deployment", "name": CONTROLLER}, patch=_controller_patch(args, tier))
    )
    pss = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "audit", "warn")}
    return KustomizeRelease(
        release="modelmesh",
        namespace=args.namespace,
        namespace_labels=dict(sorted((labels(stack, "upstream") | pss).items())),
        repository=REPOSITORY,
        ref=versions.modelmesh,
        paths=INSTALL_PATHS,
        patches=tuple(patches),
        depends_on=("cert-manager", "kserve-crd"),
        needed_by_groups=("serving.kserve.io",),
        wave=2,
    )


def objects(
    args: ModelMeshArgs, *, stack: str, tier: str, monitoring_namespace: str = "monitoring"
) -> list[Obj]:
    """The mesh's own objects: its user configuration, a controller PDB, and its etcd."""
    common = labels(stack, "modelmesh")
    result: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": CONFIG_MAP, "namespace": args.namespace, "labels": common},
            "data": {"config.yaml": yaml.safe_dump(user_config(args), sort_keys=True)},
        }
    ]
    if controller_replicas(args, tier) > 1:
        result.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": CONTROLLER, "namespace": args.namespace, "labels": common},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"control-plane": CONTROLLER}}},
            }
        )
    result += mesh_etcd.objects(
        args.etcd, namespace=args.namespace, stack=stack, monitoring_namespace=monitoring_namespace
    )
    return result


def problems(
    mesh: ModelMeshArgs,
    *,
    tier: str,
    catalog: Mapping[str, RuntimeSpec],
    pools: list[GpuPoolArgs],
) -> list[Problem]:
    """Mesh problems at ``modelMesh``: etcd for the tier, mesh runtimes against the catalog and GPU pools."""
    result: list[Problem] = []
    if not mesh.enabled:
        return result
    if mesh.etcd.mode == "quickstart" and tier != "dev":
        result.append(
            Problem(
                ("modelMesh", "etcd", "mode"),
                f"the quickstart etcd (one member, no persistence, no TLS) is for "
                f"the dev tier only; this stack's tier is {tier!r}: use statefulset or external",
                "quickstart",
            )
        )
    if mesh.etcd.mode == "statefulset" and mesh.etcd.members < 3 and tier != "dev":
        result.append(
            Problem(
                ("modelMesh", "etcd", "members"),
                f"the {tier} tier needs an etcd quorum that survives losing a member: 3 or more members "
                "(or mode external)",
                mesh.etcd.members,
            )
        )
    mesh_runtimes = sorted(n for n, r in catalog.items() if r.mesh is not None)
    by_name = {p.name: p for p in pools}
    for name, settings in sorted(mesh.runtimes.items()):
        path: FieldPath = ("modelMesh", "runtimes", name)
        spec = catalog.get(name)
        if spec is None or spec.mesh is None:
            result.append(
                Problem(path, f"not a mesh runtime (mesh runtimes: {', '.join(mesh_runtimes)})", name)
            )
            continue
        if settings.pool is not None:
            pool = by_name.get(settings.pool)
            if pool is None:
                known = ", ".join(sorted(by_name)) or "none declared"
                result.append(
                    Problem((*path, "pool"), f"unknown GPU pool (gpuPools: {known})", settings.pool)
                )
            else:
                if not spec.gpu_capable:
                    result.append(Problem((*path, "gpu"), f"runtime {name!r} cannot use GPUs", settings.gpu))
                result += gpu_request_problems(
                    path,
                    gpu=settings.gpu,
                    mig_profile=settings.mig_profile,
                    exclusive_gpu_memory=False,
                    pool=pool,
                )
        memory = int(parse_quantity(runtime_memory(mesh, spec)))
        if memory <= mesh.buffer_bytes:
            result.append(
                Problem(
                    (*path, "memory"),
                    f"runtime memory {runtime_memory(mesh, spec)} leaves nothing for models after "
                    f"modelMesh.memoryBuffer {mesh.memory_buffer}",
                    runtime_memory(mesh, spec),
                )
            )
    return result


def model_problems(
    model: ModelArgs, *, mesh: ModelMeshArgs, spec: RuntimeSpec, path: FieldPath
) -> list[Problem]:
    """Whether one mesh model fits a pod of its runtime; ``path`` is the model's."""
    capacity = runtime_capacity_bytes(mesh, spec)
    if model_size_bytes(model, mesh) <= capacity:
        return []
    size = model.resources.memory or mesh.default_model_size
    return [
        Problem(
            (*path, "resources", "memory"),
            f"the model takes {size} but a {runtime_name(model.runtime)} pod holds {capacity // 2**20}Mi of models "
            f"(memory {runtime_memory(mesh, spec)} minus buffer {mesh.memory_buffer}); raise "
            f"modelMesh.runtimes.{model.runtime}.memory, or serve it in knative or standard mode",
            size,
        )
    ]


def warnings(mesh: ModelMeshArgs) -> list[str]:
    """Things that work but a reviewer should see."""
    if not mesh.enabled:
        return []
    # That upstream is archived is said once, in the docs and the field's description; a
    # warning on every render and preview would teach reviewers to ignore warnings.
    result: list[str] = []
    if mesh.etcd.mode == "quickstart":
        result.append(
            "modelMesh.etcd: quickstart etcd is a single member without TLS or persistence; losing its pod loses "
            "every model registration (dev tier only)"
        )
    return result

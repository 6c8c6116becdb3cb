"""LLM services: KServe's LLMInferenceService, the llm-d based serving of large language models.

One LLM service is a vLLM deployment behind llm-d's router: an endpoint picker (the scheduler)
that routes each request by queue, KV-cache and prefix affinity, a Gateway API route, optional
prefill/decode disaggregation (a prefill pool beside the decode pool), LoRA adapters served
beside the base model, and multi-node workers for data, expert or pipeline parallelism. The
LLMInferenceService controller of the pinned KServe builds the pods from its well-known
configs (``LLMInferenceServiceConfig`` presets); a stack states what differs: the model, its
GPUs and pool, parallelism, replicas or a scaling intent, the router, adapters.

A scaling intent on vLLM's own metrics (queue, tokens per second, KV-cache use) becomes a KEDA
ScaledObject on the service's decode workload, with the PromQL of ``modelplane.promql``; the
service then leaves its replicas to KEDA (the controller keeps a workload's replicas when the
service names none: pkg/controller/v1alpha2/llmisvc/workload.go:215-236). The capacity plan
counts every GPU pod (``gpu_pods``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.container import EnvVar, Probe
from modelplane.errors import ProblemError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.kube import LABEL_TENANT, LABEL_VERSION, Obj, labels, restricted_pod_security_context
from modelplane.overrides import metadata_problems
from modelplane.placement import PlacementArgs
from modelplane.promql import llm_queries, llm_selector
from modelplane.storage import uri_problem
from modelplane.types import (
    DnsLabel,
    DnsSubdomain,
    FieldPath,
    ImageRef,
    LabelKey,
    LabelValue,
    ModelName,
    Quantity,
    parse_quantity,
)

LABEL_LLM = "modelplane.dev/llm"
LlmMetric = Literal["queue-depth", "tokens-per-second", "kv-cache", "concurrency"]

DEFAULT_LLM_TARGETS: dict[str, int] = {
    "queue-depth": 5,
    "tokens-per-second": 2000,
    "kv-cache": 80,
    "concurrency": 16,
}
"""Targets per replica when a scaling intent names a metric but none (kv-cache is a percentage)."""

MAIN_CONTAINER = "main"
"""The container of the presets that runs vLLM; the service's own settings merge into it by name."""


def _uri(value: str, path: FieldPath) -> list[Problem]:
    why = uri_problem(value)
    return [Problem(path, why, None if "credentials" in why else value)] if why else []


class LoraAdapter(StrictModel):
    """A LoRA adapter served beside the base model."""

    name: str = Field(pattern=r"^[A-Za-z0-9][-._/A-Za-z0-9]*$", description="Adapter name clients ask for.")
    uri: str = Field(description="Where the adapter is (hf://, pvc://, s3://, ...).")

    @model_validator(mode="after")
    def _valid(self) -> LoraAdapter:
        found = _uri(self.uri, ("uri",))
        if self.name in (".", ".."):
            found.append(Problem(("name",), "must not be . or .. (KServe refuses path traversal)", self.name))
        if found:
            raise ProblemError(found)
        return self


class LoraArgs(StrictModel):
    """LoRA adapters and vLLM's LoRA limits."""

    adapters: list[LoraAdapter] = Field(default_factory=list, description="The adapters. Default: none.")
    max_rank: int | None = Field(default=None, ge=1, description="Highest adapter rank. Default: vLLM's.")
    max_adapters: int | None = Field(default=None, ge=1, description="Adapters on the GPU at once.")
    max_cpu_adapters: int | None = Field(default=None, ge=1, description="Adapters kept in CPU memory.")


class LlmModel(StrictModel):
    """The model served."""

    uri: str = Field(
        description="Where the weights are (hf://, pvc://, s3://, gs://, oci+native://; an oci:// modelcar is "
        "refused in tenant namespaces)."
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][-._/A-Za-z0-9]*$",
        description="Name clients ask for (`Qwen/Qwen2.5-7B-Instruct`). Default: the service's name.",
    )
    lora: LoraArgs | None = Field(default=None, description="LoRA adapters. Default: none.")

    @model_validator(mode="after")
    def _valid(self) -> LlmModel:
        found = _uri(self.uri, ("uri",))
        base = self.name
        if self.lora is not None:
            seen: dict[str, int] = {}
            for i, adapter in enumerate(self.lora.adapters):
                if adapter.name in seen:
                    found.append(
                        Problem(
                            ("lora", "adapters", i, "name"),
                            f"duplicate (also adapters[{seen[adapter.name]}])",
                            adapter.name,
                        )
                    )
                if base is not None and adapter.name == base:
                    found.append(
                        Problem(
                            ("lora", "adapters", i, "name"),
                            "must differ from the base model's name",
                            adapter.name,
                        )
                    )
                seen.setdefault(adapter.name, i)
        if found:
            raise ProblemError(found)
        return self


class Parallelism(StrictModel):
    """How one replica spreads over GPUs and nodes (vLLM's parallelism)."""

    tensor: int | None = Field(default=None, ge=1, description="GPUs a layer is split over (per pod).")
    pipeline: int | None = Field(default=None, ge=1, description="Pipeline stages, one pod each.")
    data: int | None = Field(default=None, ge=1, description="Data-parallel ranks in all.")
    data_local: int | None = Field(default=None, ge=1, description="Data-parallel ranks per pod.")
    expert: bool = Field(default=False, description="Expert parallelism for mixture-of-experts models.")

    @model_validator(mode="after")
    def _as_kserve(self) -> Parallelism:
        # v1alpha2 llm_inference_service_validation.go:256-333 validateWorkloadParallelism.
        found: list[Problem] = []
        if (self.data is None) != (self.data_local is None):
            found.append(
                Problem(("dataLocal" if self.data else "data",), "data and dataLocal are set together")
            )
        if self.pipeline is not None and (self.data is not None or self.data_local is not None):
            found.append(
                Problem(
                    ("pipeline",), "cannot be combined with data parallelism (data, dataLocal)", self.pipeline
                )
            )
        if self.data and self.data_local and self.data % self.data_local:
            found.append(Problem(("data",), f"must be a multiple of dataLocal {self.data_local}", self.data))
        if found:
            raise ProblemError(found)
        return self

    @property
    def pods(self) -> int:
        """Pods one replica spans: data / dataLocal ranks, or one per pipeline stage."""
        if self.data and self.data_local:
            return self.data // self.data_local
        return self.pipeline or 1

    def manifest(self) -> dict[str, Any]:
        """The parallelism as KServe spells it."""
        data: dict[str, Any] = self.model_dump(by_alias=True, exclude_defaults=True)
        return data


class LlmResources(StrictModel):
    """What one pod of the service needs."""

    cpu: Quantity = Field(default="2", description="CPU request. Default: 2.")
    memory: Quantity = Field(default="16Gi", description="Memory request. Default: 16Gi.")
    cpu_limit: Quantity | None = Field(default=None, description="CPU limit. Default: twice the request.")
    memory_limit: Quantity | None = Field(
        default=None, description="Memory limit. Default: twice the request."
    )
    ephemeral_storage: Quantity | None = Field(
        default=None, description="Node-local scratch space per pod (request and limit). Default: none."
    )
    gpu: int = Field(default=0, ge=0, le=16, description="GPUs per pod. Default: 0 (vLLM's CPU build).")
    mig_profile: str | None = Field(default=None, description="MIG profile on a mixed-strategy MIG pool.")
    pool: DnsLabel | None = Field(
        default=None, description="GPU pool the pods run on; required when gpu > 0."
    )

    @model_validator(mode="after")
    def _pool(self) -> LlmResources:
        if bool(self.gpu) != (self.pool is not None):
            raise ProblemError(
                [Problem(("pool",), "give gpu and pool together (a CPU service names no pool)", self.pool)]
            )
        return self


class LlmScaling(StrictModel):
    """Replicas that follow one of vLLM's own metrics, through KEDA."""

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Fewest replicas. Default: 1.")
    max_replicas: int = Field(default=4, ge=1, le=1000, description="Most replicas. Default: 4.")
    metric: LlmMetric = Field(
        default="queue-depth",
        description="queue-depth (waiting requests), tokens-per-second (generated), kv-cache (percent in use) or "
        "concurrency (running requests). Default: queue-depth.",
    )
    target: int | None = Field(default=None, ge=1, description="Target per replica. Default: per metric.")

    @model_validator(mode="after")
    def _bounds(self) -> LlmScaling:
        found: list[Problem] = []
        if self.min_replicas > self.max_replicas:
            found.append(
                Problem(
                    ("minReplicas",), f"is greater than maxReplicas {self.max_replicas}", self.min_replicas
                )
            )
        if self.metric == "kv-cache" and self.target is not None and self.target > 100:
            found.append(Problem(("target",), "kv-cache is a percentage; use 1-100", self.target))
        if found:
            raise ProblemError(found)
        return self


class GatewayRef(StrictModel):
    """An existing Gateway the service's route attaches to."""

    name: DnsLabel = Field(description="Gateway name.")
    namespace: DnsLabel = Field(description="Gateway namespace.")


class LlmRouter(StrictModel):
    """llm-d's routing in front of the vLLM pods."""

    scheduler: bool = Field(
        default=True,
        description="Route through llm-d's endpoint picker (queue-, KV-cache- and prefix-aware). Default: true.",
    )
    scheduler_config: dict[str, Any] | None = Field(
        default=None,
        description="The endpoint picker's own configuration (an `EndpointPickerConfig`), inline.",
    )
    scheduler_replicas: int | None = Field(default=None, ge=1, description="Endpoint picker replicas.")
    route: bool = Field(default=True, description="Create the Gateway API route. Default: true.")
    gateway: bool = Field(
        default=True, description="Attach to the platform's inference gateway. Default: true."
    )
    gateway_refs: list[GatewayRef] = Field(
        default_factory=list, description="Attach to these Gateways instead."
    )

    @model_validator(mode="after")
    def _consistent(self) -> LlmRouter:
        found: list[Problem] = []
        if (self.scheduler_config is not None or self.scheduler_replicas is not None) and not self.scheduler:
            found.append(
                Problem(("scheduler",), "schedulerConfig and schedulerReplicas need scheduler: true", False)
            )
        if self.gateway_refs and not self.gateway:
            found.append(Problem(("gateway",), "gatewayRefs need gateway: true", False))
        if found:
            raise ProblemError(found)
        return self


class KvCacheTier(StrictModel):
    """A tier of KV-cache offloading beyond CPU memory: node-local scratch space."""

    empty_dir_size: Quantity = Field(description="Size of the emptyDir that holds offloaded blocks.")


class KvCacheOffloading(StrictModel):
    """KV-cache blocks offloaded from GPU memory to CPU memory and beyond."""

    cpu: Quantity = Field(description="CPU memory for offloaded blocks.")
    eviction_policy: Literal["lru", "fifo"] | None = Field(default=None, description="Eviction policy.")
    secondary: list[KvCacheTier] = Field(default_factory=list, description="Further tiers. Default: none.")

    def manifest(self) -> dict[str, Any]:
        """KServe's ``kvCacheOffloading`` spec."""
        data: dict[str, Any] = {"cpu": self.cpu}
        if self.eviction_policy is not None:
            data["evictionPolicy"] = self.eviction_policy
        if self.secondary:
            data["secondary"] = [
                {"fileSystem": {"emptyDir": {"size": t.empty_dir_size}}} for t in self.secondary
            ]
        return data


class PrefillArgs(StrictModel):
    """The prefill pool of a disaggregated service: prompts are processed here, tokens generated by decode."""

    replicas: int = Field(default=1, ge=1, le=1000, description="Prefill replicas. Default: 1.")
    parallelism: Parallelism | None = Field(default=None, description="Prefill parallelism. Default: none.")
    resources: LlmResources | None = Field(default=None, description="Per prefill pod. Default: as decode.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment of the prefill vLLM container.")


class LlmArgs(PlacementArgs):
    """An LLM service (KServe's LLMInferenceService)."""

    name: ModelName = Field(description="Service name.")
    tenant: DnsLabel = Field(description="Owning tenant; the service lives in its namespace.")
    version: LabelValue = Field(description="Version label; a change updates the service in place.")
    model: LlmModel = Field(description="The model and its adapters.")
    replicas: int | None = Field(
        default=None, ge=0, le=1000, description="Fixed replicas. Default: 1 (or scaling)."
    )
    scaling: LlmScaling | None = Field(
        default=None, description="Replicas that follow vLLM's metrics (KEDA)."
    )
    parallelism: Parallelism | None = Field(
        default=None, description="Parallelism of a replica. Default: none."
    )
    resources: LlmResources = Field(default_factory=LlmResources, description="Per pod.")
    prefill: PrefillArgs | None = Field(default=None, description="Disaggregated prefill. Default: none.")
    router: LlmRouter = Field(
        default_factory=LlmRouter, description="Routing. Default: scheduler, route, gateway."
    )
    base_refs: list[DnsSubdomain] = Field(
        default_factory=list,
        description="LLMInferenceServiceConfigs to build on (presets). Default: KServe's.",
    )
    image: ImageRef | None = Field(default=None, description="vLLM image. Default: the preset's llm-d build.")
    args: list[str] = Field(default_factory=list, description="Extra vLLM arguments. Default: none.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment of the vLLM container.")
    liveness_probe: Probe | None = Field(default=None, description="Liveness probe. Default: the preset's.")
    readiness_probe: Probe | None = Field(default=None, description="Readiness probe. Default: the preset's.")
    kv_cache_offloading: KvCacheOffloading | None = Field(default=None, description="KV-cache offloading.")
    service_account_name: DnsSubdomain | None = Field(
        default=None,
        description="ServiceAccount of the pods (one that carries the hub token). Default: none.",
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Extra labels on the service."
    )
    annotations: dict[LabelKey, str] = Field(
        default_factory=dict, description="Extra annotations on the service."
    )

    @model_validator(mode="after")
    def _shape(self) -> LlmArgs:
        found = metadata_problems(dict(self.labels), dict(self.annotations))
        if self.replicas is not None and self.scaling is not None:
            found.append(
                Problem(("scaling",), "give replicas or scaling, not both (KServe: they are exclusive)")
            )
        if (
            self.prefill is not None
            and self.prefill.resources is not None
            and self.prefill.resources.pool
            not in (
                None,
                self.resources.pool,
            )
        ):
            found.append(
                Problem(
                    ("prefill", "resources", "pool"),
                    "the prefill pool runs on the decode pool's GPUs",
                    self.prefill.resources.pool,
                )
            )
        if found:
            raise ProblemError(found)
        return self

    @property
    def pods_per_replica(self) -> int:
        """Decode pods of one replica (one, or a leader and its workers)."""
        return self.parallelism.pods if self.parallelism is not None else 1

    @property
    def multi_node(self) -> bool:
        """Whether a replica spans several pods (a LeaderWorkerSet)."""
        return self.pods_per_replica > 1


def gpu_pods(llm: LlmArgs, level: Literal["min", "max"]) -> list[tuple[int, int]]:
    """(GPUs per pod, pods) of the service at minimum or maximum replicas: decode, then prefill."""
    if llm.scaling is not None:
        replicas = llm.scaling.min_replicas if level == "min" else llm.scaling.max_replicas
    else:
        replicas = 1 if llm.replicas is None else llm.replicas
    result = [(llm.resources.gpu, replicas * llm.pods_per_replica)]
    if llm.prefill is not None:
        prefill = llm.prefill
        gpu = (prefill.resources or llm.resources).gpu
        pods = prefill.parallelism.pods if prefill.parallelism is not None else 1
        result.append((gpu, prefill.replicas * pods))
    return [(gpu, pods) for gpu, pods in result if pods]


_NUMBER = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?)(?P<unit>[A-Za-z]*)$")


def _twice(quantity: str) -> str:
    """A quantity doubled, in its own unit (``16Gi`` -> ``32Gi``)."""
    match = _NUMBER.fullmatch(quantity)
    if match is None:
        return format(parse_quantity(quantity) * 2, "f").rstrip("0").rstrip(".")
    number = (Decimal(match.group("num")) * 2).normalize()
    return f"{format(number, 'f')}{match.group('unit')}"


def _resources(res: LlmResources, pool: GpuPoolArgs | None) -> dict[str, dict[str, str]]:
    requests = {"cpu": res.cpu, "memory": res.memory}
    limits = {"cpu": res.cpu_limit or _twice(res.cpu), "memory": res.memory_limit or _twice(res.memory)}
    if res.ephemeral_storage is not None:
        requests["ephemeral-storage"] = limits["ephemeral-storage"] = res.ephemeral_storage
    if res.gpu and pool is not None:
        resource = pool.resource_name(res.mig_profile)
        requests[resource] = limits[resource] = str(res.gpu)
    return {"limits": dict(sorted(limits.items())), "requests": dict(sorted(requests.items()))}


def _pod(
    llm: LlmArgs,
    res: LlmResources,
    pool: GpuPoolArgs | None,
    *,
    env: list[EnvVar],
    main: bool,
) -> dict[str, Any]:
    """A pod template: the vLLM container's settings and the pod's placement and security."""
    container: dict[str, Any] = {"name": MAIN_CONTAINER, "resources": _resources(res, pool)}
    if main:
        if llm.image is not None:
            container["image"] = llm.image
        if llm.args:
            container["args"] = list(llm.args)
        for name in ("liveness", "readiness"):
            probe: Probe | None = getattr(llm, f"{name}_probe")
            if probe is not None:
                container[f"{name}Probe"] = probe.manifest(8000)
    if env:
        container["env"] = [v.manifest() for v in env]
    pod: dict[str, Any] = {
        "containers": [container],
        "securityContext": restricted_pod_security_context(),
        **llm.placement_manifest(),
    }
    if pool is not None:
        pod["nodeSelector"] = dict(sorted((pod.get("nodeSelector", {}) | pool.selector).items()))
        pod["tolerations"] = pool.tolerations() + pod.get("tolerations", [])
        pod["priorityClassName"] = pool.priority_class_name
    if llm.service_account_name is not None:
        pod["serviceAccountName"] = llm.service_account_name
    return pod


def service_spec(llm: LlmArgs, *, pool: GpuPoolArgs | None) -> dict[str, Any]:
    """The LLMInferenceService's spec (v1alpha2)."""
    model: dict[str, Any] = {"uri": llm.model.uri, "name": llm.model.name or llm.name}
    if llm.model.lora is not None:
        model["lora"] = llm.model.lora.model_dump(by_alias=True, exclude_none=True)
    spec: dict[str, Any] = {"model": model}
    if llm.scaling is None:
        spec["replicas"] = 1 if llm.replicas is None else llm.replicas
    if llm.parallelism is not None:
        spec["parallelism"] = llm.parallelism.manifest()
    spec["template"] = _pod(llm, llm.resources, pool, env=list(llm.env), main=True)
    if llm.multi_node:
        spec["worker"] = _pod(llm, llm.resources, pool, env=list(llm.env), main=True)
    if llm.prefill is not None:
        prefill = llm.prefill
        res = prefill.resources or llm.resources
        part: dict[str, Any] = {"replicas": prefill.replicas}
        if prefill.parallelism is not None:
            part["parallelism"] = prefill.parallelism.manifest()
        part["template"] = _pod(llm, res, pool, env=list(prefill.env), main=False)
        if prefill.parallelism is not None and prefill.parallelism.pods > 1:
            part["worker"] = _pod(llm, res, pool, env=list(prefill.env), main=False)
        spec["prefill"] = part
    router: dict[str, Any] = {}
    if llm.router.scheduler:
        scheduler: dict[str, Any] = {}
        if llm.router.scheduler_config is not None:
            scheduler["config"] = {"inline": llm.router.scheduler_config}
        if llm.router.scheduler_replicas is not None:
            scheduler["replicas"] = llm.router.scheduler_replicas
        router["scheduler"] = scheduler
    if llm.router.route:
        router["route"] = {}
    if llm.router.gateway:
        refs = [ref.model_dump() for ref in llm.router.gateway_refs]
        router["gateway"] = {"refs": refs} if refs else {}
    if router:
        spec["router"] = router
    if llm.base_refs:
        spec["baseRefs"] = [{"name": name} for name in llm.base_refs]
    if llm.kv_cache_offloading is not None:
        spec["kvCacheOffloading"] = llm.kv_cache_offloading.manifest()
    return spec


def scaled_object(llm: LlmArgs, *, stack: str, namespace: str, prometheus: str) -> Obj:
    """The KEDA ScaledObject that scales the service's decode workload on vLLM's metric."""
    scaling = llm.scaling
    assert scaling is not None
    target = scaling.target or DEFAULT_LLM_TARGETS[scaling.metric]
    query = llm_queries(llm_selector(namespace, llm.name), "1m")[scaling.metric]
    if llm.multi_node:
        # llmisvc workload_multi_node.go:664 names the LeaderWorkerSet `<name>-kserve-mn`.
        ref = {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "name": f"{llm.name}-kserve-mn",
        }
    else:
        # llmisvc workload_single_node.go:511-513 names the decode Deployment `<name>-kserve`.
        ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{llm.name}-kserve"}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": f"{llm.name}-llm",
            "namespace": namespace,
            "labels": labels(stack, "model", **{LABEL_LLM: llm.name, LABEL_TENANT: llm.tenant}),
        },
        "spec": {
            "scaleTargetRef": ref,
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {"serverAddress": prometheus, "query": query, "threshold": str(target)},
                }
            ],
        },
    }


def objects(
    llm: LlmArgs, *, stack: str, namespace: str, pool: GpuPoolArgs | None, prometheus: str
) -> list[Obj]:
    """The service's LLMInferenceService, and the ScaledObject of its scaling intent."""
    own = labels(
        stack, "model", **{LABEL_LLM: llm.name, LABEL_TENANT: llm.tenant, LABEL_VERSION: llm.version}
    )
    meta: dict[str, Any] = {
        "name": llm.name,
        "namespace": namespace,
        "labels": dict(sorted((own | dict(llm.labels)).items())),
    }
    if llm.annotations:
        meta["annotations"] = dict(sorted(llm.annotations.items()))
    result: list[Obj] = [
        {
            "apiVersion": "serving.kserve.io/v1alpha2",
            "kind": "LLMInferenceService",
            "metadata": meta,
            "spec": service_spec(llm, pool=pool),
        }
    ]
    if llm.scaling is not None:
        result.append(scaled_object(llm, stack=stack, namespace=namespace, prometheus=prometheus))
    return result


def placement_problems(llm: LlmArgs, pool: GpuPoolArgs | None, *, path: FieldPath) -> list[Problem]:
    """The pool sets its pods' priority class; a conflicting node selector cannot be met."""
    if pool is None:
        return []
    found: list[Problem] = []
    if llm.priority_class_name is not None:
        found.append(
            Problem(
                (*path, "priorityClassName"),
                f"GPU pool {pool.name!r} sets the priority class; remove it",
                llm.priority_class_name,
            )
        )
    for key, value in llm.node_selector.items():
        if pool.selector.get(key, value) != value:
            found.append(
                Problem((*path, "nodeSelector", key), f"conflicts with GPU pool {pool.name!r}", value)
            )
    return found


METRICS_PORT = 8000
"""vLLM's port in the presets, serving its API and /metrics (kserve-config-llm-template: --port 8000)."""


def pod_monitor(namespace: str, *, stack: str, interval: str) -> Obj:
    """Scraping of every LLM service's vLLM pods in a namespace, labelled by service and role."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "modelplane-llm", "namespace": namespace, "labels": labels(stack, "monitoring")},
        "spec": {
            # The workload pods the LLMInferenceService controller labels (llmisvc workload_single_node.go:95-97).
            "selector": {
                "matchLabels": {
                    "app.kubernetes.io/part-of": "llminferenceservice",
                    "kserve.io/component": "workload",
                }
            },
            "podMetricsEndpoints": [
                {
                    "portNumber": METRICS_PORT,
                    "path": "/metrics",
                    "interval": interval,
                    "relabelings": [
                        {
                            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                            "targetLabel": "llm_service",
                        },
                        {
                            "sourceLabels": ["__meta_kubernetes_pod_label_llm_d_ai_role"],
                            "targetLabel": "llm_role",
                        },
                    ],
                }
            ],
        },
    }

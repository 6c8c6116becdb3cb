"""The capacity plan: will this stack fit its GPU pools, its mesh and its cluster, and what does it cost?

Pure and deterministic. Every model is placed at its minimum and at its maximum replicas
onto the nodes of its GPU pool (each replica asks for whole GPUs, time-sliced shares or MIG
devices; a pod cannot span nodes), every mesh model into the pods of its mesh runtime
(a pod holds its container memory minus ModelMesh's buffer; one copy of every model at
minimum, the two copies ModelMesh keeps of a recently used model at maximum), and every pod
against the kubelet's pod limit and the pod IPs it takes. Packing is best-fit decreasing
over item groups, exact enough to stay within a few percent of the lower bound
(``bench/run.py`` measures it) and fast enough for 100,000 models.

A stack that cannot fit at minimum replicas is refused (``CapacityError``, with what is
short); one that cannot fit at maximum gets warnings. ``summary(args)`` is the JSON-ready
dict the PR preview shows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from modelplane import llm, model_mesh
from modelplane.errors import CapacityError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.model_mesh import model_size_bytes, runtime_capacity_bytes
from modelplane.packing import lower_bound, pack
from modelplane.runtimes import RuntimeSpec, catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.tenant import quota_resources

Level = Literal["min", "max"]
LEVELS: tuple[Level, Level] = ("min", "max")
DEFAULT_MAX_PODS_PER_NODE = 110
"""The kubelet's default pod limit per node."""
ISVC_OVERHEAD_CPU = 0.5
"""CPU one InferenceService per model costs beyond the model itself (queue proxy, agent, probes)."""
ISVC_OVERHEAD_MEMORY = 0.5 * 10**9
"""Memory one InferenceService per model costs beyond the model itself, in bytes."""


# --- the plan --------------------------------------------------------------------------------


@dataclass
class PoolLevel:
    """One pool at one level (minimum or maximum replicas)."""

    nodes: int = 0
    lower_bound_nodes: int = 0
    gpus: int = 0
    units: dict[str, int] = field(default_factory=dict)
    pods: int = 0


@dataclass
class PoolPlan:
    """What one GPU pool must hold."""

    name: str
    product: str
    sharing: str
    provisioner: str
    gpus_per_node: int
    node_capacity: dict[str, int]
    max_pods_per_node: int
    min_nodes: int
    node_limit: int
    levels: dict[str, PoolLevel] = field(default_factory=dict)


@dataclass
class MeshRuntimePlan:
    """One mesh runtime in one namespace: its models against its pods."""

    namespace: str
    runtime: str
    models: int
    model_bytes: int
    pod_capacity_bytes: int
    pods: int
    pods_needed: dict[str, int] = field(default_factory=dict)
    pool: str | None = None


@dataclass
class QuotaPlan:
    """One tenant's GPU quota on one resource against what its models request."""

    tenant: str
    resource: str
    limit: int
    used: dict[str, int] = field(default_factory=dict)


@dataclass
class Plan:
    """The capacity plan of a stack."""

    stack: str
    pools: list[PoolPlan] = field(default_factory=list)
    mesh: list[MeshRuntimePlan] = field(default_factory=list)
    quotas: list[QuotaPlan] = field(default_factory=list)
    pods: dict[str, int] = field(default_factory=dict)
    savings: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fits_max: bool = True

    @property
    def fits_min(self) -> bool:
        """Whether the stack fits at minimum replicas."""
        return not self.errors

    def short(self, level: Level, message: str) -> None:
        """Record a shortfall: an error at minimum replicas, a warning at maximum."""
        if level == "min":
            self.errors.append(message)
        else:
            self.warnings.append(message)
            self.fits_max = False


def _replicas(args: ServingPlatformArgs, level: Level) -> list[tuple[int, int]]:
    """(model index, replicas) of every non-mesh model at a level."""
    result = []
    for i, model in enumerate(args.models):
        if args.mode(model) == "modelmesh":
            continue
        result.append((i, model.scaling.min_replicas if level == "min" else model.scaling.max_replicas))
    return result


def _mesh_groups(args: ServingPlatformArgs) -> dict[tuple[str, str], list[int]]:
    """(namespace, runtime) -> the indexes of its mesh models."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, model in enumerate(args.models):
        if args.mode(model) == "modelmesh":
            groups[(args.tenant(model.tenant).namespace_name, model.runtime)].append(i)
    return dict(sorted(groups.items()))


def _pool_items(
    args: ServingPlatformArgs, pool: GpuPoolArgs, level: Level, mesh: dict[tuple[str, str], list[int]]
) -> tuple[list[tuple[str, int, int]], dict[str, dict[str, int]]]:
    """Item groups placed on a pool at a level, and units per (tenant namespace, resource)."""
    groups: list[tuple[str, int, int]] = []
    by_namespace: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for i, replicas in _replicas(args, level):
        model = args.models[i]
        if model.resources.pool != pool.name or not replicas:
            continue
        resource = pool.resource_name(model.resources.mig_profile)
        # A multi-node replica is a head pod and workers, each with the model's GPUs.
        pods = replicas * (model.workers.total_gpus // model.resources.gpu if model.workers else 1)
        groups.append((resource, model.resources.gpu, pods))
        by_namespace[args.tenant(model.tenant).namespace_name][resource] += model.resources.gpu * pods
    for service in args.llms:
        if service.resources.pool != pool.name:
            continue
        resource = pool.resource_name(service.resources.mig_profile)
        for gpu, pods in llm.gpu_pods(service, level):
            if gpu:
                groups.append((resource, gpu, pods))
                by_namespace[args.tenant(service.tenant).namespace_name][resource] += gpu * pods
    for namespace, runtime in mesh:
        settings = args.model_mesh.runtime(runtime)
        if settings.pool != pool.name:
            continue
        resource = pool.resource_name(settings.mig_profile)
        pods = args.model_mesh.pods(runtime)
        groups.append((resource, settings.gpu, pods))
        by_namespace[namespace][resource] += settings.gpu * pods
    return groups, by_namespace


def _plan_pool(
    args: ServingPlatformArgs,
    pool: GpuPoolArgs,
    mesh: dict[tuple[str, str], list[int]],
    usage: dict[str, Any],
) -> PoolPlan:
    plan = PoolPlan(
        name=pool.name,
        product=pool.product,
        sharing=pool.sharing.mode,
        provisioner=pool.provisioner,
        gpus_per_node=pool.gpus_per_node,
        node_capacity=pool.node_capacity(),
        max_pods_per_node=pool.max_pods_per_node,
        min_nodes=pool.min_nodes,
        node_limit=pool.node_limit,
    )
    capacity = pool.node_capacity()
    for level in LEVELS:
        groups, by_namespace = _pool_items(args, pool, level, mesh)
        nodes, _ = pack(capacity, pool.max_pods_per_node, groups)
        units: dict[str, int] = defaultdict(int)
        for resource, size, count in groups:
            units[resource] += size * count
        nodes = max(nodes, pool.min_nodes)
        plan.levels[level] = PoolLevel(
            nodes=nodes,
            lower_bound_nodes=max(lower_bound(capacity, pool.max_pods_per_node, groups), pool.min_nodes),
            gpus=nodes * pool.gpus_per_node,
            units=dict(sorted(units.items())),
            pods=sum(count for _, _, count in groups),
        )
        for namespace, per_resource in by_namespace.items():
            for resource, n in per_resource.items():
                usage[level][(namespace, resource)] += n
    return plan


def _plan_mesh(args: ServingPlatformArgs, catalog: Mapping[str, RuntimeSpec]) -> list[MeshRuntimePlan]:
    mesh = args.model_mesh
    result = []
    for (namespace, runtime), indexes in _mesh_groups(args).items():
        spec = catalog[runtime]
        capacity = runtime_capacity_bytes(mesh, spec)
        sizes: dict[int, int] = defaultdict(int)
        for i in indexes:
            sizes[model_size_bytes(args.models[i], mesh)] += 1
        plan = MeshRuntimePlan(
            namespace=namespace,
            runtime=runtime,
            models=len(indexes),
            model_bytes=sum(s * n for s, n in sizes.items()),
            pod_capacity_bytes=capacity,
            pods=mesh.pods(runtime),
            pool=mesh.runtime(runtime).pool,
        )
        memory = {"memory": max(1, capacity)}
        for level, copies in (("min", 1), ("max", 2)):
            needed, _ = pack(memory, 1 << 30, [("memory", s, n * copies) for s, n in sorted(sizes.items())])
            # a model has at most one copy per pod, so two copies need two pods
            plan.pods_needed[level] = max(needed, copies if indexes else 0)
        result.append(plan)
    return result


def _shortfall(pool: PoolPlan, level: Level) -> str:
    lv = pool.levels[level]
    short = lv.nodes - pool.node_limit
    if pool.provisioner == "karpenter":
        limit_kind = (
            "its Karpenter NodePool limit (maxNodes)"
            if pool.node_limit != pool.min_nodes
            else ("its static Karpenter NodePool (minNodes)")
        )
    else:
        limit_kind = (
            "its node group (maxNodes)" if pool.node_limit != pool.min_nodes else "its node group (minNodes)"
        )
    units = ", ".join(f"{n} {r}" for r, n in lv.units.items()) or "nothing"
    return (
        f"pool {pool.name!r} needs {lv.nodes} nodes ({lv.gpus} GPUs) at {level}imum replicas for {units}, "
        f"but {limit_kind} is {pool.node_limit}: short {short} node(s), {short * pool.gpus_per_node} GPUs"
    )


def plan(
    args: ServingPlatformArgs,
    *,
    catalog: Mapping[str, RuntimeSpec] | None = None,
    pod_ip_budget: int | None = None,
) -> Plan:
    """The capacity plan of a stack (pure; never raises for a stack that does not fit).

    ``catalog`` is the runtime catalog (default: ``load_catalog(catalog_dir())``); mesh pods hold
    what their runtime's memory leaves for models.
    """
    catalog = catalog if catalog is not None else load_catalog(catalog_dir())
    result = Plan(stack=args.stack.name)
    mesh_groups = _mesh_groups(args)
    usage: dict[str, Any] = {level: defaultdict(int) for level in LEVELS}
    for p, pool in enumerate(args.gpu_pools):
        pool_plan = _plan_pool(args, pool, mesh_groups, usage)
        result.pools.append(pool_plan)
        for level in LEVELS:
            if pool_plan.levels[level].nodes > pool_plan.node_limit:
                result.short(level, f"gpuPools[{p}]: {_shortfall(pool_plan, level)}")
    result.mesh = _plan_mesh(args, catalog)
    for m in result.mesh:
        for level, what in (("min", "one copy of every model"), ("max", "two copies of every model")):
            if m.pods_needed[level] > m.pods:
                result.warnings.append(
                    f"modelMesh: runtime {m.runtime!r} in namespace {m.namespace!r} needs {m.pods_needed[level]} pods "
                    f"to keep {what} loaded ({m.models} models, {m.model_bytes / 2**30:.2f} GiB; "
                    f"{m.pod_capacity_bytes / 2**30:.2f} GiB per pod) but runs {m.pods}: ModelMesh evicts the least "
                    "recently used and reloads on demand; raise modelMesh.podsPerRuntime or the runtime's memory"
                )
    for t, tenant in enumerate(args.tenants):
        for resource, limit in quota_resources(tenant, list(args.gpu_pools)).items():
            quota = QuotaPlan(tenant=tenant.name, resource=resource, limit=limit)
            for level in LEVELS:
                quota.used[level] = usage[level][(tenant.namespace_name, resource)]
                if quota.used[level] > limit:
                    message = (
                        f"tenants[{t}].gpuQuotas: tenant {tenant.name!r} requests {quota.used[level]} {resource} at "
                        f"{level}imum replicas but its quota is {limit}"
                    )
                    result.short(level, message)
            result.quotas.append(quota)
    mesh_pods = sum(m.pods for m in result.mesh)
    etcd_pods = 0
    controller = 0
    if args.model_mesh.enabled:
        etcd = args.model_mesh.etcd
        etcd_pods = 0 if etcd.mode == "external" else (etcd.members if etcd.mode == "statefulset" else 1)
        controller = model_mesh.controller_replicas(args.model_mesh, args.stack.tier)
    for level in LEVELS:
        model_pods = 0
        for i, replicas in _replicas(args, level):
            model = args.models[i]
            own = [
                model.transformer is not None and not model.transformer.collocated,
                model.explainer is not None,
            ]
            workers = model.workers.total_gpus // max(1, model.resources.gpu) - 1 if model.workers else 0
            model_pods += replicas * (1 + workers + sum(own))
        for service in args.llms:
            # The vLLM pods, and the endpoint picker of a routed service.
            model_pods += sum(pods for _, pods in llm.gpu_pods(service, level))
            model_pods += service.router.scheduler_replicas or 1 if service.router.scheduler else 0
        result.pods[level] = model_pods + mesh_pods + etcd_pods + controller
    result.pods["meshRuntime"] = mesh_pods
    result.pods["etcd"] = etcd_pods
    result.pods["maxPodsPerNode"] = DEFAULT_MAX_PODS_PER_NODE
    result.pods["nodesByPodLimit"] = math.ceil(result.pods["max"] / DEFAULT_MAX_PODS_PER_NODE)
    result.pods["podIps"] = result.pods["max"]
    if pod_ip_budget is not None:
        result.pods["podIpBudget"] = pod_ip_budget
        for level in LEVELS:
            if result.pods[level] > pod_ip_budget:
                result.short(
                    level,
                    f"pods: {result.pods[level]} pods at {level}imum replicas need more pod IPs than the "
                    f"{pod_ip_budget} available",
                )
    mesh_models = sum(m.models for m in result.mesh)
    mesh_cpu = mesh_pods * model_mesh.MESH_OVERHEAD_CPU
    mesh_memory = mesh_pods * model_mesh.MESH_OVERHEAD_MEMORY
    result.savings = {
        "meshModels": mesh_models,
        "isvcPods": mesh_models,
        "isvcOverheadCpu": round(mesh_models * ISVC_OVERHEAD_CPU, 3),
        "isvcOverheadMemoryBytes": int(mesh_models * ISVC_OVERHEAD_MEMORY),
        "meshPods": mesh_pods,
        "meshOverheadCpu": round(mesh_cpu, 3),
        "meshOverheadMemoryBytes": int(mesh_memory),
        "savedPods": mesh_models - mesh_pods,
        "savedCpu": round(mesh_models * ISVC_OVERHEAD_CPU - mesh_cpu, 3),
        "savedMemoryBytes": int(mesh_models * ISVC_OVERHEAD_MEMORY - mesh_memory),
    }
    return result


def check(result: Plan, source: str) -> None:
    """Refuse a plan that does not fit at minimum replicas.

    Raises:
        CapacityError: one line per shortfall, ``SOURCE: path: message``.
    """
    if result.errors:
        raise CapacityError("\n".join(f"{source}: {e}" for e in result.errors))


def to_dict(result: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data with stable, documented keys (docs/model-mesh-and-gpus.md)."""
    return {
        "stack": result.stack,
        "fits": {"min": result.fits_min, "max": result.fits_min and result.fits_max},
        "pools": [
            {
                "name": p.name,
                "product": p.product,
                "sharing": p.sharing,
                "provisioner": p.provisioner,
                "gpusPerNode": p.gpus_per_node,
                "nodeCapacity": p.node_capacity,
                "maxPodsPerNode": p.max_pods_per_node,
                "minNodes": p.min_nodes,
                "nodeLimit": p.node_limit,
                **{
                    level: {
                        "nodes": lv.nodes,
                        "lowerBoundNodes": lv.lower_bound_nodes,
                        "gpus": lv.gpus,
                        "pods": lv.pods,
                        "units": lv.units,
                    }
                    for level, lv in p.levels.items()
                },
            }
            for p in result.pools
        ],
        "mesh": [
            {
                "namespace": m.namespace,
                "runtime": m.runtime,
                "pool": m.pool,
                "models": m.models,
                "modelBytes": m.model_bytes,
                "podCapacityBytes": m.pod_capacity_bytes,
                "pods": m.pods,
                "podsNeeded": m.pods_needed,
            }
            for m in result.mesh
        ],
        "quotas": [
            {"tenant": q.tenant, "resource": q.resource, "limit": q.limit, **q.used} for q in result.quotas
        ],
        "pods": dict(sorted(result.pods.items())),
        "meshSavings": result.savings,
        "errors": list(result.errors),
        "warnings": list(result.warnings),
    }


def summary(args: ServingPlatformArgs) -> dict[str, Any]:
    """The capacity summary of a stack, for the PR preview: ``to_dict(plan(args))``."""
    return to_dict(plan(args))


def _gib(value: float) -> str:
    return f"{value / 2**30:.1f} GiB"


def format_text(result: Plan) -> str:
    """The plan as a human-readable report."""
    lines = [f"capacity plan: stack {result.stack}"]
    if result.pools:
        lines.append("")
        lines.append(
            f"{'GPU pool':<16} {'sharing':<13} {'limit':>5}  {'min nodes':>9} {'GPUs':>5} {'LB':>3}  "
            f"{'max nodes':>9} {'GPUs':>5} {'LB':>3}"
        )
        for p in result.pools:
            lo, hi = p.levels["min"], p.levels["max"]
            lines.append(
                f"{p.name:<16} {p.sharing:<13} {p.node_limit:>5}  {lo.nodes:>9} {lo.gpus:>5} {lo.lower_bound_nodes:>3}  "
                f"{hi.nodes:>9} {hi.gpus:>5} {hi.lower_bound_nodes:>3}"
            )
            for resource in sorted(set(lo.units) | set(hi.units)):
                per_node = p.node_capacity.get(resource, 0)
                lines.append(
                    f"  {resource:<30} min {lo.units.get(resource, 0):>6}  max {hi.units.get(resource, 0):>6}  "
                    f"per node {per_node}"
                )
    if result.mesh:
        lines.append("")
        lines.append(
            f"{'mesh runtime':<34} {'models':>7} {'model GiB':>9} {'pods':>5} {'need min':>8} {'need max':>8}"
        )
        for m in result.mesh:
            name = f"{m.namespace}/{m.runtime}"
            lines.append(
                f"{name:<34} {m.models:>7} {m.model_bytes / 2**30:>9.2f} {m.pods:>5} "
                f"{m.pods_needed['min']:>8} {m.pods_needed['max']:>8}"
            )
        s = result.savings
        lines.append(
            f"mesh saves against one InferenceService per model: {s['savedPods']} pods, "
            f"{s['savedCpu']:g} CPU, {_gib(s['savedMemoryBytes'])} "
            f"({s['meshModels']} models in {s['meshPods']} runtime pods)"
        )
    if result.quotas:
        lines.append("")
        lines.append(f"{'tenant quota':<40} {'limit':>6} {'min':>6} {'max':>6}")
        for q in result.quotas:
            lines.append(
                f"{q.tenant + ' ' + q.resource:<40} {q.limit:>6} {q.used['min']:>6} {q.used['max']:>6}"
            )
    pods = result.pods
    lines.append("")
    lines.append(
        f"pods: {pods['min']} at minimum, {pods['max']} at maximum ({pods['meshRuntime']} mesh runtime, "
        f"{pods['etcd']} etcd); {pods['podIps']} pod IPs; at least {pods['nodesByPodLimit']} node(s) "
        f"at {pods['maxPodsPerNode']} pods per node"
    )
    for error in result.errors:
        lines.append(f"error: {error}")
    for warning in result.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines) + "\n"

"""Assembly: every object and upstream release one stack renders, from its parts.

The parts know only their own args and the few facts they are handed (``tier``, a namespace,
a GPU pool); this module is where the whole stack is read and each part gets what it needs,
one adapter per part. What it returns feeds all three outputs: the Pulumi program registers
it, ``modelplane render`` writes it for GitOps, ``modelplane preview`` diffs it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from modelplane import (
    control_plane,
    dashboards,
    gpu_operator,
    gpu_pool,
    gpu_rules,
    graph,
    ingress,
    llm,
    model,
    model_mesh,
    monitoring,
    rules,
    tenant,
)
from modelplane.autoscaler import knative_config
from modelplane.errors import ProblemError
from modelplane.external_runtime import with_external
from modelplane.image_lock import ImageLock
from modelplane.images import image_uses, pin_objects, stack_paths, unpinned_problems
from modelplane.kube import (
    LABEL_COMPONENT,
    Obj,
    ObjectKey,
    Part,
    dns_name,
    key_of,
    labels,
    model_key,
    sorted_objects,
)
from modelplane.model import ModelArgs
from modelplane.rollout.compile import Routing, model_objects
from modelplane.rollout.diff import Desired, DesiredModel
from modelplane.rollout.lock import Lock, ModelRecord
from modelplane.rollout.state import effective_records
from modelplane.runtimes import FormatSpec, catalog_dir, load_catalog, render_runtime
from modelplane.scaling import prometheus_address
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.types import DeploymentMode
from modelplane.upstream import Release

Catalog = rules.Catalog


@dataclass
class PlatformObjects:
    """Everything a stack renders: authored objects and the upstream releases they depend on."""

    objects: list[Obj] = field(default_factory=list)
    charts: list[Release] = field(default_factory=list)
    """Upstream releases, Helm charts and kustomize releases, in install order (wave, name)."""
    warnings: list[str] = field(default_factory=list)
    rollouts: dict[str, ModelRecord] | None = None
    """With a lock: each model's deployed state with the stack applied, as rendered."""

    def part(self, name: Part) -> list[Obj]:
        """The objects one part of the platform owns (by their ``app.kubernetes.io/component`` label)."""
        return [o for o in self.objects if o["metadata"].get("labels", {}).get(LABEL_COMPONENT) == name]

    def parts(self) -> dict[str, list[Obj]]:
        """Every object by the part that owns it, in render order; ``config`` for objects of no part."""
        result: dict[str, list[Obj]] = {}
        for obj in self.objects:
            result.setdefault(obj["metadata"].get("labels", {}).get(LABEL_COMPONENT, "config"), []).append(
                obj
            )
        return result


@dataclass
class Contribution:
    """What one part adds to a stack's render."""

    objects: list[Obj] = field(default_factory=list)
    charts: list[Release] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BuildContext:
    """Facts about a stack that several parts of the render need, computed once."""

    catalog: Catalog
    """The runtime catalog with the stack's external runtimes."""
    modes: tuple[DeploymentMode, ...]
    """Deployment mode of each model, in stack order."""
    rollouts: dict[str, ModelRecord] | None = None
    """Per model (``<namespace>/<name>``), its deployed state with the stack applied; None without a lock."""
    knative_features: frozenset[str] = frozenset()
    """Knative ``config-features`` flags the models' own settings need."""
    knative: bool = False
    """Whether anything runs as a Knative Service (a Knative-mode model, a mesh model's transformer)."""

    @property
    def uses_knative(self) -> bool:
        """Whether Knative Serving must be installed."""
        return self.knative


def desired_models(stack: ServingPlatformArgs) -> Desired:
    """Every model of a stack as the rollout engine sees it: by lock key, with its mode and effective policy."""
    namespaces = {t.name: t.namespace_name for t in stack.tenants}
    result: Desired = {}
    for m in stack.models:
        wanted = DesiredModel(m, namespaces[m.tenant], stack.mode(m), stack.policy(m))
        result[wanted.key] = wanted
    return result


def uses_keda(stack: ServingPlatformArgs, ctx: BuildContext) -> bool:
    """Whether any Standard-mode model, or any LLM service, scales on a Prometheus metric through KEDA."""
    return any(service.scaling is not None for service in stack.llms) or any(
        mode == "standard" and (m.scaling.metric or "cpu") not in ("cpu", "memory")
        for m, mode in zip(stack.models, ctx.modes, strict=True)
    )


# --- one adapter per part ---------------------------------------------------------------------


def _control_plane(stack: ServingPlatformArgs, ctx: BuildContext) -> Contribution:
    """Upstream charts (with the ``KnativeServing`` they carry), the Gateway, storage and availability."""
    cp = stack.control_plane
    name, tier = stack.stack.name, stack.stack.tier
    objects: list[Obj] = [control_plane.storage_container(cp, stack.versions, stack=name)]
    if cp.ingress.install_gateway:
        objects += ingress.objects(cp.ingress, stack=name)
    objects += control_plane.availability_objects(cp, stack=name, tier=tier)
    warnings = [str(p) for p in rules.gpu_scale_to_zero_risks(stack)] if tier == "dev" else []
    charts = control_plane.charts(
        cp,
        stack.versions,
        tier=tier,
        knative=ctx.uses_knative,
        keda=uses_keda(stack, ctx),
        llm=bool(stack.llms),
        stack=name,
        knative_config=knative_config(
            stack.autoscaler, gpu_pools=bool(stack.gpu_pools), features=ctx.knative_features
        ),
    )
    return Contribution(objects=objects, charts=list(charts), warnings=warnings)


def _gpu_pools(stack: ServingPlatformArgs) -> Contribution:
    """The GPU operator chart and its configuration, NodePools and PriorityClasses."""
    pools = list(stack.gpu_pools)
    if not pools:
        return Contribution()
    return Contribution(
        objects=gpu_operator.objects(pools, stack=stack.stack.name),
        charts=[gpu_operator.chart(pools, stack.versions)],
        warnings=gpu_pool.warnings(pools),
    )


def _model_mesh(stack: ServingPlatformArgs) -> Contribution:
    """ModelMesh Serving's release, its configuration and its etcd."""
    mesh = stack.model_mesh
    if not mesh.enabled:
        return Contribution()
    name, tier = stack.stack.name, stack.stack.tier
    return Contribution(
        objects=model_mesh.objects(
            mesh, stack=name, tier=tier, monitoring_namespace=stack.monitoring.namespace
        ),
        charts=[model_mesh.release(mesh, stack.versions, tier=tier, stack=name)],
        warnings=model_mesh.warnings(mesh),
    )


def _monitoring(stack: ServingPlatformArgs, ctx: BuildContext) -> Contribution:
    """The Prometheus stack, and per tenant namespace its monitors and SLO rules."""
    args = stack.monitoring
    if not args.enabled:
        return Contribution()
    charts: list[Release] = []
    pools = list(stack.gpu_pools)
    if args.install_prometheus:
        charts.append(
            monitoring.chart(
                args, stack.versions, tier=stack.stack.tier, node_label_keys=gpu_rules.node_label_keys(pools)
            )
        )
    served = [
        monitoring.ServedModel(
            stack.tenant(m.tenant).namespace_name,
            m.name,
            mode,
            ctx.catalog[m.runtime],
            availability=m.slo.availability if m.slo else None,
            latency_ms=m.slo.latency_ms if m.slo else None,
        )
        for m, mode in zip(stack.models, ctx.modes, strict=True)
    ]
    objects = monitoring.objects(args, stack=stack.stack.name, models=served)
    for namespace in sorted({stack.tenant(service.tenant).namespace_name for service in stack.llms}):
        objects.append(llm.pod_monitor(namespace, stack=stack.stack.name, interval=args.scrape_interval))
    objects += gpu_rules.objects(
        pools, namespace=args.namespace, operator_namespace=gpu_operator.NAMESPACE, stack=stack.stack.name
    )
    objects += dashboards.objects(
        sorted({m.namespace for m in served}),
        gate_thresholds={g.metric: g.max for g in stack.rollout.gates if g.max is not None},
        namespace=args.namespace,
        stack=stack.stack.name,
    )
    return Contribution(objects=objects, charts=charts)


def _tenants(stack: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    """Every tenant's namespace, NetworkPolicies and GPU quota."""
    cp = stack.control_plane
    ingress_namespaces = [cp.ingress.gateway_namespace, cp.namespace]
    if ctx.uses_knative:
        ingress_namespaces += ["knative-serving", f"{cp.network_layer}-system"]
    mesh_tenants = {m.tenant for m, mode in zip(stack.models, ctx.modes, strict=True) if mode == "modelmesh"}
    if mesh_tenants:
        ingress_namespaces.append(stack.model_mesh.namespace)
    result: list[Obj] = []
    for t in stack.tenants:
        result += tenant.objects(
            t,
            stack=stack.stack.name,
            kubernetes_minor=stack.versions.kubernetes_minor,
            ingress_namespaces=ingress_namespaces,
            monitoring_namespace=stack.monitoring.namespace,
            mesh=t.name in mesh_tenants,
            mesh_namespace=stack.model_mesh.namespace,
            gpu_pools=list(stack.gpu_pools),
        )
    return result


def _runtimes(stack: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    """One ClusterServingRuntime per catalog runtime in use (and per mesh runtime)."""
    used = sorted({(m.runtime, mode == "modelmesh") for m, mode in zip(stack.models, ctx.modes, strict=True)})
    result: list[Obj] = []
    for name, mesh in used:
        spec = ctx.catalog[name]
        if name == "custom" or spec.external is not None:
            continue
        if mesh:
            pool = stack.pool(stack.model_mesh.runtime(name).pool)
            result.append(
                model_mesh.runtime_object(stack.model_mesh, spec, stack=stack.stack.name, pool=pool)
            )
        else:
            result.append(
                render_runtime(spec, name=f"modelplane-{name}", labels=labels(stack.stack.name, "runtime"))
            )
    return result


def _model_entry(
    stack: ServingPlatformArgs,
    ctx: BuildContext,
    version: ModelArgs,
    *,
    mode: DeploymentMode,
    namespace: str,
    predictor_overrides: dict[str, Any] | None = None,
    canary: list[dict[str, Any]] | None = None,
) -> list[Obj]:
    """One model entry's objects (``modelplane.model.objects``) with the stack's context filled in."""
    return model.objects(
        version,
        stack=stack.stack.name,
        namespace=namespace,
        mode=mode,
        runtime=ctx.catalog[version.runtime],
        pool=stack.pool(version.resources.pool),
        predictor_overrides=predictor_overrides,
        canary=canary,
        prometheus=prometheus_address(stack.monitoring.namespace),
        kserve_version=stack.versions.kserve,
    )


def _custom_runtime(
    stack: ServingPlatformArgs, ctx: BuildContext, version: ModelArgs, *, namespace: str, name: str
) -> list[Obj]:
    """The namespaced ServingRuntime a ``custom`` model brings its image in; nothing for catalog runtimes."""
    if version.runtime != "custom":
        return []
    return [
        render_runtime(
            ctx.catalog["custom"],
            name=name,
            namespace=namespace,
            labels=labels(stack.stack.name, "runtime"),
            image=version.image,
            formats=[
                FormatSpec(
                    name=version.model_format.name, version=version.model_format.version, auto_select=False
                )
            ],
        )
    ]


def _models(stack: ServingPlatformArgs, ctx: BuildContext, only: Collection[str] | None = None) -> list[Obj]:
    """Every model's objects (and the ServingRuntime of each ``custom`` model), under its rollout if any.

    ``only``: the objects of these models alone (by lock key).
    """
    result: list[Obj] = []
    for m, mode in zip(stack.models, ctx.modes, strict=True):
        namespace = stack.tenant(m.tenant).namespace_name
        key = model_key(namespace, m.name)
        if only is not None and key not in only:
            continue
        record = ctx.rollouts.get(key) if ctx.rollouts is not None else None
        if record is not None:
            result += _rollout_objects(stack, ctx, m, mode, namespace, record)
            continue
        result += _custom_runtime(stack, ctx, m, namespace=namespace, name=dns_name(m.name, "runtime"))
        result += _model_entry(stack, ctx, m, mode=mode, namespace=namespace)
    return result


def _rollout_objects(
    stack: ServingPlatformArgs,
    ctx: BuildContext,
    m: ModelArgs,
    mode: DeploymentMode,
    namespace: str,
    record: ModelRecord,
) -> list[Obj]:
    """A model's objects under its rollout state (see ``modelplane.rollout.compile``)."""

    def render(
        version: ModelArgs,
        *,
        predictor_overrides: dict[str, Any] | None = None,
        canary: list[dict[str, Any]] | None = None,
    ) -> list[Obj]:
        return _model_entry(
            stack,
            ctx,
            version,
            mode=mode,
            namespace=namespace,
            predictor_overrides=predictor_overrides,
            canary=canary,
        )

    def custom_runtime(version: ModelArgs, name: str) -> list[Obj]:
        return _custom_runtime(stack, ctx, version, namespace=namespace, name=name)

    ingress = stack.control_plane.ingress
    routing = Routing(
        stack=stack.stack.name,
        gateway_name=ingress.gateway_name,
        gateway_namespace=ingress.gateway_namespace,
        domain=ingress.domain,
    )
    return model_objects(m, record, mode=mode, render=render, custom_runtime=custom_runtime, routing=routing)


def _llms(stack: ServingPlatformArgs) -> list[Obj]:
    """Every LLM service's LLMInferenceService (and ScaledObject), in its tenant's namespace."""
    result: list[Obj] = []
    prometheus = prometheus_address(stack.monitoring.namespace)
    for item in stack.llms:
        namespace = stack.tenant(item.tenant).namespace_name
        pool = stack.pool(item.resources.pool)
        result += llm.objects(
            item, stack=stack.stack.name, namespace=namespace, pool=pool, prometheus=prometheus
        )
    return result


def _graphs(stack: ServingPlatformArgs) -> list[Obj]:
    """Every inference graph's InferenceGraph, in its tenant's namespace."""
    result: list[Obj] = []
    for item in stack.graphs:
        result += graph.objects(
            item,
            stack=stack.stack.name,
            namespace=stack.tenant(item.tenant).namespace_name,
            mode=stack.graph_mode(item),
        )
    return result


def _unique(objects: list[Obj]) -> list[Obj]:
    """Objects with duplicates of identical content removed; differing duplicates are a bug."""
    seen: dict[ObjectKey, Obj] = {}
    for obj in objects:
        key = key_of(obj)
        if key in seen:
            if seen[key] != obj:
                raise AssertionError(f"two different objects render as {key}")
            continue
        seen[key] = obj
    return list(seen.values())


def _pinned(stack: ServingPlatformArgs, objects: list[Obj], images: ImageLock, *, refuse: bool) -> list[Obj]:
    """The objects with the image lock's digests; under ``pinning: digest``, none left without one."""
    pinned = pin_objects(objects, images.digests())
    if refuse and stack.pinning() == "digest":
        uses = image_uses(pinned)
        if any("@" not in use.image for use in uses):
            paths = stack_paths(stack.model_dump(mode="json", by_alias=True))
            command = f"modelplane images pin {images.stack_file or '<stack file>'}"
            raise ProblemError(unpinned_problems(uses, paths, command=command))
    return pinned


def build(
    stack: ServingPlatformArgs,
    *,
    catalog: Catalog | None = None,
    lock: Lock | None = None,
    only_models: Collection[str] | None = None,
    images: ImageLock | None = None,
    refuse_unpinned: bool = True,
) -> PlatformObjects:
    """Every object and upstream chart of a stack, in render order. Pure and deterministic.

    ``catalog`` is the runtime catalog (default: ``load_catalog(catalog_dir())``). With a ``lock``
    (the deployed state; an empty lock when nothing is deployed) models render under their
    rollout state with the stack's changes applied: canary splits, side objects, shadow routes.
    Without one, every model renders as its stack entry alone.

    ``only_models`` (lock keys) leaves out the objects of every other model: what an incremental
    preview compares. The objects of the stack as a whole (namespaces, runtimes, monitoring, the
    control plane...) and every model's rollout record are always complete.

    With an image lock (``images``; the commands and the Pulumi program always read one, an
    empty one when the file is missing) every image it pins is written with its digest, and
    under ``images.pinning: digest`` an image left without one is refused (unless
    ``refuse_unpinned`` is False: a preview's base renders as it was). Without one the images
    render as the stack and the catalog write them.

    Raises:
        ProblemError: the stack breaks a cross-field rule (``modelplane.rules``), a version the
            lock keeps serving does with the stack's fields (``rules.version_problems``), or an
            image has no digest under ``images.pinning: digest``.
    """
    catalog = catalog if catalog is not None else load_catalog(catalog_dir())
    rules.check(stack, catalog=catalog)
    rollouts = effective_records(desired_models(stack), lock) if lock is not None else None
    modes = tuple(stack.mode(m) for m in stack.models)
    features: set[str] = set()
    for m, mode in zip(stack.models, modes, strict=True):
        features |= model.knative_features(m, mode)
    graph_modes = [stack.graph_mode(g) for g in stack.graphs]
    if "knative" in graph_modes:
        features |= graph.KNATIVE_FEATURES
    if rollouts:
        found = rules.version_problems(stack, rollouts, catalog=catalog)
        if found:
            raise ProblemError(found)
    ctx = BuildContext(
        catalog=with_external(catalog, stack.external_runtimes),
        modes=modes,
        rollouts=rollouts,
        knative_features=frozenset(features),
        knative="knative" in graph_modes
        or any(model.needs_knative(m, mode) for m, mode in zip(stack.models, modes, strict=True)),
    )
    result = PlatformObjects(rollouts=rollouts)
    parts = [_control_plane(stack, ctx), _gpu_pools(stack), _model_mesh(stack), _monitoring(stack, ctx)]
    objects: list[Obj] = (
        _tenants(stack, ctx)
        + _runtimes(stack, ctx)
        + _models(stack, ctx, only_models)
        + _graphs(stack)
        + _llms(stack)
    )
    for part in parts:
        objects += part.objects
        result.charts += part.charts
        result.warnings += part.warnings
    result.objects = sorted_objects(_unique(objects))
    if images is not None:
        result.objects = _pinned(stack, result.objects, images, refuse=refuse_unpinned)
    result.charts.sort(key=lambda c: (c.wave, c.release))
    return result

"""Assembly: every object and upstream release one stack renders, from its parts.

The parts know only their own args and the few facts they are handed (``tier``, a namespace,
a GPU pool); this module is where the whole stack is read and each part gets what it needs,
one adapter per part. What it returns feeds all three outputs: the Pulumi program registers
it, ``modelplane render`` writes it for GitOps, ``modelplane preview`` diffs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelplane import (
    control_plane,
    gpu_operator,
    gpu_pool,
    ingress,
    model,
    model_mesh,
    monitoring,
    rules,
    tenant,
)
from modelplane.autoscaler import knative_config
from modelplane.errors import ProblemError
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
    modes: tuple[DeploymentMode, ...]
    """Deployment mode of each model, in stack order."""
    rollouts: dict[str, ModelRecord] | None = None
    """Per model (``<namespace>/<name>``), its deployed state with the stack applied; None without a lock."""

    @property
    def uses_knative(self) -> bool:
        """Whether any model runs in Knative mode."""
        return "knative" in self.modes


def desired_models(stack: ServingPlatformArgs) -> Desired:
    """Every model of a stack as the rollout engine sees it: by lock key, with its mode and effective policy."""
    namespaces = {t.name: t.namespace_name for t in stack.tenants}
    result: Desired = {}
    for m in stack.models:
        wanted = DesiredModel(m, namespaces[m.tenant], stack.mode(m), stack.policy(m))
        result[wanted.key] = wanted
    return result


def uses_keda(stack: ServingPlatformArgs, ctx: BuildContext) -> bool:
    """Whether any Standard-mode model scales on a Prometheus metric through KEDA."""
    return any(
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
        stack=name,
        knative_config=knative_config(stack.autoscaler, gpu_pools=bool(stack.gpu_pools)),
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
    if args.install_prometheus:
        charts.append(monitoring.chart(args, stack.versions, tier=stack.stack.tier))
    served = [
        monitoring.ServedModel(stack.tenant(m.tenant).namespace_name, m.name, mode, ctx.catalog[m.runtime])
        for m, mode in zip(stack.models, ctx.modes, strict=True)
    ]
    return Contribution(
        objects=monitoring.objects(args, stack=stack.stack.name, models=served), charts=charts
    )


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
        if name == "custom":
            continue
        spec = ctx.catalog[name]
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
            formats=[FormatSpec(name=version.format.name, version=version.format.version, auto_select=False)],
        )
    ]


def _models(stack: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    """Every model's objects (and the ServingRuntime of each ``custom`` model), under its rollout if any."""
    result: list[Obj] = []
    for m, mode in zip(stack.models, ctx.modes, strict=True):
        namespace = stack.tenant(m.tenant).namespace_name
        record = ctx.rollouts.get(model_key(namespace, m.name)) if ctx.rollouts is not None else None
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


def build(
    stack: ServingPlatformArgs, *, catalog: Catalog | None = None, lock: Lock | None = None
) -> PlatformObjects:
    """Every object and upstream chart of a stack, in render order. Pure and deterministic.

    ``catalog`` is the runtime catalog (default: ``load_catalog(catalog_dir())``). With a ``lock``
    (the deployed state; an empty lock when nothing is deployed) models render under their
    rollout state with the stack's changes applied: canary splits, side objects, shadow routes.
    Without one, every model renders as its stack entry alone.

    Raises:
        ProblemError: the stack breaks a cross-field rule (``modelplane.rules``), or a version the
            lock keeps serving does with the stack's fields (``rules.version_problems``).
    """
    catalog = catalog if catalog is not None else load_catalog(catalog_dir())
    rules.check(stack, catalog=catalog)
    rollouts = effective_records(desired_models(stack), lock) if lock is not None else None
    if rollouts:
        found = rules.version_problems(stack, rollouts, catalog=catalog)
        if found:
            raise ProblemError(found)
    ctx = BuildContext(catalog=catalog, modes=tuple(stack.mode(m) for m in stack.models), rollouts=rollouts)
    result = PlatformObjects(rollouts=rollouts)
    parts = [_control_plane(stack, ctx), _gpu_pools(stack), _model_mesh(stack), _monitoring(stack, ctx)]
    objects: list[Obj] = _tenants(stack, ctx) + _runtimes(stack, ctx) + _models(stack, ctx)
    for part in parts:
        objects += part.objects
        result.charts += part.charts
        result.warnings += part.warnings
    result.objects = sorted_objects(_unique(objects))
    result.charts.sort(key=lambda c: (c.wave, c.release))
    return result

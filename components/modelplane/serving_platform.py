"""The whole serving platform of one stack: the root of a stack file and everything it renders.

``ServingPlatformArgs`` is what ``stacks/<stack>.yaml`` holds. Field types and section
models check each value; the rules here check values against each other (references
exist, names are unique, a model's runtime serves its format, a mode can carry out what a
model asks) and report every problem at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from modelplane import control_plane, gpu_pool, model_mesh
from modelplane.autoscaler import AutoscalerArgs
from modelplane.base import Problem, StrictModel
from modelplane.control_plane import ControlPlaneArgs
from modelplane.errors import ProblemError
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.kube import Obj, model_key
from modelplane.model import ModelArgs, mode_of
from modelplane.model_mesh import ModelMeshArgs
from modelplane.monitoring import MonitoringArgs
from modelplane.rollout.policy import RolloutPolicy
from modelplane.runtimes import RuntimeSpec, load_catalog
from modelplane.scaling import HPA_METRICS, ScalingArgs, refusal
from modelplane.tenant import TenantArgs
from modelplane.types import DeploymentMode
from modelplane.upstream import Release, Versions

if TYPE_CHECKING:
    from modelplane.rollout.lock import Lock, ModelRecord

Tier = Literal["dev", "staging", "prod"]


class StackInfo(StrictModel):
    """Which stack this is."""

    name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=40,
        description="Stack name; matches the Pulumi stack and the file name.",
    )
    tier: Tier = Field(
        description="dev | staging | prod; staging and prod get HA defaults and stricter checks."
    )
    description: str = Field(default="", max_length=200, description="One line about the environment.")


class ServingPlatformArgs(StrictModel):
    """The root of a stack file: a whole model-serving platform for one environment."""

    stack: StackInfo = Field(description="Stack name and tier.")
    versions: Versions = Field(default_factory=Versions, description="Pinned upstream versions.")
    control_plane: ControlPlaneArgs = Field(
        default_factory=ControlPlaneArgs, description="KServe and dependencies."
    )
    autoscaler: AutoscalerArgs = Field(
        default_factory=AutoscalerArgs, description="Cluster-level Knative autoscaling."
    )
    model_mesh: ModelMeshArgs = Field(default_factory=ModelMeshArgs, description="ModelMesh Serving.")
    gpu_pools: list[GpuPoolArgs] = Field(default_factory=list, description="GPU node pools.")
    monitoring: MonitoringArgs = Field(default_factory=MonitoringArgs, description="Prometheus monitoring.")
    tenants: list[TenantArgs] = Field(default_factory=list, description="Teams that own models.")
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy, description="Default rollout policy.")
    models: list[ModelArgs] = Field(default_factory=list, description="Served models.")

    @model_validator(mode="after")
    def _cross_field(self) -> ServingPlatformArgs:
        problems = platform_problems(self)
        if problems:
            raise ProblemError(problems)
        return self

    def tenant(self, name: str) -> TenantArgs:
        """The tenant of that name."""
        return next(t for t in self.tenants if t.name == name)

    def pool(self, name: str | None) -> GpuPoolArgs | None:
        """The GPU pool of that name, or None."""
        return next((p for p in self.gpu_pools if p.name == name), None)

    def mode(self, model: ModelArgs) -> DeploymentMode:
        """The deployment mode of a model."""
        return mode_of(model, self.control_plane.default_deployment_mode)

    def policy(self, model: ModelArgs) -> RolloutPolicy:
        """The effective rollout policy of a model."""
        return model.rollout.apply(self.rollout) if model.rollout else self.rollout


def platform_problems(
    args: ServingPlatformArgs, catalog: dict[str, RuntimeSpec] | None = None
) -> list[Problem]:
    """Every cross-field problem of a stack, in file order."""
    catalog = catalog if catalog is not None else load_catalog()
    problems: list[Problem] = []
    add = problems.append
    seen_tenants: dict[str, int] = {}
    seen_namespaces: dict[str, int] = {}
    for i, t in enumerate(args.tenants):
        if t.name in seen_tenants:
            add(
                Problem(
                    ("tenants", i, "name"),
                    f"duplicate tenant name (also tenants[{seen_tenants[t.name]}])",
                    t.name,
                )
            )
            continue
        seen_tenants[t.name] = i
        if t.namespace_name in seen_namespaces:
            add(
                Problem(
                    ("tenants", i, "namespace" if t.namespace else "name"),
                    f"tenant {t.name!r} would share namespace {t.namespace_name!r} with "
                    f"tenants[{seen_namespaces[t.namespace_name]}]; give it its own namespace",
                    t.namespace_name,
                )
            )
        else:
            seen_namespaces[t.namespace_name] = i
    tenants = {t.name: t for t in args.tenants}
    seen: dict[tuple[str, str], int] = {}
    for i, model in enumerate(args.models):
        path: tuple[str | int, ...] = ("models", i)
        tenant = tenants.get(model.tenant)
        if tenant is None:
            known = ", ".join(sorted(tenants)) or "none declared"
            add(Problem((*path, "tenant"), f"unknown tenant (tenants: {known})", model.tenant))
        else:
            key = (tenant.namespace_name, model.name)
            if key in seen:
                add(
                    Problem(
                        (*path, "name"),
                        f"duplicate model name in namespace {key[0]!r} (also models[{seen[key]}])",
                        model.name,
                    )
                )
            else:
                seen[key] = i
        runtime = catalog.get(model.runtime)
        mode = args.mode(model)
        if runtime is None:
            add(
                Problem(
                    (*path, "runtime"),
                    f"unknown runtime (catalog: {', '.join(sorted(catalog))})",
                    model.runtime,
                )
            )
        elif model.runtime != "custom":
            fmt = model.format
            shown = f"{fmt.name}:{fmt.version}" if fmt.version else fmt.name
            if mode == "modelmesh":
                if runtime.mesh is None:
                    add(
                        Problem(
                            (*path, "runtime"),
                            "runtime cannot serve in the model mesh (mesh runtimes: "
                            + ", ".join(sorted(n for n, r in catalog.items() if r.mesh))
                            + ")",
                            model.runtime,
                        )
                    )
                elif not runtime.mesh_serves(fmt.name, fmt.version):
                    add(
                        Problem(
                            (*path, "format"),
                            f"runtime {model.runtime!r} does not serve format {shown!r} in the "
                            f"mesh (it serves {', '.join(sorted({f.name for f in runtime.mesh.formats}))})",
                            shown,
                        )
                    )
            elif not runtime.serves(fmt.name, fmt.version):
                able = sorted(
                    n for n, r in catalog.items() if n != "custom" and r.serves(fmt.name, fmt.version)
                )
                instead = (
                    f"runtimes that serve it: {', '.join(able)}" if able else "no catalog runtime serves it"
                )
                add(
                    Problem(
                        (*path, "format"),
                        f"runtime {model.runtime!r} does not serve format {shown!r}; it serves "
                        f"{', '.join(runtime.format_names())} ({instead})",
                        shown,
                    )
                )
            wanted = model.protocol.kserve_value
            if mode != "modelmesh" and wanted not in runtime.protocols:
                speakers = sorted(n for n, r in catalog.items() if n != "custom" and wanted in r.protocols)
                add(
                    Problem(
                        (*path, "protocol"),
                        f"runtime {model.runtime!r} does not speak {wanted!r}; it speaks "
                        f"{', '.join(runtime.protocols)} (runtimes that speak {wanted}: "
                        f"{', '.join(speakers) or 'none'})",
                        wanted,
                    )
                )
        if runtime is not None and model.resources.gpu and not runtime.gpu_capable:
            add(
                Problem(
                    (*path, "resources", "gpu"),
                    f"runtime {model.runtime!r} cannot use GPUs",
                    model.resources.gpu,
                )
            )
        reason = refusal(mode, model.scaling, model.runtime)
        if reason:
            field, value = _refused_scaling_field(mode, model.scaling)
            add(Problem((*path, "scaling", *field), reason, value))
        if mode == "modelmesh":
            if not args.model_mesh.enabled:
                add(
                    Problem(
                        (*path, "deploymentMode"),
                        "modelmesh mode needs modelMesh.enabled: true; enable the mesh, "
                        "or use deploymentMode knative or standard",
                        mode,
                    )
                )
            if model.resources.gpu:
                add(
                    Problem(
                        (*path, "resources", "gpu"),
                        "modelmesh mode places models in shared runtime pods; "
                        "GPUs belong to the mesh runtime, not the model (use knative or standard mode)",
                        model.resources.gpu,
                    )
                )
            for part in ("transformer", "explainer"):
                if getattr(model, part) is not None:
                    add(
                        Problem(
                            (*path, part), f"modelmesh mode has no {part}; use knative or standard mode", part
                        )
                    )
        policy_strategy = (
            model.rollout.strategy if model.rollout and model.rollout.strategy else args.rollout.strategy
        )
        if mode == "modelmesh" and policy_strategy == "ab":
            add(
                Problem(
                    (*path, "rollout", "strategy"),
                    "modelmesh mode cannot split traffic, so it cannot run an A/B "
                    "test; use strategy canary (load beside, then switch) or direct",
                    policy_strategy,
                )
            )
        problems.extend(_rollout_problems(args, path, model, mode))
    if args.model_mesh.enabled and args.model_mesh.etcd.mode == "quickstart" and args.stack.tier != "dev":
        add(
            Problem(
                ("modelMesh", "etcd", "mode"),
                f"the quickstart etcd (one member, no persistence, no TLS) is for "
                f"the dev tier only; this stack's tier is {args.stack.tier!r}: use statefulset or external",
                "quickstart",
            )
        )
    problems += control_plane.problems(args, catalog)
    problems += gpu_pool.problems(args)
    problems += model_mesh.problems(args, catalog)
    return problems


def _refused_scaling_field(mode: DeploymentMode, scaling: ScalingArgs) -> tuple[tuple[str, ...], object]:
    """The scaling field (and its value) a refusal is about, so the problem points at it."""
    if mode == "modelmesh":
        return (), None
    metric = scaling.metric or ("concurrency" if mode == "knative" else "cpu")
    if mode == "standard" and metric in HPA_METRICS and scaling.min_replicas == 0:
        return ("minReplicas",), 0
    utilisation = metric in (*HPA_METRICS, "gpu-utilization")
    if mode == "standard" and utilisation and scaling.target is not None and scaling.target > 100:
        return ("target",), scaling.target
    return ("metric",), metric


def _rollout_problems(
    args: ServingPlatformArgs, path: tuple[str | int, ...], model: ModelArgs, mode: DeploymentMode
) -> list[Problem]:
    """Rollout strategies the model's deployment mode cannot carry out."""
    from modelplane.rollout.policy import mode_problems

    try:
        policy = args.policy(model)
    except ValueError as err:
        return [
            Problem((*path, "rollout"), f"the model's rollout override is invalid with the stack's: {err}")
        ]
    override = model.rollout
    inherited = override is None or (override.strategy is None and override.shadow is None)
    return [
        Problem((*path, "rollout", name), message, value)
        for name, message, value in mode_problems(
            policy,
            mode,
            gateway_api=args.control_plane.ingress.gateway_api,
            inherited=inherited,
            kserve=args.versions.kserve,
        )
    ]


@dataclass
class PlatformObjects:
    """Everything a stack renders: authored objects and the upstream releases they depend on."""

    objects: list[Obj] = field(default_factory=list)
    charts: list[Release] = field(default_factory=list)
    """Upstream releases, Helm charts and kustomize releases, in install order (wave, name)."""
    warnings: list[str] = field(default_factory=list)
    rollouts: dict[str, ModelRecord] | None = None
    """With a lock: each model's deployed state with the stack applied, as rendered."""


@dataclass(frozen=True)
class BuildContext:
    """Facts about a stack that several parts of the render need, computed once."""

    catalog: dict[str, RuntimeSpec]
    modes: tuple[DeploymentMode, ...]
    """Deployment mode of each model, in stack order."""
    rollouts: dict[str, ModelRecord] | None = None
    """Per model (``<namespace>/<name>``), its deployed state with the stack applied; None without a lock."""

    @property
    def uses_knative(self) -> bool:
        """Whether any model runs in Knative mode."""
        return "knative" in self.modes


def uses_keda(args: ServingPlatformArgs, ctx: BuildContext) -> bool:
    """Whether any Standard-mode model scales on a Prometheus metric through KEDA."""
    return any(
        mode == "standard" and (m.scaling.metric or "cpu") not in ("cpu", "memory")
        for m, mode in zip(args.models, ctx.modes, strict=True)
    )


def _runtime_objects(args: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    """One ClusterServingRuntime per catalog runtime in use (and per mesh runtime)."""
    from modelplane.kube import labels
    from modelplane.runtimes import render_runtime

    stack = args.stack.name
    used = sorted({(m.runtime, mode == "modelmesh") for m, mode in zip(args.models, ctx.modes, strict=True)})
    result: list[Obj] = []
    for name, mesh in used:
        if name == "custom":
            continue
        spec = ctx.catalog[name]
        if mesh:
            result.append(model_mesh.mesh_runtime(args, spec))
        else:
            result.append(render_runtime(spec, name=f"modelplane-{name}", labels=labels(stack, "runtime")))
    return result


def _render_model(
    args: ServingPlatformArgs,
    ctx: BuildContext,
    version: ModelArgs,
    *,
    mode: DeploymentMode,
    namespace: str,
    predictor_overrides: dict[str, Any] | None = None,
    canary: list[dict[str, Any]] | None = None,
) -> list[Obj]:
    """One model entry's objects (``modelplane.model.objects``) with the stack's context filled in."""
    from modelplane import model
    from modelplane.scaling import prometheus_address

    return model.objects(
        version,
        stack=args.stack.name,
        namespace=namespace,
        mode=mode,
        runtime=ctx.catalog[version.runtime],
        pool=args.pool(version.resources.pool),
        predictor_overrides=predictor_overrides,
        canary=canary,
        prometheus=prometheus_address(args.monitoring.namespace),
    )


def _custom_runtime(
    args: ServingPlatformArgs, ctx: BuildContext, version: ModelArgs, *, namespace: str, name: str
) -> list[Obj]:
    """The namespaced ServingRuntime a ``custom`` model brings its image in; nothing for catalog runtimes."""
    from modelplane.kube import labels
    from modelplane.runtimes import FormatSpec, render_runtime

    if version.runtime != "custom":
        return []
    return [
        render_runtime(
            ctx.catalog["custom"],
            name=name,
            namespace=namespace,
            labels=labels(args.stack.name, "runtime"),
            image=version.image,
            formats=[FormatSpec(name=version.format.name, version=version.format.version, auto_select=False)],
        )
    ]


def _model_objects(args: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    """Every model's objects (and the ServingRuntime of each `custom` model)."""
    from modelplane.kube import dns_name

    result: list[Obj] = []
    for m, mode in zip(args.models, ctx.modes, strict=True):
        namespace = args.tenant(m.tenant).namespace_name
        record = ctx.rollouts.get(model_key(namespace, m.name)) if ctx.rollouts is not None else None
        if record is not None:
            result += _rollout_objects(args, ctx, m, mode, namespace, record)
            continue
        result += _custom_runtime(args, ctx, m, namespace=namespace, name=dns_name(m.name, "runtime"))
        result += _render_model(args, ctx, m, mode=mode, namespace=namespace)
    return result


def _rollout_objects(
    args: ServingPlatformArgs,
    ctx: BuildContext,
    m: ModelArgs,
    mode: DeploymentMode,
    namespace: str,
    record: ModelRecord,
) -> list[Obj]:
    """A model's objects under its rollout state (see ``modelplane.rollout.compile``)."""
    from modelplane.rollout.compile import Routing, model_objects

    def render(
        version: ModelArgs,
        *,
        predictor_overrides: dict[str, Any] | None = None,
        canary: list[dict[str, Any]] | None = None,
    ) -> list[Obj]:
        return _render_model(
            args,
            ctx,
            version,
            mode=mode,
            namespace=namespace,
            predictor_overrides=predictor_overrides,
            canary=canary,
        )

    def custom_runtime(version: ModelArgs, name: str) -> list[Obj]:
        return _custom_runtime(args, ctx, version, namespace=namespace, name=name)

    ingress = args.control_plane.ingress
    routing = Routing(
        stack=args.stack.name,
        gateway_name=ingress.gateway_name,
        gateway_namespace=ingress.gateway_namespace,
        domain=ingress.domain,
    )
    return model_objects(m, record, mode=mode, render=render, custom_runtime=custom_runtime, routing=routing)


def _tenant_objects(args: ServingPlatformArgs, ctx: BuildContext) -> list[Obj]:
    from modelplane import tenant

    ingress_namespaces = [args.control_plane.ingress.gateway_namespace, args.control_plane.namespace]
    if ctx.uses_knative:
        ingress_namespaces += ["knative-serving", f"{args.control_plane.network_layer}-system"]
    mesh_tenants = {m.tenant for m, mode in zip(args.models, ctx.modes, strict=True) if mode == "modelmesh"}
    if mesh_tenants:
        ingress_namespaces.append(args.model_mesh.namespace)
    result: list[Obj] = []
    for t in args.tenants:
        result += tenant.objects(
            t,
            stack=args.stack.name,
            kubernetes_minor=args.versions.kubernetes_minor,
            ingress_namespaces=ingress_namespaces,
            monitoring_namespace=args.monitoring.namespace,
            mesh=t.name in mesh_tenants,
            mesh_namespace=args.model_mesh.namespace,
            gpu_pools=list(args.gpu_pools),
        )
    return result


def _unique(objects: list[Obj]) -> list[Obj]:
    """Objects with duplicates of identical content removed; differing duplicates are a bug."""
    from modelplane.kube import ObjectKey, key_of

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
    args: ServingPlatformArgs, *, catalog: dict[str, RuntimeSpec] | None = None, lock: Lock | None = None
) -> PlatformObjects:
    """Every object and upstream chart of a stack, in render order. Pure and deterministic.

    With a ``lock`` (the deployed state; an empty lock when nothing is deployed) models render
    under their rollout state with the stack's changes applied: canary splits, side objects,
    shadow routes. Without one, every model renders as its stack entry alone.
    """
    from modelplane import control_plane, gpu_operator, monitoring
    from modelplane.kube import sorted_objects

    rollouts = None
    if lock is not None:
        from modelplane.rollout.state import effective_records

        rollouts = effective_records(args, lock)
    ctx = BuildContext(
        catalog=catalog if catalog is not None else load_catalog(),
        modes=tuple(args.mode(m) for m in args.models),
        rollouts=rollouts,
    )
    result = PlatformObjects(rollouts=rollouts)
    parts = [
        control_plane.contribute(args, ctx),
        gpu_operator.contribute(args, ctx),
        model_mesh.contribute(args, ctx),
        monitoring.contribute(args, ctx),
    ]
    objects: list[Obj] = _tenant_objects(args, ctx) + _runtime_objects(args, ctx) + _model_objects(args, ctx)
    for part in parts:
        objects += part.objects
        result.charts += part.charts
        result.warnings += part.warnings
    result.objects = sorted_objects(_unique(objects))
    result.charts.sort(key=lambda c: (c.wave, c.release))
    return result

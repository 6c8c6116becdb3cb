"""Pulumi components of the serving platform.

``ServingPlatform`` builds every object of a stack with the pure ``build()`` and hands each
part to the component that owns it (``COMPONENTS``, by the objects' ``Part``): upstream charts
to ``ControlPlane``, namespaces and policies to ``Tenants``, serving runtimes to
``RuntimeCatalog``, models to ``ModelCatalog``, and so on. A program may compose any of these
components itself. Registrations stay at one per object (no wrapper component per model),
because Pulumi's cost grows faster than linearly with registered resources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

import pulumi

from modelplane.build import PlatformObjects, build
from modelplane.image_lock import ImageLock
from modelplane.kube import Obj, Part, model_key
from modelplane.resources._register import ObjectGroup
from modelplane.resources.mesh import GpuRuntimePool, ModelMesh
from modelplane.resources.upstream import (
    register_chart_objects,
    register_kustomize,
    register_release,
    require_server_side_apply,
)
from modelplane.rollout.lock import Lock
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.upstream import KustomizeRelease, Release


class ControlPlane(pulumi.ComponentResource):
    """Upstream releases (cert-manager, Envoy Gateway, KServe, Knative, KEDA, ...) in dependency order.

    Each release depends on the releases it names, and on the objects those carry: the KServe
    controller waits until the ``KnativeServing`` is Ready, because KServe decides at start-up
    whether to watch Knative Services. Releases that install CRDs are retained when the stack
    is removed and, with ``protect_crds``, protected (see ``modelplane.resources.upstream``).
    Kustomize releases (ModelMesh Serving) are installed with their Namespace first.
    Releases named in ``external`` are installed by someone else (another team, or the test
    control plane): they are not registered, and objects that need them are applied directly.
    """

    releases: dict[str, pulumi.Resource]
    chart_objects: dict[str, list[pulumi.Resource]]
    namespaces: dict[str, pulumi.Resource]
    """Namespace name → what creates it: a Namespace the control plane registers (a kustomize
    release's, or one a chart carries), else the first Helm release installing into it."""

    def __init__(
        self,
        name: str,
        charts: Sequence[Release],
        *,
        protect_crds: bool,
        external: frozenset[str] = frozenset(),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("modelplane:index:ControlPlane", name, None, opts)
        require_server_side_apply()
        self.releases = {}
        self.chart_objects = {}
        created: dict[str, pulumi.Resource] = {}
        by_release: dict[str, pulumi.Resource] = {}
        for chart in sorted(charts, key=lambda c: (c.wave, c.release)):
            earlier: list[pulumi.Resource] = []
            for dep in chart.depends_on:
                if dep in self.releases:
                    earlier.append(self.releases[dep])
                earlier += self.chart_objects.get(dep, [])
            if isinstance(chart, KustomizeRelease):
                self.chart_objects[chart.release] = []
                if chart.release not in external:
                    install = register_kustomize(self, name, chart, depends_on=earlier, protect=protect_crds)
                    self.releases[chart.release] = install.release
                    created[chart.namespace] = install.namespace
                continue
            release: pulumi.Resource | None = None
            if chart.release not in external:
                release = register_release(self, name, chart, depends_on=earlier, protect=protect_crds)
                self.releases[chart.release] = release
                # Helm creates the release's namespace (create_namespace) when it installs.
                by_release.setdefault(chart.namespace, release)
            # An external release is installed by someone else; what modelplane authors for it
            # (such as the KnativeServing its operator reconciles) is applied all the same.
            self.chart_objects[chart.release] = list(
                register_chart_objects(self, chart, release, protect=protect_crds)
            )
            for obj, registered in zip(chart.objects, self.chart_objects[chart.release], strict=True):
                if obj["apiVersion"] == "v1" and obj["kind"] == "Namespace":
                    created[obj["metadata"]["name"]] = registered
        self.namespaces = by_release | created
        self.register_outputs({"releases": {n: getattr(r, "status", None) for n, r in self.releases.items()}})

    def group_dependencies(self, charts: Sequence[Release]) -> dict[str, list[pulumi.Resource]]:
        """API group → releases (and their objects) whose readiness objects of that group need."""
        result: dict[str, list[pulumi.Resource]] = defaultdict(list)
        for chart in charts:
            for group in chart.needed_by_groups:
                if chart.release in self.releases:
                    result[group].append(self.releases[chart.release])
                result[group] += self.chart_objects.get(chart.release, [])
        return dict(result)


class Tenants(ObjectGroup):
    """Tenant namespaces (Pod Security "restricted") and their NetworkPolicies."""

    TYPE_TOKEN = "modelplane:index:Tenants"

    def namespaces(self) -> dict[str, pulumi.Resource]:
        """Namespace name → the Namespace resource."""
        return {
            name.removeprefix("namespace:"): res
            for name, res in self.objects.items()
            if name.startswith("namespace:")
        }


class RuntimeCatalog(ObjectGroup):
    """ServingRuntimes and ClusterServingRuntimes of the models' runtimes."""

    TYPE_TOKEN = "modelplane:index:RuntimeCatalog"


class ModelCatalog(ObjectGroup):
    """Every model's InferenceService and storage ServiceAccount (and a rollout's side objects)."""

    TYPE_TOKEN = "modelplane:index:ModelCatalog"


class PlatformConfig(ObjectGroup):
    """modelplane-authored configuration of the platform's own software (and anything of no other part)."""

    TYPE_TOKEN = "modelplane:index:PlatformConfig"


class Monitoring(ObjectGroup):
    """PodMonitors, ServiceMonitors and PrometheusRules (recording rules and SLO alerts) of the models."""

    TYPE_TOKEN = "modelplane:index:Monitoring"


def _creates_namespaces(objects: Sequence[Obj]) -> bool:
    return any(o["kind"] == "Namespace" for o in objects)


COMPONENTS: dict[Part, type[ObjectGroup]] = {
    "tenant": Tenants,
    "runtime": RuntimeCatalog,
    "model": ModelCatalog,
    "monitoring": Monitoring,
    "modelmesh": ModelMesh,
    "gpu-pool": GpuRuntimePool,
}
"""The component that registers each part's objects; ``PlatformConfig`` takes every other part."""


class ServingPlatform(pulumi.ComponentResource):
    """The whole serving platform of one stack.

    ``external_releases`` names upstream releases of the stack that are installed by someone
    else (default: none): see ``ControlPlane``.
    """

    rendered: PlatformObjects
    control_plane: ControlPlane
    groups: dict[str, ObjectGroup]

    def __init__(
        self,
        name: str,
        args: ServingPlatformArgs,
        *,
        lock: Lock | None = None,
        images: ImageLock | None = None,
        external_releases: frozenset[str] = frozenset(),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("modelplane:index:ServingPlatform", name, None, opts)
        # The lock is the deployed state: with it, models render at their rollout's traffic
        # split, exactly as the GitOps render and the preview do. The image lock pins images by
        # digest (and, under images.pinning: digest, refuses an image it does not pin).
        self.rendered = build(args, lock=lock, images=images)
        for warning in self.rendered.warnings:
            # Shown by `pulumi preview` and `pulumi up` beside this component.
            pulumi.log.warn(warning, resource=self)
        child = pulumi.ResourceOptions(parent=self)
        protect = args.stack.tier != "dev"
        unknown = sorted(external_releases - {c.release for c in self.rendered.charts})
        if unknown:
            raise ValueError(
                f"external releases {unknown} are not releases of stack {args.stack.name!r} "
                f"(it has {sorted(c.release for c in self.rendered.charts)})"
            )
        self.control_plane = ControlPlane(
            f"{name}-control-plane",
            self.rendered.charts,
            protect_crds=protect,
            external=external_releases,
            opts=child,
        )
        dependencies = self.control_plane.group_dependencies(self.rendered.charts)
        by_component = self.rendered.parts()
        by_component.setdefault("tenant", [])
        # Groups that create namespaces go first, so every object in a namespace modelplane
        # creates can depend on its Namespace, whichever component owns the Namespace; objects
        # in a namespace an upstream release creates (ModelMesh's, KServe's) wait for it too.
        namespaces: dict[str, pulumi.Resource] = dict(self.control_plane.namespaces)
        self.groups = {}
        for component in sorted(by_component, key=lambda c: (not _creates_namespaces(by_component[c]), c)):
            cls = COMPONENTS.get(cast(Part, component), PlatformConfig)
            self.groups[component] = cls(
                f"{name}-{'tenants' if component == 'tenant' else component}",
                by_component[component],
                dependencies=dependencies,
                namespaces=namespaces,
                protect=protect,
                opts=child,
            )
        outputs: dict[str, Any] = {
            "stack": args.stack.name,
            "tier": args.stack.tier,
            "models": {
                model_key(args.tenant(m.tenant).namespace_name, m.name): {
                    "version": m.version,
                    "mode": args.mode(m),
                }
                for m in args.models
            },
            "charts": {c.release: f"{c.chart}@{c.version}" for c in self.rendered.charts},
        }
        self.outputs = outputs
        self.register_outputs(outputs)

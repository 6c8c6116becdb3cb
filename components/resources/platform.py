"""Pulumi components of the serving platform.

``ServingPlatform`` builds every object of a stack with the pure ``build()`` and hands
each group to the component that owns it: upstream charts to ``ControlPlane``, namespaces
and policies to ``Tenants``, serving runtimes to ``RuntimeCatalog``, models to
``ModelCatalog``. Registrations stay at one per object (no wrapper component per model),
because Pulumi's cost grows faster than linearly with registered resources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pulumi

from components.kube import LABEL_COMPONENT, Obj
from components.resources._register import TYPE_PREFIX, KubeObject, register_chart, register_objects
from components.serving_platform import PlatformObjects, ServingPlatformArgs, build
from components.upstream import Chart


class ControlPlane(pulumi.ComponentResource):
    """Upstream releases (cert-manager, KServe, Knative, KEDA, ...) installed in dependency order."""

    releases: dict[str, pulumi.Resource]

    def __init__(
        self,
        name: str,
        charts: Sequence[Chart],
        *,
        protect_crds: bool,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        from components.resources.mesh import register_kustomize
        from components.upstream import KustomizeRelease

        super().__init__(f"{TYPE_PREFIX}ControlPlane", name, None, opts)
        self.releases = {}
        for chart in sorted(charts, key=lambda c: (c.wave, c.release)):
            earlier = [self.releases[d] for d in chart.depends_on if d in self.releases]
            if isinstance(chart, KustomizeRelease):
                self.releases[chart.release] = register_kustomize(
                    self, name, chart, depends_on=earlier, protect=protect_crds
                )
                continue
            self.releases[chart.release] = register_chart(
                self, name, chart, depends_on=earlier, protect=protect_crds
            )
        self.register_outputs({"releases": {n: getattr(r, "status", None) for n, r in self.releases.items()}})

    def group_dependencies(self, charts: Sequence[Chart]) -> dict[str, list[pulumi.Resource]]:
        """API group → releases whose readiness objects of that group need."""
        result: dict[str, list[pulumi.Resource]] = defaultdict(list)
        for chart in charts:
            for group in chart.needed_by_groups:
                result[group].append(self.releases[chart.release])
        return dict(result)


class _ObjectGroup(pulumi.ComponentResource):
    """A component that registers a group of rendered objects as its children."""

    TOKEN = "ObjectGroup"
    objects: dict[str, KubeObject]

    def __init__(
        self,
        name: str,
        objects: Sequence[Obj],
        *,
        dependencies: dict[str, list[pulumi.Resource]] | None = None,
        namespaces: dict[str, pulumi.Resource] | None = None,
        protect: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}{self.TOKEN}", name, None, opts)
        self.objects = register_objects(
            self, objects, dependencies=dependencies, namespaces=namespaces, protect=protect
        )
        self.register_outputs({"count": len(self.objects)})


class Tenants(_ObjectGroup):
    """Tenant namespaces (Pod Security "restricted") and their NetworkPolicies."""

    TOKEN = "Tenants"

    def namespaces(self) -> dict[str, pulumi.Resource]:
        """Namespace name → the Namespace resource."""
        return {
            name.removeprefix("namespace-"): res
            for name, res in self.objects.items()
            if name.startswith("namespace-")
        }


class RuntimeCatalog(_ObjectGroup):
    """ServingRuntimes and ClusterServingRuntimes of the models' runtimes."""

    TOKEN = "RuntimeCatalog"


class ModelCatalog(_ObjectGroup):
    """Every model's InferenceService and storage ServiceAccount."""

    TOKEN = "ModelCatalog"


class PlatformConfig(_ObjectGroup):
    """modelplane-authored configuration of the platform's own software."""

    TOKEN = "PlatformConfig"


_GROUPS: dict[str, type[_ObjectGroup]] = {
    "tenant": Tenants,
    "runtime": RuntimeCatalog,
    "model": ModelCatalog,
}


class ServingPlatform(pulumi.ComponentResource):
    """The whole serving platform of one stack."""

    rendered: PlatformObjects
    control_plane: ControlPlane
    groups: dict[str, _ObjectGroup]

    def __init__(
        self, name: str, args: ServingPlatformArgs, *, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}ServingPlatform", name, None, opts)
        self.rendered = build(args)
        child = pulumi.ResourceOptions(parent=self)
        protect = args.stack.tier != "dev"
        self.control_plane = ControlPlane(
            f"{name}-control-plane", self.rendered.charts, protect_crds=protect, opts=child
        )
        dependencies = self.control_plane.group_dependencies(self.rendered.charts)
        by_component: dict[str, list[Obj]] = defaultdict(list)
        for obj in self.rendered.objects:
            by_component[obj["metadata"].get("labels", {}).get(LABEL_COMPONENT, "config")].append(obj)
        self.groups = {}
        tenants = Tenants(f"{name}-tenants", by_component.pop("tenant", []), opts=child)
        self.groups["tenant"] = tenants
        namespaces = tenants.namespaces()
        from components.resources.mesh import GROUPS as MESH_GROUPS

        for component in sorted(by_component):
            cls = _GROUPS.get(component) or MESH_GROUPS.get(component, PlatformConfig)
            self.groups[component] = cls(
                f"{name}-{component}",
                by_component[component],
                dependencies=dependencies,
                namespaces=namespaces,
                opts=child,
            )
        outputs: dict[str, Any] = {
            "stack": args.stack.name,
            "tier": args.stack.tier,
            "models": {
                f"{args.tenant(m.tenant).namespace_name}/{m.name}": {
                    "version": m.version,
                    "mode": args.mode(m),
                }
                for m in args.models
            },
            "charts": {c.release: f"{c.chart}@{c.version}" for c in self.rendered.charts},
        }
        self.outputs = outputs
        self.register_outputs(outputs)

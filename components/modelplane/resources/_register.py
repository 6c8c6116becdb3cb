"""Registering plain Kubernetes objects as Pulumi resources, one per object, and groups of them.

``KubeObject`` registers a rendered object unchanged under its own pulumi-kubernetes type token;
``ObjectGroup`` is a component that registers a group of them as its children. Every modelplane
component spells out its type token: tokens are part of URNs, so a class rename must not move them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pulumi
from pulumi_kubernetes import _utilities as k8s_utilities

from modelplane.kube import Obj, resource_name, type_token
from modelplane.validation import group_of

TYPE_PREFIX = "modelplane:index:"
"""Type-token prefix of every modelplane component. Tokens are part of URNs: never rename one
without ``aliases``; each component spells its whole token out."""


KEPT_KINDS: frozenset[str] = frozenset(
    {"Namespace", "CustomResourceDefinition", "PersistentVolumeClaim", "StatefulSet", "InferenceService"}
)
"""Kinds whose deletion takes data or serving with it: a namespace and everything in it, every
custom resource of a CRD, a volume, etcd's StatefulSet (its volume claims), a model that serves.
Outside dev they are protected (``pulumi destroy`` and a removal from the program refuse) and
retained on delete (removing one from Pulumi's state leaves it running)."""


def keep_options(obj: Obj, protect: bool) -> pulumi.ResourceOptions:
    """``protect`` and ``retain_on_delete`` for an object: both when ``protect`` and its kind is kept."""
    keep = protect and obj.get("kind") in KEPT_KINDS
    return pulumi.ResourceOptions(protect=keep, retain_on_delete=keep)


def provider_version() -> str:
    """The version of the Kubernetes provider plugin this pulumi-kubernetes SDK drives (semver).

    Resources registered under raw type tokens must name it, as the SDK's own classes do. The
    SDK keeps the conversion from its PEP 440 package version in a private module; this is the
    one place that reaches into it, and a test fails if it moves.
    """
    version: str = k8s_utilities.get_version()  # type: ignore[no-untyped-call]
    return version


class KubeObject(pulumi.CustomResource):
    """Any Kubernetes object, registered under its own pulumi-kubernetes type token.

    pulumi-kubernetes resources are plain objects on the wire; registering the object we
    rendered, unchanged, under its ``kubernetes:<group>/<version>:<Kind>`` token keeps
    Pulumi's inputs byte-for-byte what the GitOps render writes.
    """

    def __init__(self, name: str, obj: Obj, opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=provider_version()))
        super().__init__(type_token(obj), name, dict(obj), opts)


def register_objects(
    parent: pulumi.Resource,
    objects: Sequence[Obj],
    *,
    dependencies: dict[str, list[pulumi.Resource]] | None = None,
    namespaces: dict[str, pulumi.Resource] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    protect: bool = False,
) -> dict[str, KubeObject]:
    """Register objects as children of ``parent``.

    ``dependencies`` maps an API group to the resources that must be ready before any
    object of that group (the release that installs its CRD or webhooks); ``namespaces``
    maps a namespace to the resource that creates it, and gains every Namespace registered
    here, so objects in a namespace created in the same batch (or a later one) wait for it;
    ``depends_on`` applies to every object. Namespaces are registered first, whatever
    their position in ``objects``. ``protect`` (outside dev) protects and retains the objects
    of ``KEPT_KINDS``.
    """
    dependencies = dependencies or {}
    namespaces = namespaces if namespaces is not None else {}
    result: dict[str, KubeObject] = {}
    ordered = [o for o in objects if _is_namespace(o)] + [o for o in objects if not _is_namespace(o)]
    for obj in ordered:
        depends: list[pulumi.Resource] = [*depends_on, *dependencies.get(group_of(obj["apiVersion"]), [])]
        namespace = obj.get("metadata", {}).get("namespace")
        if namespace and namespace in namespaces:
            depends.append(namespaces[namespace])
        name = resource_name(obj)
        if name in result:
            raise ValueError(f"two objects register as {name!r}: {obj['kind']} {namespace or ''}")
        result[name] = KubeObject(
            name,
            obj,
            pulumi.ResourceOptions.merge(
                pulumi.ResourceOptions(parent=parent, depends_on=depends), keep_options(obj, protect)
            ),
        )
        if _is_namespace(obj):
            namespaces[obj["metadata"]["name"]] = result[name]
    return result


def _is_namespace(obj: Obj) -> bool:
    return bool(obj["apiVersion"] == "v1" and obj["kind"] == "Namespace")


class ObjectGroup(pulumi.ComponentResource):
    """A component that registers a group of rendered objects as its children.

    Each subclass spells out its ``TYPE_TOKEN`` (``modelplane:index:<ClassName>``).
    """

    TYPE_TOKEN: ClassVar[str]
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
        super().__init__(self.TYPE_TOKEN, name, None, opts)
        self.objects = register_objects(
            self, objects, dependencies=dependencies, namespaces=namespaces, protect=protect
        )
        self.register_outputs({"count": len(self.objects)})

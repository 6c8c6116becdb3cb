"""Pulumi components of the model mesh and the GPU runtime pools.

``ModelMesh`` installs ModelMesh Serving from its release tag (``kustomize.v2.Directory``
over a local overlay that sets the namespace inside kustomize and carries the patches) and
registers the mesh's own objects after the namespace exists. ``GpuRuntimePool`` registers
the GPU operator's configuration, NodePools and PriorityClasses the same way. Both take the
objects the pure ``build()`` rendered, so Pulumi applies exactly what GitOps writes.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kube import Obj, resource_name
from components.resources._register import TYPE_PREFIX, KubeObject, register_objects
from components.resources.platform import _ObjectGroup
from components.upstream import KustomizeRelease

OVERLAY_DIR_NAME = "modelplane-kustomize"


def overlay_dir(release: KustomizeRelease, path: str, root: Path | None = None) -> Path:
    """Write the overlay of one path of a release; the directory name is a hash of its content.

    The same release always gives the same directory, so the ``directory`` input of the
    Pulumi resource does not change between runs on one machine.
    """
    text = yaml.safe_dump(release.overlay(path), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    directory = (
        (root or Path(tempfile.gettempdir())) / OVERLAY_DIR_NAME / f"{release.path_name(path)}-{digest}"
    )
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "kustomization.yaml"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return directory


def register_kustomize(
    parent: pulumi.Resource,
    prefix: str,
    release: KustomizeRelease,
    *,
    depends_on: Sequence[pulumi.Resource],
    protect: bool,
    overlay_root: Path | None = None,
) -> pulumi.Resource:
    """Install a kustomize release: its namespace, then each path in order. Returns the last path.

    Releases that install CRDs are kept when the stack is destroyed, like chart releases.
    """
    namespace = KubeObject(
        f"{prefix}-{release.release}-namespace",
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": release.namespace, "labels": dict(release.namespace_labels)},
        },
        pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
    previous: pulumi.Resource = namespace
    for path in release.paths:
        previous = k8s.kustomize.v2.Directory(
            f"{prefix}-{release.path_name(path)}",
            directory=str(overlay_dir(release, path, overlay_root)),
            opts=pulumi.ResourceOptions(
                parent=parent,
                depends_on=[*depends_on, previous],
                protect=protect and bool(release.needed_by_groups),
                retain_on_delete=bool(release.needed_by_groups),
            ),
        )
    return previous


def _namespaces_first(
    parent: pulumi.Resource,
    objects: Sequence[Obj],
    *,
    dependencies: dict[str, list[pulumi.Resource]] | None,
    namespaces: dict[str, pulumi.Resource] | None,
    protect: bool,
) -> dict[str, KubeObject]:
    """Register Namespace objects first, then everything else after the namespace it lives in."""
    own = [o for o in objects if o["kind"] == "Namespace"]
    created = register_objects(parent, own, dependencies=dependencies, protect=protect)
    known = dict(namespaces or {})
    for obj in own:
        known[obj["metadata"]["name"]] = created[resource_name(obj)]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    created |= register_objects(parent, rest, dependencies=dependencies, namespaces=known, protect=protect)
    return created


class _Group(_ObjectGroup):
    """A component over a group of rendered objects, namespaces registered first."""

    TOKEN = "Group"

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
        # Not _ObjectGroup.__init__: the objects here include the namespaces they live in.
        pulumi.ComponentResource.__init__(self, f"{TYPE_PREFIX}{self.TOKEN}", name, None, opts)
        self.objects = _namespaces_first(
            self, objects, dependencies=dependencies, namespaces=namespaces, protect=protect
        )
        self.register_outputs({"count": len(self.objects)})


class ModelMesh(_Group):
    """The model mesh's own objects: its configuration, etcd and its certificates."""

    TOKEN = "ModelMesh"


class GpuRuntimePool(_Group):
    """The GPU pools' objects: GPU operator configuration, Karpenter NodePools and PriorityClasses."""

    TOKEN = "GpuRuntimePool"


class ModelMeshInstall(pulumi.ComponentResource):
    """ModelMesh Serving itself, from its release tag, for programs that compose their own platform."""

    release: pulumi.Resource

    def __init__(
        self,
        name: str,
        release: KustomizeRelease,
        *,
        depends_on: Sequence[pulumi.Resource] = (),
        protect: bool = False,
        overlay_root: Path | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}ModelMeshInstall", name, None, opts)
        self.release = register_kustomize(
            self, name, release, depends_on=depends_on, protect=protect, overlay_root=overlay_root
        )
        self.register_outputs({"namespace": release.namespace, "ref": release.ref})


GROUPS: dict[str, type[_ObjectGroup]] = {"modelmesh": ModelMesh, "gpu-pool": GpuRuntimePool}
"""Component label of rendered objects -> the component that registers them."""

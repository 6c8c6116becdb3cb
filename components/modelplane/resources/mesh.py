"""Pulumi components of the model mesh and the GPU runtime pools.

``ModelMesh`` registers the mesh's own objects after the namespace of its release exists;
``GpuRuntimePool`` registers the GPU operator's configuration, NodePools and PriorityClasses.
Both take the objects the pure ``build()`` rendered, so Pulumi applies exactly what GitOps
writes. ``ModelMeshInstall`` installs ModelMesh Serving itself (``register_kustomize``) for a
program that composes its own platform; ``ServingPlatform`` does so under its ``ControlPlane``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pulumi

from modelplane.resources._register import KubeObject, ObjectGroup
from modelplane.resources.upstream import register_kustomize
from modelplane.upstream import KustomizeRelease


class ModelMesh(ObjectGroup):
    """The model mesh's own objects: its configuration, etcd and its certificates.

    They live in the namespace of the ModelMesh release, which the ``ControlPlane`` creates, so
    ``ServingPlatform`` passes that Namespace in ``namespaces`` and every object waits for it.
    """

    TYPE_TOKEN = "modelplane:index:ModelMesh"


class GpuRuntimePool(ObjectGroup):
    """The GPU pools' objects: GPU operator configuration, Karpenter NodePools and PriorityClasses."""

    TYPE_TOKEN = "modelplane:index:GpuRuntimePool"


class ModelMeshInstall(pulumi.ComponentResource):
    """ModelMesh Serving itself, from its release tag, for programs that compose their own platform.

    ``namespace`` is the release's Namespace (objects placed in it should depend on it);
    ``release`` is its last path, ready once ModelMesh is installed.
    """

    namespace: KubeObject
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
        super().__init__("modelplane:index:ModelMeshInstall", name, None, opts)
        self.namespace, self.release = register_kustomize(
            self, name, release, depends_on=depends_on, protect=protect, overlay_root=overlay_root
        )
        self.register_outputs({"namespace": release.namespace, "ref": release.ref})

"""Pulumi components of the model mesh and the GPU runtime pools.

``register_kustomize`` installs a kustomize release such as ModelMesh Serving from its
release tag (its Namespace, then ``kustomize.v2.Directory`` per path over a local overlay
that sets the namespace inside kustomize and carries the patches); ``ServingPlatform`` does
so under its ``ControlPlane``. ``ModelMesh`` registers the mesh's own objects after that
namespace exists; ``GpuRuntimePool`` registers the GPU operator's configuration, NodePools
and PriorityClasses. Both take the objects the pure ``build()`` rendered, so Pulumi applies
exactly what GitOps writes.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import pulumi
import pulumi_kubernetes as k8s
import yaml

from modelplane.kube import resource_name
from modelplane.resources._register import TYPE_PREFIX, KubeObject
from modelplane.resources.platform import _ObjectGroup
from modelplane.upstream import KustomizeRelease

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


class KustomizeInstall(NamedTuple):
    """A kustomize release as registered: its Namespace, and the last of its paths."""

    namespace: KubeObject
    release: pulumi.Resource


def register_kustomize(
    parent: pulumi.Resource,
    prefix: str,
    release: KustomizeRelease,
    *,
    depends_on: Sequence[pulumi.Resource],
    protect: bool,
    overlay_root: Path | None = None,
) -> KustomizeInstall:
    """Install a kustomize release: its namespace, then each path in order.

    The Namespace is the release's ``namespace_object`` (what GitOps applies too), named like
    the objects a chart carries (``<release>-<resource name>``). A release is kept when the
    stack is destroyed (and protected with ``protect``) only if it installs CRDs that
    modelplane's objects need, like chart releases (``KustomizeRelease.crds``).
    """
    obj = release.namespace_object
    namespace = KubeObject(
        f"{release.release}-{resource_name(obj)}",
        obj,
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
                protect=protect and release.crds,
                retain_on_delete=release.crds,
            ),
        )
    return KustomizeInstall(namespace, previous)


class ModelMesh(_ObjectGroup):
    """The model mesh's own objects: its configuration, etcd and its certificates.

    They live in the namespace of the ModelMesh release, which the ``ControlPlane`` creates, so
    ``ServingPlatform`` passes that Namespace in ``namespaces`` and every object waits for it.
    """


class GpuRuntimePool(_ObjectGroup):
    """The GPU pools' objects: GPU operator configuration, Karpenter NodePools and PriorityClasses."""


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
        super().__init__(f"{TYPE_PREFIX}ModelMeshInstall", name, None, opts)
        self.namespace, self.release = register_kustomize(
            self, name, release, depends_on=depends_on, protect=protect, overlay_root=overlay_root
        )
        self.register_outputs({"namespace": release.namespace, "ref": release.ref})


GROUPS: dict[str, type[_ObjectGroup]] = {"modelmesh": ModelMesh, "gpu-pool": GpuRuntimePool}
"""Component label of rendered objects -> the component that registers them."""

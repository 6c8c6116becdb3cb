"""Pinned upstream versions, and the shape of an upstream release.

Upstream software is installed from its own releases, never re-authored. ``Versions`` pins
them per stack; a ``Chart`` (a Helm chart by repository, name and version) or a
``KustomizeRelease`` (directories of a repository at a tag) describes one release, so that the
Pulumi program installs it and the GitOps render emits a Flux ``HelmRelease`` or
``Kustomization`` (or an Argo CD ``Application``) for the same release. The part that installs
a release names its coordinates: ``control_plane.charts``, ``gpu_operator.chart``,
``monitoring.chart``, ``model_mesh.release``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modelplane.base import StrictModel
from modelplane.types import Version


class Versions(StrictModel):
    """Upstream versions a stack pins; every install and schema check follows them."""

    kserve: Version = Field(default="v0.20.0", description="KServe release (CRDs, controller, runtimes).")
    knative: Version = Field(
        default="v1.21.1",
        description="Knative Serving release, installed through the Knative operator chart.",
    )
    cert_manager: Version = Field(
        default="v1.17.0", description="cert-manager release (KServe's webhooks need it)."
    )
    gateway_api: Version = Field(
        default="v1.5.1",
        description="Gateway API CRD release; Envoy Gateway's chart installs its experimental channel, which "
        "holds the standard one.",
    )
    prometheus_stack: Version = Field(
        default="88.5.3", description="kube-prometheus-stack chart version (Prometheus operator, Prometheus)."
    )
    gpu_operator: Version = Field(default="v26.7.0", description="NVIDIA GPU operator chart version.")
    modelmesh: Version = Field(
        default="v0.12.0",
        description="ModelMesh Serving release. Upstream is archived; modelplane keeps it a supported backend.",
    )
    keda: Version = Field(
        default="2.18.0", description="KEDA chart version, installed when a model scales on KEDA."
    )
    envoy_gateway: Version = Field(
        default="v1.8.1",
        description="Envoy Gateway chart version; it ships the Gateway API CRDs (v1.5.1 for this release) and implements the inference Gateway.",
    )
    istio: Version = Field(
        default="1.27.1",
        description="Istio charts version, installed when Knative uses the istio networking layer.",
    )
    kubernetes: Version = Field(
        default="1.33",
        description="Kubernetes minor version of the target cluster; rendered objects are validated against it.",
    )

    @property
    def kubernetes_minor(self) -> str:
        """The ``major.minor`` of the pinned Kubernetes version."""
        major, minor = self.kubernetes.lstrip("v").split(".")[:2]
        return f"{major}.{minor}"


class Chart(StrictModel):
    """One upstream Helm release: where the chart lives and how it is installed."""

    release: str = Field(description="Helm release name; also the object name in GitOps output.")
    namespace: str = Field(description="Namespace the release installs into.")
    repository: str = Field(description="Chart repository URL (https:// or oci://).")
    chart: str = Field(description="Chart name inside the repository.")
    version: str = Field(description="Exact chart version.")
    values: dict[str, Any] = Field(
        default_factory=dict, description="Chart values, computed from typed args."
    )
    depends_on: tuple[str, ...] = Field(default=(), description="Releases that must be ready first.")
    needed_by_groups: tuple[str, ...] = Field(
        default=(),
        description="API groups whose objects need this release ready first (it installs their CRDs or webhooks).",
    )
    wave: int = Field(default=0, description="Install order; lower waves are ready before higher ones start.")
    crds: bool = Field(
        default=False,
        description="The release installs CRDs: it is kept when a stack is removed (and protected outside dev) "
        "so that removing a stack never deletes every custom resource with its CRD.",
    )
    objects: tuple[dict[str, Any], ...] = Field(
        default=(),
        description="modelplane-authored objects of this upstream (such as the KnativeServing its operator "
        "reconciles), applied once the release is ready and before any release that depends on it.",
    )

    @property
    def repository_name(self) -> str:
        """A stable name for the chart's source object in GitOps output."""
        host = self.repository.split("://", 1)[-1].split("/", 1)[0]
        return host.replace(".", "-").replace(":", "-")[:63].strip("-")


class KustomizePatch(StrictModel):
    """One patch applied to an upstream kustomization (strategic merge or JSON 6902, as YAML text)."""

    target: dict[str, str] = Field(description="Selector of the objects patched (kind, name, group, ...).")
    patch: str = Field(description="The patch, as YAML text.")


class KustomizeRelease(StrictModel):
    """An upstream release installed from kustomize directories of its tagged Git repository.

    For projects that publish no Helm chart (ModelMesh Serving). GitOps output becomes a Flux
    ``GitRepository`` at the tag plus one ``Kustomization`` per path (or Argo CD
    ``Application``s); Pulumi applies the same paths with ``kustomize.v2.Directory`` through
    a local overlay that sets the namespace and carries the patches.
    """

    release: str = Field(description="Release name; prefixes the GitOps object names.")
    namespace: str = Field(description="Namespace every namespaced object of the release goes to.")
    namespace_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels of that namespace (Pod Security level, ownership)."
    )
    repository: str = Field(description="Git repository URL (https://).")
    ref: str = Field(description="Git tag of the pinned release.")
    paths: tuple[str, ...] = Field(
        description="Kustomize directories inside the repository, applied in order."
    )
    patches: tuple[KustomizePatch, ...] = Field(default=(), description="Patches applied to every path.")
    depends_on: tuple[str, ...] = Field(default=(), description="Releases that must be ready first.")
    needed_by_groups: tuple[str, ...] = Field(
        default=(),
        description="API groups whose objects need this release ready first (it installs their CRDs or webhooks).",
    )
    wave: int = Field(default=0, description="Install order; lower waves are ready before higher ones start.")

    @property
    def objects(self) -> tuple[dict[str, Any], ...]:
        """Objects applied once the release is ready: none (the interface matches ``Chart``)."""
        return ()

    @property
    def namespace_object(self) -> dict[str, Any]:
        """The Namespace the release installs into, applied before its first path.

        Upstream kustomize directories do not create it. Pulumi, Flux and Argo CD (as managed
        namespace metadata) all create it from this one definition, with ``namespace_labels``.
        """
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": self.namespace, "labels": dict(sorted(self.namespace_labels.items()))},
        }

    @property
    def crds(self) -> bool:
        """Whether removing the stack must keep this release: no, its CRDs are ModelMesh's own predictors."""
        return False

    @property
    def chart(self) -> str:
        """What is installed, named like a chart: the repository's name (for outputs and summaries)."""
        return self.repository.rstrip("/").rsplit("/", 1)[-1]

    @property
    def version(self) -> str:
        """The pinned release tag (for outputs and summaries, like a chart version)."""
        return self.ref

    def path_name(self, path: str) -> str:
        """The name of one path's GitOps object: ``<release>-<last path segment>``."""
        return f"{self.release}-{path.rstrip('/').rsplit('/', 1)[-1]}"

    def remote_url(self, path: str) -> str:
        """A kustomize remote-resource URL of one path at the pinned tag."""
        return f"{self.repository}//{path}?ref={self.ref}"

    def overlay(self, path: str) -> dict[str, Any]:
        """A kustomization that applies one path at the tag into the namespace, with the patches.

        Setting the namespace inside kustomize (not after the build) matters: upstream
        kustomizations resolve ``vars`` such as a webhook's certificate namespace from it.
        """
        result: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": self.namespace,
            "resources": [self.remote_url(path)],
        }
        if self.patches:
            result["patches"] = [{"target": dict(p.target), "patch": p.patch} for p in self.patches]
        return result


Release = Chart | KustomizeRelease
"""An upstream release of a stack: a Helm chart or a kustomize release."""

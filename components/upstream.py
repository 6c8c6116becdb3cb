"""Pinned upstream versions and the official releases they come from.

Upstream software is installed from its own releases, never re-authored: this module
says where each release lives (a Helm chart by repository, name and version) so that the
Pulumi program installs it as a Helm release and the GitOps render emits a Flux
``HelmRelease`` (or an Argo CD ``Application``) for the same chart at the same version.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from components.base import StrictModel
from components.types import Version


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
    gateway_api: Version = Field(default="v1.5.1", description="Gateway API CRD release (standard channel).")
    prometheus_stack: Version = Field(
        default="91.5.0", description="kube-prometheus-stack chart version (Prometheus operator, Prometheus)."
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

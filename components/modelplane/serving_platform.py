"""The root of a stack file: ``ServingPlatformArgs``, the whole platform of one environment.

Field types and section models check each value where it is declared. This module holds the
schema only: the rules that check values against each other live in ``modelplane.rules`` and
the assembly of everything a stack renders in ``modelplane.build``, so the parts below never
need to know the whole.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from modelplane.autoscaler import AutoscalerArgs
from modelplane.base import StrictModel
from modelplane.control_plane import ControlPlaneArgs
from modelplane.external_runtime import ExternalRuntimeArgs
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.graph import GraphArgs
from modelplane.images import ImagePolicy, Pinning
from modelplane.llm import LlmArgs
from modelplane.model import ModelArgs, mode_of
from modelplane.model_mesh import ModelMeshArgs
from modelplane.monitoring import MonitoringArgs
from modelplane.rollout.policy import RolloutPolicy
from modelplane.tenant import TenantArgs
from modelplane.types import DeploymentMode
from modelplane.upstream import Versions

Tier = Literal["dev", "staging", "prod"]


RemovalTarget = Annotated[
    str,
    StringConstraints(
        pattern=r"^(models/[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z]([-a-z0-9]*[a-z0-9])?|tenants/[a-z0-9]([-a-z0-9]*[a-z0-9])?|modelMesh|monitoring)$",
        max_length=140,
    ),
]
"""One thing a prod change may remove: ``models/<namespace>/<name>``, ``tenants/<name>``, ``modelMesh`` or ``monitoring``."""


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
    allow_removal: list[RemovalTarget] = Field(
        default_factory=list,
        max_length=1000,
        description="What a change may remove from a prod stack (a prod change that removes a model, "
        "a tenant, the mesh or monitoring is refused without it): `models/<namespace>/<name>`, "
        "`tenants/<name>`, `modelMesh`, `monitoring`. Default: nothing; drop the entries again once "
        "the change is deployed.",
    )


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
    images: ImagePolicy = Field(
        default_factory=ImagePolicy,
        description="How the images modelplane writes are pinned (by digest from the image lock, or by tag).",
    )
    external_runtimes: list[ExternalRuntimeArgs] = Field(
        default_factory=list,
        description="ServingRuntimes the cluster already has, which models may name in `runtime`. Default: none.",
    )
    models: list[ModelArgs] = Field(default_factory=list, description="Served models.")
    llms: list[LlmArgs] = Field(
        default_factory=list,
        description="LLM services (KServe's LLMInferenceService: llm-d routing, prefill/decode, LoRA). "
        "Default: none.",
    )
    graphs: list[GraphArgs] = Field(
        default_factory=list,
        description="Inference graphs (KServe's InferenceGraph) over the stack's models. Default: none.",
    )

    def pinning(self) -> Pinning:
        """How this stack's images are pinned: ``images.pinning``, else by its tier."""
        return self.images.effective(self.stack.tier)

    def tenant(self, name: str) -> TenantArgs:
        """The tenant of that name."""
        return next(t for t in self.tenants if t.name == name)

    def pool(self, name: str | None) -> GpuPoolArgs | None:
        """The GPU pool of that name, or None."""
        return next((p for p in self.gpu_pools if p.name == name), None)

    def mode(self, model: ModelArgs) -> DeploymentMode:
        """The deployment mode of a model."""
        return mode_of(model, self.control_plane.default_deployment_mode)

    def graph_mode(self, graph: GraphArgs) -> DeploymentMode:
        """The deployment mode of a graph's router."""
        return graph.deployment_mode or self.control_plane.default_deployment_mode

    def policy(self, model: ModelArgs) -> RolloutPolicy:
        """The effective rollout policy of a model."""
        return model.rollout.apply(self.rollout) if model.rollout else self.rollout

"""GPU runtime pools: one declaration per pool of GPU nodes, next to the models that use it.

A pool names its GPU product, node labels and taints, GPUs per node and how GPUs are
shared (exclusive, time-sliced, or MIG-partitioned). From that one declaration modelplane
derives the extended resource a workload requests and the node selector and tolerations
injected into every model placed on the pool, so workloads never request a resource name
the nodes do not advertise.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from components.base import StrictModel
from components.types import DnsLabel, Duration, LabelKey, LabelValue, parse_duration

MIG_PROFILES: dict[str, dict[str, int]] = {
    # profile -> {"slices": compute slices of 7, "memory_gb": memory}; A100-40GB and A100/H100-80GB.
    "1g.5gb": {"slices": 1, "memory_gb": 5},
    "2g.10gb": {"slices": 2, "memory_gb": 10},
    "3g.20gb": {"slices": 3, "memory_gb": 20},
    "4g.20gb": {"slices": 4, "memory_gb": 20},
    "7g.40gb": {"slices": 7, "memory_gb": 40},
    "1g.10gb": {"slices": 1, "memory_gb": 10},
    "1g.20gb": {"slices": 1, "memory_gb": 20},
    "2g.20gb": {"slices": 2, "memory_gb": 20},
    "3g.40gb": {"slices": 3, "memory_gb": 40},
    "4g.40gb": {"slices": 4, "memory_gb": 40},
    "7g.80gb": {"slices": 7, "memory_gb": 80},
}
"""MIG profiles modelplane knows: compute slices (of 7 per GPU) and memory."""


class ExclusiveSharing(StrictModel):
    """Each workload gets whole GPUs (``nvidia.com/gpu``)."""

    mode: Literal["exclusive"] = Field(description="Whole GPUs per workload.")


class TimeSlicingSharing(StrictModel):
    """GPUs are time-sliced: each advertised as ``replicas`` shares, with no memory isolation."""

    mode: Literal["time-slicing"] = Field(description="Time-sliced GPUs.")
    replicas: int = Field(ge=2, le=64, description="Shares each physical GPU is advertised as.")
    rename_by_default: bool = Field(
        default=True,
        description="Advertise shares as `nvidia.com/gpu.shared` so a workload never mistakes one for a whole GPU.",
    )


class MigSharing(StrictModel):
    """GPUs are MIG-partitioned into the given profiles, with memory and fault isolation."""

    mode: Literal["mig"] = Field(description="MIG-partitioned GPUs.")
    strategy: Literal["single", "mixed"] = Field(
        default="mixed",
        description="`single`: one profile, advertised as `nvidia.com/gpu`; `mixed`: `nvidia.com/mig-<profile>`.",
    )
    profiles: dict[str, int] = Field(
        description="Instances of each MIG profile per GPU, e.g. `{1g.10gb: 7}`; at most 7 compute slices per GPU."
    )

    @model_validator(mode="after")
    def _fits_a_gpu(self) -> MigSharing:
        unknown = sorted(set(self.profiles) - set(MIG_PROFILES))
        if unknown:
            raise ValueError(f"unknown MIG profile {unknown[0]!r}; known: {', '.join(sorted(MIG_PROFILES))}")
        if any(count < 1 for count in self.profiles.values()):
            raise ValueError("every MIG profile needs a count of at least 1")
        slices = sum(MIG_PROFILES[p]["slices"] * n for p, n in self.profiles.items())
        if slices > 7:
            raise ValueError(f"MIG profiles use {slices} compute slices per GPU; a GPU has 7")
        if self.strategy == "single" and len(self.profiles) != 1:
            raise ValueError("MIG strategy 'single' allows exactly one profile; use 'mixed' for several")
        return self


Sharing = Annotated[ExclusiveSharing | TimeSlicingSharing | MigSharing, Field(discriminator="mode")]


class Taint(StrictModel):
    """A node taint that keeps other workloads off the pool."""

    key: LabelKey = Field(description="Taint key.")
    value: LabelValue = Field(default="", description="Taint value.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        default="NoSchedule", description="Taint effect."
    )


class GpuPoolArgs(StrictModel):
    """One pool of GPU nodes."""

    name: DnsLabel = Field(description="Pool name; models name it in `resources.pool`.")
    product: str = Field(
        min_length=1,
        max_length=63,
        description="GPU product as GPU feature discovery labels it, e.g. `NVIDIA-A100-SXM4-80GB`.",
    )
    gpus_per_node: int = Field(default=8, ge=1, le=16, description="Physical GPUs per node.")
    gpu_memory_gb: int = Field(default=80, ge=1, le=1024, description="Memory of one physical GPU, in GB.")
    sharing: Sharing = Field(
        default_factory=lambda: ExclusiveSharing(mode="exclusive"), description="How GPUs are shared."
    )
    node_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Labels every node of the pool carries; default `modelplane.dev/gpu-pool: <name>`.",
    )
    taints: list[Taint] = Field(
        default_factory=lambda: [Taint(key="nvidia.com/gpu", value="present", effect="NoSchedule")],
        description="Taints on the pool's nodes; models on the pool get matching tolerations.",
    )
    min_nodes: int = Field(default=0, ge=0, le=1000, description="Nodes the pool keeps at least.")
    max_nodes: int = Field(default=4, ge=1, le=1000, description="Nodes the pool may grow to.")
    node_provisioning_time: Duration = Field(
        default="10m", description="How long a new node takes to become schedulable, drivers included."
    )
    provisioner: Literal["static", "karpenter"] = Field(
        default="static",
        description="Who adds nodes: a static node group, or Karpenter (a NodePool is emitted).",
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> GpuPoolArgs:
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes {self.min_nodes} is greater than maxNodes {self.max_nodes}")
        return self

    @property
    def selector(self) -> dict[str, str]:
        """Node labels that select the pool's nodes."""
        return dict(sorted((self.node_labels or {"modelplane.dev/gpu-pool": self.name}).items()))

    @property
    def provisioning_seconds(self) -> int:
        """Node provisioning time in seconds."""
        return parse_duration(self.node_provisioning_time)

    def resource_name(self, mig_profile: str | None = None) -> str:
        """The extended resource a workload on this pool requests."""
        sharing = self.sharing
        if isinstance(sharing, TimeSlicingSharing):
            return "nvidia.com/gpu.shared" if sharing.rename_by_default else "nvidia.com/gpu"
        if isinstance(sharing, MigSharing) and sharing.strategy == "mixed":
            profile = mig_profile or sorted(sharing.profiles)[0]
            return f"nvidia.com/mig-{profile}"
        return "nvidia.com/gpu"

    def tolerations(self) -> list[dict[str, str]]:
        """Tolerations matching the pool's taints."""
        result = []
        for taint in self.taints:
            toleration = {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": taint.effect}
            if not taint.value:
                toleration = {"key": taint.key, "operator": "Exists", "effect": taint.effect}
            result.append(toleration)
        return result

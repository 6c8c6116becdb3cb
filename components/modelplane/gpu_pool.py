"""GPU runtime pools: one declaration per pool of GPU nodes, next to the models that use it.

A pool names its GPU product, node labels and taints, GPUs per node and how GPUs are
shared (exclusive, time-sliced, or MIG-partitioned). From that one declaration modelplane
derives everything that otherwise lives in four places and drifts apart: the extended
resource a workload requests, the node selector and tolerations injected into every model
and mesh runtime on the pool, the NVIDIA GPU operator's per-node device-plugin and MIG
configuration (``modelplane.gpu_operator``), and the Karpenter ``NodePool`` or, for static
node groups, the label and taint contract the nodes must carry. ``problems()`` checks the
pools against each other and ``gpu_request_problems()`` one request (a model's, a mesh
runtime's) against its pool; ``modelplane.rules`` calls them for every user of a pool.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.types import DnsLabel, Duration, LabelKey, LabelValue, parse_duration

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

LABEL_POOL = "modelplane.dev/gpu-pool"
"""Default node label that selects a pool's nodes."""
LABEL_DEVICE_PLUGIN_CONFIG = "nvidia.com/device-plugin.config"
"""Node label that picks the device plugin's named config for the node."""
LABEL_MIG_CONFIG = "nvidia.com/mig.config"
"""Node label that picks the mig-parted layout MIG Manager applies to the node."""
MIG_DISABLED = "all-disabled"
"""The mig-parted config that turns MIG off (the GPU operator's default)."""


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
    fail_requests_greater_than_one: bool = Field(
        default=True,
        description="Refuse pods asking for more than one share: two shares of a time-sliced GPU give no more "
        "compute or memory than one (the device plugin's `failRequestsGreaterThanOne`).",
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


CapacityType = Literal["on-demand", "spot", "reserved"]


class NodeClassRef(StrictModel):
    """The cloud-specific node class a Karpenter NodePool launches nodes from."""

    group: str = Field(
        default="karpenter.k8s.aws", min_length=1, description="API group of the node class (AWS by default)."
    )
    kind: str = Field(default="EC2NodeClass", min_length=1, description="Kind of the node class.")
    name: DnsLabel = Field(default="gpu", description="Name of an existing node class with a GPU AMI.")


class KarpenterArgs(StrictModel):
    """How Karpenter launches the pool's nodes (used when `provisioner: karpenter`)."""

    node_class: NodeClassRef = Field(default_factory=NodeClassRef, description="Node class reference.")
    instance_types: list[LabelValue] = Field(
        default_factory=list,
        description="Instance types allowed (`node.kubernetes.io/instance-type In ...`); empty: any type the "
        "node class offers that has the pool's GPUs. Name them: the GPU product is only labelled after boot.",
    )
    capacity_types: list[CapacityType] = Field(
        default_factory=lambda: list[CapacityType](["on-demand"]),
        description="Capacity types; on-demand by default because an evicted model reloads for minutes.",
    )
    consolidate_after: Duration = Field(
        default="30m",
        description="How long a node must be empty or underused before Karpenter may remove it; long, since a GPU "
        "node takes minutes to come back.",
    )
    expire_after: Literal["Never"] | Duration = Field(
        default="720h", description="Node lifetime before Karpenter replaces it (`Never` to keep nodes)."
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
    max_nodes: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Nodes the pool may grow to. Required for Karpenter pools (the NodePool's limit); a static "
        "pool without it has exactly minNodes nodes.",
    )
    max_pods_per_node: int = Field(
        default=110, ge=1, le=1000, description="Pods a node of the pool accepts (the kubelet's default 110)."
    )
    node_provisioning_time: Duration = Field(
        default="10m", description="How long a new node takes to become schedulable, drivers included."
    )
    provisioner: Literal["static", "karpenter"] = Field(
        default="static",
        description="Who adds nodes: a static node group, or Karpenter (a NodePool is emitted).",
    )
    karpenter: KarpenterArgs = Field(
        default_factory=KarpenterArgs, description="Karpenter settings, for `provisioner: karpenter`."
    )
    priority: int = Field(
        default=100000,
        ge=0,
        le=1_000_000_000,
        description="Value of the pool's PriorityClass, which every model on the pool runs with, so serving pods "
        "preempt batch work on scarce GPUs.",
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> GpuPoolArgs:
        if self.max_nodes is not None and self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes {self.min_nodes} is greater than maxNodes {self.max_nodes}")
        return self

    @property
    def selector(self) -> dict[str, str]:
        """Node labels that select the pool's nodes."""
        return dict(sorted((self.node_labels or {LABEL_POOL: self.name}).items()))

    @property
    def provisioning_seconds(self) -> int:
        """Node provisioning time in seconds."""
        return parse_duration(self.node_provisioning_time)

    @property
    def karpenter_static(self) -> bool:
        """Whether the pool's Karpenter NodePool holds a fixed node count instead of following pod demand.

        Karpenter sizes nodes by the physical ``nvidia.com/gpu`` of instance types and does not
        know time-sliced shares or MIG devices, so a pending pod asking for them never makes it
        add a node (kubernetes-sigs/karpenter#729). Such pools get a static NodePool
        (``replicas: minNodes``, ``limits.nodes: maxNodes``).
        """
        return self.provisioner == "karpenter" and not isinstance(self.sharing, ExclusiveSharing)

    @property
    def node_limit(self) -> int:
        """Most nodes the pool reaches by itself: maxNodes, else minNodes.

        Static node groups without maxNodes and static Karpenter NodePools hold minNodes
        nodes until someone raises it.
        """
        if self.karpenter_static or self.max_nodes is None:
            return self.min_nodes
        return self.max_nodes

    @property
    def priority_class_name(self) -> str:
        """The PriorityClass of workloads on this pool."""
        return f"modelplane-gpu-{self.name}"

    @property
    def device_plugin_config_name(self) -> str:
        """Name of the pool's entry in the device plugin's config map (and its node label value)."""
        return self.name

    @property
    def mig_config_name(self) -> str:
        """The mig-parted layout of the pool's nodes (and its node label value)."""
        return f"modelplane-{self.name}" if isinstance(self.sharing, MigSharing) else MIG_DISABLED

    def resource_name(self, mig_profile: str | None = None) -> str:
        """The extended resource a workload on this pool requests."""
        sharing = self.sharing
        if isinstance(sharing, TimeSlicingSharing):
            return "nvidia.com/gpu.shared" if sharing.rename_by_default else "nvidia.com/gpu"
        if isinstance(sharing, MigSharing) and sharing.strategy == "mixed":
            profile = mig_profile or sorted(sharing.profiles)[0]
            return f"nvidia.com/mig-{profile}"
        return "nvidia.com/gpu"

    def resource_names(self) -> list[str]:
        """Every extended resource the pool's nodes advertise, sorted."""
        return sorted(self.node_capacity())

    def node_capacity(self) -> dict[str, int]:
        """Units of each extended resource one node advertises."""
        sharing = self.sharing
        if isinstance(sharing, TimeSlicingSharing):
            return {self.resource_name(): self.gpus_per_node * sharing.replicas}
        if isinstance(sharing, MigSharing):
            if sharing.strategy == "single":
                return {"nvidia.com/gpu": self.gpus_per_node * sum(sharing.profiles.values())}
            return {
                f"nvidia.com/mig-{p}": self.gpus_per_node * n for p, n in sorted(sharing.profiles.items())
            }
        return {"nvidia.com/gpu": self.gpus_per_node}

    def tolerations(self) -> list[dict[str, str]]:
        """Tolerations matching the pool's taints."""
        result = []
        for taint in self.taints:
            toleration = {"key": taint.key, "operator": "Equal", "value": taint.value, "effect": taint.effect}
            if not taint.value:
                toleration = {"key": taint.key, "operator": "Exists", "effect": taint.effect}
            result.append(toleration)
        return result

    def node_contract(self) -> dict[str, object]:
        """What every node of the pool must carry, and what workloads on it request.

        For Karpenter pools the NodePool applies this; for static node groups it is the
        contract the node group's template must meet (labels and taints), shown by
        ``modelplane plan`` and the docs.
        """
        labels = dict(self.selector)
        labels[LABEL_DEVICE_PLUGIN_CONFIG] = self.device_plugin_config_name
        labels[LABEL_MIG_CONFIG] = self.mig_config_name
        return {
            "pool": self.name,
            "provisioner": self.provisioner,
            "labels": dict(sorted(labels.items())),
            "taints": [
                {"key": t.key, "value": t.value, "effect": t.effect}
                if t.value
                else {"key": t.key, "effect": t.effect}
                for t in self.taints
            ],
            "resources": self.node_capacity(),
            "priorityClassName": self.priority_class_name,
        }


# --- consistency checks -------------------------------------------------------------------


def problems(pools: list[GpuPoolArgs]) -> list[Problem]:
    """Problems of the pools among themselves (names, limits, node labels, one MIG strategy), at ``gpuPools[i]``."""
    problems: list[Problem] = []
    names = [p.name for p in pools]
    for i, pool in enumerate(pools):
        path: tuple[str | int, ...] = ("gpuPools", i)
        if pool.name in names[:i]:
            problems.append(
                Problem(
                    (*path, "name"),
                    f"duplicate GPU pool name (also gpuPools[{names.index(pool.name)}])",
                    pool.name,
                )
            )
        if pool.provisioner == "karpenter" and pool.max_nodes is None:
            problems.append(
                Problem(
                    (*path, "maxNodes"),
                    f"pool {pool.name!r} is provisioned by Karpenter but has no maxNodes: its NodePool would have no "
                    "limit and Karpenter could add GPU nodes without bound; set maxNodes",
                    None,
                )
            )
        if pool.karpenter_static and pool.min_nodes == 0:
            problems.append(
                Problem(
                    (*path, "minNodes"),
                    f"Karpenter cannot grow {pool.sharing.mode} pool {pool.name!r} from pod demand (it does not know "
                    f"{', '.join(pool.resource_names())}; kubernetes-sigs/karpenter#729), so modelplane gives it a "
                    "static NodePool of minNodes nodes, and minNodes is 0; set minNodes to the nodes the plan needs",
                    0,
                )
            )
        if pool.provisioner == "static" and pool.node_limit == 0:
            problems.append(
                Problem(
                    (*path, "maxNodes"),
                    f"static pool {pool.name!r} has no nodes (minNodes 0, no maxNodes); set the node group's size "
                    "in minNodes/maxNodes, or use provisioner karpenter",
                    None,
                )
            )
        for j, other in enumerate(pools[:i]):
            if other.selector == pool.selector:
                problems.append(
                    Problem(
                        (*path, "nodeLabels"),
                        f"pool {pool.name!r} selects its nodes with the same labels as pool {other.name!r} "
                        f"(gpuPools[{j}]), so models of one would land on the other; give each pool its own nodeLabels",
                        pool.selector,
                    )
                )
    mig = [(i, p) for i, p in enumerate(pools) if isinstance(p.sharing, MigSharing)]
    for i, pool in mig[1:]:
        first_index, first = mig[0]
        assert isinstance(pool.sharing, MigSharing) and isinstance(first.sharing, MigSharing)
        if pool.sharing.strategy != first.sharing.strategy:
            problems.append(
                Problem(
                    ("gpuPools", i, "sharing", "strategy"),
                    f"MIG pool {pool.name!r} uses strategy {pool.sharing.strategy!r} but pool {first.name!r} "
                    f"(gpuPools[{first_index}]) uses {first.sharing.strategy!r}; the GPU operator's mig.strategy is "
                    "cluster-wide, so every MIG pool needs the same one",
                    pool.sharing.strategy,
                )
            )
    return problems


def gpu_request_problems(
    path: tuple[str | int, ...],
    *,
    gpu: int,
    mig_profile: str | None,
    exclusive_gpu_memory: bool,
    pool: GpuPoolArgs,
) -> list[Problem]:
    """Problems of one GPU request (a model's or a mesh runtime's) against the pool it names."""
    problems: list[Problem] = []
    sharing = pool.sharing
    if isinstance(sharing, MigSharing):
        offered = ", ".join(sorted(sharing.profiles))
        if sharing.strategy == "single" and mig_profile is not None:
            problems.append(
                Problem(
                    (*path, "migProfile"),
                    f"pool {pool.name!r} uses MIG strategy 'single': its {offered} devices are advertised as "
                    "nvidia.com/gpu and cannot be requested by profile; remove migProfile, or use a 'mixed' pool",
                    mig_profile,
                )
            )
        elif mig_profile is not None and mig_profile not in sharing.profiles:
            problems.append(
                Problem(
                    (*path, "migProfile"),
                    f"pool {pool.name!r} does not offer MIG profile {mig_profile!r} (it offers {offered})",
                    mig_profile,
                )
            )
        elif sharing.strategy == "mixed" and mig_profile is None and len(sharing.profiles) > 1:
            problems.append(
                Problem(
                    (*path, "migProfile"),
                    f"pool {pool.name!r} offers several MIG profiles ({offered}); name one",
                    None,
                )
            )
        resource = pool.resource_name(mig_profile if mig_profile in sharing.profiles else None)
        capacity = pool.node_capacity().get(resource, 0)
        if gpu > capacity:
            problems.append(
                Problem(
                    (*path, "gpu"),
                    f"asks for {gpu} MIG devices ({resource}) but a node of pool {pool.name!r} has {capacity}",
                    gpu,
                )
            )
    elif isinstance(sharing, TimeSlicingSharing):
        if exclusive_gpu_memory:
            problems.append(
                Problem(
                    (*path, "exclusiveGpuMemory"),
                    f"pool {pool.name!r} is time-sliced (no memory isolation); use an exclusive or MIG pool",
                    True,
                )
            )
        if mig_profile is not None:
            problems.append(
                Problem(
                    (*path, "migProfile"),
                    f"pool {pool.name!r} is time-sliced, not MIG-partitioned",
                    mig_profile,
                )
            )
        if gpu > 1 and sharing.fail_requests_greater_than_one:
            problems.append(
                Problem(
                    (*path, "gpu"),
                    f"asks for {gpu} shares of time-sliced pool {pool.name!r}, which refuses more than one per pod "
                    "(more shares of one GPU add no compute or memory); ask for 1, or use an exclusive or MIG pool",
                    gpu,
                )
            )
        elif gpu > pool.gpus_per_node * sharing.replicas:
            problems.append(
                Problem(
                    (*path, "gpu"),
                    f"asks for {gpu} GPU shares but a node of pool {pool.name!r} has "
                    f"{pool.gpus_per_node * sharing.replicas}",
                    gpu,
                )
            )
    else:
        if mig_profile is not None:
            problems.append(
                Problem((*path, "migProfile"), f"pool {pool.name!r} is not MIG-partitioned", mig_profile)
            )
        if gpu > pool.gpus_per_node:
            problems.append(
                Problem(
                    (*path, "gpu"),
                    f"asks for {gpu} GPUs but a node of pool {pool.name!r} has {pool.gpus_per_node}",
                    gpu,
                )
            )
    return problems


def warnings(pools: list[GpuPoolArgs]) -> list[str]:
    """Things that work but deserve a reviewer's eye."""
    result: list[str] = []
    for pool in pools:
        if pool.karpenter_static:
            result.append(
                f"gpuPools {pool.name}: Karpenter does not know {', '.join(pool.resource_names())} "
                f"(kubernetes-sigs/karpenter#729), so the pool gets a static NodePool of {pool.min_nodes} node(s) "
                "(alpha: needs Karpenter's StaticCapacity feature gate); raise minNodes to grow it"
            )
    return result

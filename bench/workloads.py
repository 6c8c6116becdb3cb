"""Generated stacks for the benchmarks: many models over GPU pools with different sharing.

Deterministic for a seed. The mix is chosen so packing is not trivial: whole-GPU models ask
for 1 to 5 GPUs of an 8-GPU node (3 and 5 do not divide 8), MIG models ask for several
profiles of one mixed layout, time-sliced models ask for one share, and mesh models fill
multi-model runtime pods.
"""

from __future__ import annotations

import random
from typing import Any

POOLS: list[dict[str, Any]] = [
    {
        "name": "h100",
        "product": "NVIDIA-H100-80GB-HBM3",
        "gpusPerNode": 8,
        "sharing": {"mode": "exclusive"},
        "minNodes": 0,
        "maxNodes": 1000,
        "provisioner": "karpenter",
    },
    {
        "name": "a100-mig",
        "product": "NVIDIA-A100-SXM4-80GB",
        "gpusPerNode": 8,
        "sharing": {
            "mode": "mig",
            "strategy": "mixed",
            "profiles": {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1},
        },
        "minNodes": 1,
        "maxNodes": 1000,
    },
    {
        "name": "l4-shared",
        "product": "NVIDIA-L4",
        "gpusPerNode": 4,
        "gpuMemoryGb": 24,
        "sharing": {"mode": "time-slicing", "replicas": 8},
        "minNodes": 1,
        "maxNodes": 1000,
    },
]
GPU_SIZES = [1, 2, 3, 3, 4, 5, 5, 6, 7]
MIG_PROFILES = ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]


def stack(models: int, *, seed: int = 7, mesh_share: float = 0.0) -> dict[str, Any]:
    """Stack data with ``models`` GPU models spread over three pools (and optional mesh models)."""
    rng = random.Random(seed)
    tenants = [f"team-{i}" for i in range(10)]
    items: list[dict[str, Any]] = []
    for i in range(models):
        tenant = tenants[i % len(tenants)]
        low = rng.randint(1, 3)
        base = {
            "name": f"m{i:06d}",
            "tenant": tenant,
            "format": {"name": "onnx", "version": "1"},
            "storage": {"uri": f"s3://bench/m{i:06d}"},
            "version": "v1",
        }
        if rng.random() < mesh_share:
            size = rng.choice([8, 16, 32, 64])
            items.append(
                base
                | {"runtime": "triton", "deploymentMode": "modelmesh", "resources": {"memory": f"{size}Mi"}}
            )
            continue
        kind = rng.random()
        if kind < 0.4:
            resources = {"gpu": rng.choice(GPU_SIZES), "pool": "h100"}
        elif kind < 0.75:
            resources = {"gpu": 1, "pool": "a100-mig", "migProfile": rng.choice(MIG_PROFILES)}
        else:
            resources = {"gpu": 1, "pool": "l4-shared"}
        items.append(
            base
            | {
                "runtime": "triton",
                "resources": resources,
                "scaling": {"minReplicas": low, "maxReplicas": low + rng.randint(0, 4)},
            }
        )
    data: dict[str, Any] = {
        "stack": {"name": "bench", "tier": "prod"},
        "controlPlane": {"defaultDeploymentMode": "standard"},
        "gpuPools": POOLS,
        "tenants": [{"name": t} for t in tenants],
        "models": items,
    }
    if mesh_share:
        data["modelMesh"] = {"enabled": True, "runtimes": {"triton": {"pods": 4, "memory": "16Gi"}}}
    return data

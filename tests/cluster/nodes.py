"""kwok nodes shaped like a stack's GPU pools, from the same plan ``modelplane plan`` prints.

Each pool gets as many nodes as the plan needs at minimum replicas, carrying the pool's node
contract (labels, taints, extended resources: ``nvidia.com/gpu``, time-sliced shares or MIG
devices), so the real scheduler decides whether the models fit where the plan says they do.
Untainted CPU nodes take everything that asks for no GPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelplane import load_stack

KWOK_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}
CPU_NODES = 3
CPU_NODE_CAPACITY = {"cpu": "64", "memory": "512Gi", "pods": "110", "ephemeral-storage": "1Ti"}


def plan_json(stack_file: Path) -> dict[str, Any]:
    """``modelplane plan --format json`` as a user runs it (exit 0 or 2: both print the plan)."""
    result = subprocess.run(
        [sys.executable, "-m", "modelplane.cli", "plan", str(stack_file), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 2) or not result.stdout.strip():
        raise RuntimeError(f"modelplane plan failed ({result.returncode}): {result.stderr}")
    plan: dict[str, Any] = json.loads(result.stdout)
    return plan


def node(
    name: str, labels: dict[str, str], taints: list[dict[str, str]], extra: dict[str, int]
) -> dict[str, Any]:
    capacity = {**CPU_NODE_CAPACITY, **{k: str(v) for k, v in extra.items()}}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": dict(KWOK_ANNOTATION),
            "labels": {"kubernetes.io/hostname": name, "type": "kwok", **labels},
        },
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def pool_nodes(stack_file: Path) -> list[dict[str, Any]]:
    """CPU nodes, and per GPU pool the nodes the plan needs at minimum replicas (at least one)."""
    nodes = [node(f"cpu-{i}", {}, [], {}) for i in range(CPU_NODES)]
    args = load_stack(stack_file)
    planned = {p["name"]: p for p in plan_json(stack_file)["pools"]}
    for pool in args.gpu_pools:
        contract = pool.node_contract()
        count = max(planned[pool.name]["min"]["nodes"], 1)
        for i in range(count):
            nodes.append(
                node(f"{pool.name}-{i}", contract["labels"], contract["taints"], contract["resources"])
            )
    return nodes

"""Realistic generated stacks for the scale benchmark: what a platform team with a big catalog writes.

A stack of N models is a stack file plus its catalog split into model files (``include:``), each
under the stack-file cap, and its lock, written by modelplane itself. The mix follows what large
platforms run: 55% of models in the model mesh (the long tail of small tabular and ONNX models),
29% in Standard mode and 16% in Knative mode, over the eight catalog runtimes, twelve tenants and
three GPU pools (exclusive, MIG, time-sliced); 1% of the models are in a canary that the lock
records. A preview's head changes another 1% (a version bump on some, a scaling change on others).

Everything is deterministic for a seed, so two runs measure the same bytes.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from workloads import POOLS as PACKING_POOLS

from modelplane.build import desired_models
from modelplane.rollout.lock import dump_lock
from modelplane.rollout.state import apply
from modelplane.stack import parse_stack

MODES = (("modelmesh", 0.55), ("standard", 0.29), ("knative", 0.16))
TENANTS = 12
MODELS_PER_FILE = 5_000
"""Models per included file: about 1 MiB of YAML, far below the per-file cap."""

CANARY_SHARE = 0.01
CHANGED_SHARE = 0.01
NOW = "2026-09-01T09:00:00Z"


def _with_gpu_memory(pool: dict[str, Any]) -> dict[str, Any]:
    """A packing-benchmark pool with the GPU memory its product has (80 GB), after ``gpusPerNode``."""
    result: dict[str, Any] = {}
    for key, value in pool.items():
        result[key] = value
        if key == "gpusPerNode" and "gpuMemoryGb" not in pool:
            result["gpuMemoryGb"] = 80
    return result


POOLS: list[dict[str, Any]] = [_with_gpu_memory(pool) for pool in PACKING_POOLS]
"""The packing benchmark's pools (``bench/workloads.py``), each with its GPU memory."""

# (runtime, format, GPU pool or None); each mode draws from its own list.
MESH_MODELS = [
    ("mlserver", {"name": "sklearn", "version": "1"}),
    ("mlserver", {"name": "xgboost", "version": "2"}),
    ("mlserver", {"name": "lightgbm", "version": "4"}),
    ("triton", {"name": "onnx", "version": "1"}),
]
SERVED_MODELS = [
    ("sklearn", {"name": "sklearn", "version": "1"}, None),
    ("xgboost", {"name": "xgboost", "version": "2"}, None),
    ("lightgbm", {"name": "lightgbm", "version": "4"}, None),
    ("mlserver", {"name": "sklearn", "version": "1"}, None),
    ("triton", {"name": "onnx", "version": "1"}, "l4-shared"),
    ("triton", {"name": "tensorrt", "version": "8"}, "a100-mig"),
    ("torchserve", {"name": "pytorch", "version": "1"}, "l4-shared"),
    ("huggingface", {"name": "huggingface", "version": "1"}, "h100"),
    ("custom", {"name": "custom-scorer", "version": "1"}, None),
]
SERVED_WEIGHTS = [24, 18, 12, 12, 10, 6, 6, 4, 8]


def _mode(rng: random.Random) -> str:
    draw = rng.random()
    for mode, share in MODES:
        if draw < share:
            return mode
        draw -= share
    return MODES[-1][0]


def _model(i: int, rng: random.Random) -> dict[str, Any]:
    tenant = f"team-{i % TENANTS:02d}"
    name = f"m{i:06d}"
    mode = _mode(rng)
    entry: dict[str, Any] = {"name": name, "tenant": tenant}
    if mode == "modelmesh":
        runtime, fmt = MESH_MODELS[rng.randrange(len(MESH_MODELS))]
        entry |= {
            "runtime": runtime,
            "deploymentMode": mode,
            "format": dict(fmt),
            "storage": {"uri": f"s3://models/{tenant}/{name}/v1", "secretName": "models-s3"},
            "version": "v1",
            "resources": {"memory": rng.choice(["8Mi", "16Mi", "32Mi", "64Mi"])},
        }
        return entry
    runtime, fmt, pool = rng.choices(SERVED_MODELS, weights=SERVED_WEIGHTS)[0]
    entry |= {
        "runtime": runtime,
        "deploymentMode": mode,
        "format": dict(fmt),
        "storage": {"uri": f"s3://models/{tenant}/{name}/v1", "secretName": "models-s3"},
        "version": "v1",
    }
    if runtime == "custom":
        entry["image"] = "ghcr.io/example/scorer:2.1.0"
    if pool is not None:
        resources: dict[str, Any] = {"gpu": 1, "pool": pool}
        if pool == "a100-mig":
            resources["migProfile"] = rng.choice(["1g.10gb", "2g.20gb"])
        if runtime == "huggingface":
            resources |= {"cpu": "4", "memory": "24Gi"}
        entry["resources"] = resources
    low = 0 if mode == "knative" and pool is None and rng.random() < 0.5 else 1
    scaling: dict[str, Any] = {"minReplicas": low, "maxReplicas": low + rng.randint(1, 6)}
    if mode == "standard" and pool is not None:
        queue = runtime == "triton" and rng.random() < 0.5
        scaling |= {"metric": "queue-depth" if queue else "gpu-utilization", "target": 8 if queue else 70}
    elif mode == "knative":
        scaling |= {"metric": "concurrency", "target": rng.choice([4, 8, 16])}
    entry["scaling"] = scaling
    return entry


def stack_data(models: int, *, seed: int = 14) -> dict[str, Any]:
    """A whole stack's data with ``models`` models (versions v1; canaries are applied by ``bumped``)."""
    rng = random.Random(seed)
    return {
        "stack": {"name": "bench", "tier": "prod"},
        # Prod pins images by digest through a committed image lock by default; the benchmark's
        # images are illustrative (nothing to resolve them against), so it pins by tag, as the
        # example prod stack does. Without it every command refuses the stack (exit 2).
        "images": {"pinning": "tag"},
        "controlPlane": {"defaultDeploymentMode": "standard", "controllerReplicas": 3},
        "modelMesh": {
            "enabled": True,
            "podsPerRuntime": 4,
            "runtimes": {
                "mlserver": {"pods": 16, "memory": "64Gi"},
                "triton": {"pods": 8, "memory": "64Gi"},
            },
        },
        "gpuPools": POOLS,
        "tenants": [{"name": f"team-{t:02d}"} for t in range(TENANTS)],
        "rollout": {
            "strategy": "canary",
            "steps": [5, 25, 50, 100],
            "stepInterval": "15m",
            "gates": [
                {"name": "error-rate", "metric": "error-rate", "max": 0.01},
                {"name": "latency-p99", "metric": "latency-p99", "max": 0.5},
            ],
        },
        "models": [_model(i, rng) for i in range(models)],
    }


def bumped(data: dict[str, Any], share: float, *, salt: int, version: str) -> dict[str, Any]:
    """A copy of ``data`` where a ``share`` of the models changed: half a new version, half scaling.

    Which models change is fixed by ``salt``, so the canaries in the lock and the preview's
    changes fall on different models.
    """
    step = max(1, round(1 / share))
    models = []
    for i, model in enumerate(data["models"]):
        if (i + salt) % step:
            models.append(model)
            continue
        changed = json.loads(json.dumps(model))
        if (i // step) % 2 == 0 or changed["deploymentMode"] == "modelmesh":
            changed["version"] = version
            changed["storage"]["uri"] = changed["storage"]["uri"].rsplit("/", 1)[0] + f"/{version}"
        else:
            changed["scaling"]["maxReplicas"] += 1
        models.append(changed)
    return data | {"models": models}


@dataclass(frozen=True)
class Workload:
    """The files of one generated stack: the stack with its lock, and a changed head for previews."""

    directory: Path
    models: int
    stack: Path
    """The stack file as deployed (its models in included files); its lock, with the canaries, beside it."""
    head: Path
    """The same stack after a pull request's 1% change (the same lock beside it): the preview's head."""
    stack_json: Path
    """The stack as deployed with its model files written as JSON (``stack-json/``), and its lock."""


def _write_stack(directory: Path, data: dict[str, Any], *, fmt: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    models = data["models"]
    parts = []
    for start in range(0, len(models), MODELS_PER_FILE):
        name = f"models/part-{start // MODELS_PER_FILE:03d}.{fmt}"
        body = {"models": models[start : start + MODELS_PER_FILE]}
        # Each model is its own data (no object shared between models), so PyYAML writes no aliases.
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            target.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        else:
            target.write_text(
                yaml.dump(body, Dumper=yaml.CSafeDumper, sort_keys=False, width=200), encoding="utf-8"
            )
        parts.append(name)
    head = {k: v for k, v in data.items() if k != "models"} | {"include": parts}
    path = directory / "bench.yaml"
    path.write_text(yaml.dump(head, Dumper=yaml.CSafeDumper, sort_keys=False), encoding="utf-8")
    return path


def generate(directory: Path, models: int, *, fmt: str = "yaml") -> Workload:
    """Write a stack of ``models`` models, its lock (1% in canaries) and a preview base under ``directory``.

    The lock is what ``modelplane rollout apply`` records: every model deployed at v1, then the
    stack's 1% of version bumps started as canaries.
    """
    if directory.exists():
        shutil.rmtree(directory)
    deployed = stack_data(models)
    current = bumped(deployed, CANARY_SHARE, salt=0, version="v2")
    head = bumped(current, CHANGED_SHARE, salt=50, version="v3")
    lock = apply(None, desired_models(parse_stack(deployed, "deployed")), stack="bench", now=NOW)
    lock = apply(lock, desired_models(parse_stack(current, "current")), stack="bench", now=NOW)
    lock_text = dump_lock(lock)
    stack_file = _write_stack(directory / "stack", current, fmt=fmt)
    head_file = _write_stack(directory / "head", head, fmt=fmt)
    json_file = _write_stack(directory / "stack-json", current, fmt="json")
    for path in (stack_file, head_file, json_file):
        path.with_name("bench.lock.yaml").write_text(lock_text, encoding="utf-8")
    return Workload(
        directory=directory, models=models, stack=stack_file, head=head_file, stack_json=json_file
    )


def main(argv: list[str]) -> int:
    """``python bench/catalog.py MODELS DIR``: write a workload (the benchmark runs this in its own process)."""
    if len(argv) != 2 or not argv[0].isdigit():
        print("usage: python bench/catalog.py MODELS DIR", file=sys.stderr)
        return 2
    workload = generate(Path(argv[1]), int(argv[0]))
    print(workload.stack)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

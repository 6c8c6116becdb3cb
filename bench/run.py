"""Benchmarks of modelplane: each prints a table. Not tests: nothing here asserts a time.

    python bench/run.py               # every benchmark
    python bench/run.py packing       # only the named ones

Add a benchmark by writing a function ``bench_<name>() -> None`` that prints its table and
listing it in ``BENCHMARKS``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import render_bench
import rollout_bench
from workloads import stack

from modelplane import capacity
from modelplane.packing import first_fit
from modelplane.serving_platform import ServingPlatformArgs


def _table(headers: list[str], rows: list[list[object]]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(str(h).rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    print()


def _load(models: int, **kwargs: float) -> tuple[ServingPlatformArgs, float]:
    started = time.perf_counter()
    args = ServingPlatformArgs.model_validate(stack(models, **kwargs))
    return args, time.perf_counter() - started


def bench_packing() -> None:
    """GPUs the plan uses against the lower bound and against first-fit in declaration order."""
    print("packing: 10,000 models over 3 pools (exclusive, MIG mixed, time-sliced), GPUs at each level")
    args, _ = _load(10_000)
    result = capacity.plan(args)
    rows: list[list[object]] = []
    for pool_args, pool in zip(args.gpu_pools, result.pools, strict=True):
        for level in capacity.LEVELS:
            lv = pool.levels[level]
            items = [
                (pool_args.resource_name(m.resources.mig_profile), m.resources.gpu)
                for m in args.models
                if m.resources.pool == pool.name
                for _ in range(m.scaling.min_replicas if level == "min" else m.scaling.max_replicas)
            ]
            ff_nodes = max(first_fit(pool.node_capacity, pool.max_pods_per_node, items), pool_args.min_nodes)
            lb = lv.lower_bound_nodes * pool.gpus_per_node
            rows.append(
                [
                    pool.name,
                    level,
                    len(items),
                    lb,
                    lv.gpus,
                    f"{100 * (lv.gpus - lb) / lb:.2f}%",
                    ff_nodes * pool.gpus_per_node,
                    f"{100 * (ff_nodes * pool.gpus_per_node - lb) / lb:.2f}%",
                ]
            )
    _table(["pool", "level", "pods", "LB GPUs", "plan GPUs", "plan gap", "FF-decl GPUs", "FF gap"], rows)


def bench_plan_speed() -> None:
    """Time to plan stacks of growing size (the stack is validated first, timed apart)."""
    print("plan speed: validate the stack, then plan it (10% of models in the mesh)")
    rows: list[list[object]] = []
    for models in (1_000, 10_000, 100_000):
        args, load_seconds = _load(models, mesh_share=0.1)
        started = time.perf_counter()
        result = capacity.plan(args)
        plan_seconds = time.perf_counter() - started
        gpus = sum(p.levels["max"].gpus for p in result.pools)
        rows.append([f"{models:,}", f"{load_seconds:.2f}s", f"{plan_seconds:.2f}s", gpus, len(result.mesh)])
    _table(["models", "validate", "plan", "GPUs at max", "mesh runtimes"], rows)


def bench_render() -> None:
    """Stack file to GitOps YAML stream at 1k/5k/20k models (``bench/render_bench.py``)."""

    render_bench.main()


def bench_rollout() -> None:
    """Render + diff of a 1% version bump (``bench/rollout_bench.py``)."""

    rollout_bench.main()


BENCHMARKS: dict[str, Callable[[], None]] = {
    "render": bench_render,
    "rollout": bench_rollout,
    "packing": bench_packing,
    "plan-speed": bench_plan_speed,
}


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n## {name}\n")
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

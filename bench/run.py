"""Benchmarks of modelplane: each prints a table. Not tests: nothing here asserts a time.

    python bench/run.py                        # every benchmark
    python bench/run.py packing                # only the named ones
    python bench/run.py scale --sizes 1000     # a benchmark's own options follow its name

``scale`` (``bench/scale.py``) times every command as a whole process at 1k, 20k and 100k
models; ``packing`` measures how many GPUs the capacity plan uses against the lower bound.
Add a benchmark by writing a function ``bench_<name>(argv) -> None`` that prints its table
and listing it in ``BENCHMARKS``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
import scale
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


def _load(models: int, **kwargs: float) -> ServingPlatformArgs:
    return ServingPlatformArgs.model_validate(stack(models, **kwargs))


def bench_packing(argv: list[str]) -> None:
    """GPUs the plan uses against the lower bound and against first-fit in declaration order."""
    print("packing: 10,000 models over 3 pools (exclusive, MIG mixed, time-sliced), GPUs at each level")
    args = _load(10_000)
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


def bench_scale(argv: list[str]) -> None:
    """Every command as a whole process at 1k, 20k and 100k models (``bench/scale.py``)."""
    scale.main(argv)


def bench_pulumi(argv: list[str]) -> None:
    """The Pulumi program under mocks against the GitOps render, at the same sizes (``bench/pulumi_program.py``)."""
    sizes = [int(n) for n in (argv[0].split(",") if argv else ["1000", "5000"])]
    print("pulumi: the Pulumi program under mocks (whole process) against render -o - of the same stack")
    rows: list[list[object]] = []
    for models in sizes:
        directory = scale.workload(models)
        program = measure.run(
            [sys.executable, str(Path(__file__).resolve().parent / "pulumi_program.py"), "stack/bench.yaml"],
            cwd=directory,
            timeout=7200,
            stdout=directory / ".pulumi-registrations",
        )
        registrations = int((directory / ".pulumi-registrations").read_text().strip())
        render = measure.run([*scale.modelplane(), "render", "stack/bench.yaml", "-o", "-"], cwd=directory)
        rows.append(
            [
                f"{models:,}",
                f"{registrations:,}",
                f"{program.wall:.1f} s ({program.cpu:.1f} s)",
                f"{program.peak_mib:,.0f} MiB",
                f"{registrations / program.cpu:,.0f}",
                f"{render.wall:.1f} s ({render.cpu:.1f} s)",
                f"{program.cpu / render.cpu:.0f}x",
            ]
        )
    _table(
        [
            "models",
            "registrations",
            "program: wall (CPU)",
            "peak RSS",
            "registrations per CPU s",
            "render -o -: wall (CPU)",
            "program / render (CPU)",
        ],
        rows,
    )


BENCHMARKS: dict[str, Callable[[list[str]], None]] = {
    "scale": bench_scale,
    "packing": bench_packing,
    "pulumi": bench_pulumi,
}


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-") and a in BENCHMARKS]
    unknown = [a for a in argv if not a.startswith("-") and a not in BENCHMARKS and not names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    if len(names) == 1 and argv and argv[0] == names[0]:
        print(f"\n## {names[0]}\n")
        BENCHMARKS[names[0]](argv[1:])
        return 0
    for name in names or list(BENCHMARKS):
        print(f"\n## {name}\n")
        BENCHMARKS[name]([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

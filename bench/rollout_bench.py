"""Render + diff benchmark: how long a preview of a 1% version bump takes at 1k, 5k and 20k models.

For each size: a stack of N models (Knative and Standard mode, four tenants) and its lock (every
model deployed); the head bumps every 100th model's version. Timed phases: validating both
stacks, reading the lock, rendering base and head under the lock (the head with its canaries),
the keyed object diff and the model decisions. Goal (research/perf_anchors.md): render + diff of
20k models in at most 3 s on a 2-core machine, and linear growth.
"""

from __future__ import annotations

import copy
import gc
import math
import time
from collections.abc import Callable
from typing import Any

from modelplane.build import build, desired_models
from modelplane.rollout.cli import without_cyclic_gc
from modelplane.rollout.diff import diff_objects, model_decisions
from modelplane.rollout.lock import dump_lock, lock_from_bytes
from modelplane.rollout.state import apply
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import parse_stack

SIZES = (1_000, 5_000, 20_000)
NOW = "2026-09-01T09:00:00Z"


def stack(n: int, *, bumped: bool = False) -> dict[str, Any]:
    """Stack data with ``n`` small models; ``bumped`` moves every 100th to a new version."""
    models = []
    for i in range(n):
        version = "v2" if bumped and i % 100 == 0 else "v1"
        models.append(
            {
                "name": f"model-{i:05d}",
                "tenant": f"team-{i % 4}",
                "runtime": "sklearn",
                "format": {"name": "sklearn", "version": "1"},
                "storage": {"uri": f"s3://models/model-{i:05d}/{version}"},
                "version": version,
                "deploymentMode": "knative" if i % 2 else "standard",
                "scaling": {"minReplicas": 1, "maxReplicas": 5},
            }
        )
    return {
        "stack": {"name": "bench", "tier": "staging"},
        "tenants": [{"name": f"team-{t}"} for t in range(4)],
        "rollout": {"strategy": "canary", "steps": [10, 50, 100]},
        "models": models,
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(n: int) -> dict[str, float]:
    """Seconds per phase for one size."""
    catalog = load_catalog(catalog_dir())
    base_data, head_data = stack(n), stack(n, bumped=True)
    gc.collect()
    base: ServingPlatformArgs
    base, t_base = _timed(lambda: parse_stack(copy.deepcopy(base_data), "base.yaml"))
    head: ServingPlatformArgs
    head, t_head = _timed(lambda: parse_stack(copy.deepcopy(head_data), "head.yaml"))
    lock_bytes = dump_lock(apply(None, desired_models(base), stack="bench", now=NOW)).encode()
    lock, t_lock = _timed(lambda: lock_from_bytes(lock_bytes, "bench.lock.yaml", stack="bench"))
    base_objects, t_render_base = _timed(lambda: build(base, catalog=catalog, lock=lock).objects)
    head_objects, t_render_head = _timed(lambda: build(head, catalog=catalog, lock=lock).objects)
    changes, t_diff = _timed(lambda: diff_objects(base_objects, head_objects))
    decisions, t_decide = _timed(
        lambda: model_decisions(desired_models(head), lock, before=desired_models(base))
    )
    assert sum(1 for d in decisions if d.kind == "start") == len(range(0, n, 100))
    assert len(changes) == len(range(0, n, 100))
    return {
        "validate": t_base + t_head,
        "read lock": t_lock,
        "render base": t_render_base,
        "render head": t_render_head,
        "object diff": t_diff,
        "decisions": t_decide,
        "render+diff": t_render_base + t_render_head + t_diff + t_decide,
        "lock bytes": float(len(lock_bytes)),
    }


def table(sizes: tuple[int, ...] = SIZES) -> str:
    """The benchmark as a text table: seconds per phase, lock size in MB.

    Measured twice: with Python's cyclic garbage collector on (the library called from a
    long-running program) and off (as ``modelplane preview`` and ``modelplane rollout`` run).
    """

    results = {n: measure(n) for n in sizes}
    with without_cyclic_gc():
        results_off = {n: measure(n) for n in sizes}
    phases = [p for p in next(iter(results.values())) if p != "lock bytes"]
    width = max(len(p) for p in phases) + len(" (gc off)")
    lines = [f"{'phase':<{width}}  " + "  ".join(f"{n:>9,}" for n in sizes)]
    for label, data in (("", results), (" (gc off)", results_off)):
        for phase in phases:
            cells = [f"{data[n][phase]:>8.3f}s" for n in sizes]
            lines.append(f"{phase + label:<{width}}  " + "  ".join(cells))
    lines.append(
        f"{'lock size':<{width}}  " + "  ".join(f"{results[n]['lock bytes'] / 1e6:>7.2f}MB" for n in sizes)
    )
    if len(sizes) >= 2:
        a, b = sizes[-2], sizes[-1]
        for label, data in (("gc on", results), ("gc off", results_off)):
            exponent = math.log(data[b]["render+diff"] / data[a]["render+diff"]) / math.log(b / a)
            lines.append(
                f"render+diff growth exponent {a:,} -> {b:,} ({label}): {exponent:.2f} (1.0 is linear)"
            )
    return "\n".join(lines)


def main() -> None:
    """Print the rollout render + diff table."""
    print("rollout: render + diff of a 1% version bump (models)")
    print(table())


if __name__ == "__main__":
    main()

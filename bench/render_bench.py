"""Render benchmark: N models from a typed stack file to a complete GitOps manifest.

Measures each stage separately (YAML parse and validation, building objects, writing the
YAML stream) at several catalog sizes, in one process, and prints a table. The goal from
the performance anchors: 20,000 models validated and rendered in at most 1.5 s and 250 MiB
on a 2-core machine, with time growing linearly.
"""

from __future__ import annotations

import gc
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from modelplane.build import build
from modelplane.render import stream_objects, to_yaml_stream
from modelplane.rollout.cli import without_cyclic_gc
from modelplane.stack import load_stack

RUNTIMES = [
    ("sklearn", {"name": "sklearn", "version": "1"}),
    ("xgboost", {"name": "xgboost", "version": "2"}),
    ("lightgbm", {"name": "lightgbm", "version": "4"}),
    ("triton", {"name": "onnx", "version": "1"}),
]


def stack_data(models: int) -> dict[str, Any]:
    """A stack with ``models`` CPU models over four runtimes and ten tenants."""
    tenants = [{"name": f"team-{i}"} for i in range(10)]
    items = []
    for i in range(models):
        runtime, fmt = RUNTIMES[i % len(RUNTIMES)]
        items.append(
            {
                "name": f"model-{i:06d}",
                "tenant": f"team-{i % 10}",
                "runtime": runtime,
                "format": fmt,
                "storage": {"uri": f"s3://bucket/model-{i}/v1", "secretName": "models-s3"},
                "version": "v1",
                "scaling": {"minReplicas": 1, "maxReplicas": 5},
            }
        )
    return {"stack": {"name": "bench", "tier": "staging"}, "tenants": tenants, "models": items}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(models: int, directory: Path, *, as_json: bool = False) -> dict[str, float]:
    """Seconds per stage for one catalog size, as the CLI runs it (cyclic GC off)."""
    path = directory / f"bench-{models}.yaml"
    data = stack_data(models)
    path.write_text(
        json.dumps(data, indent=1) if as_json else yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False)
    )
    gc.collect()
    with without_cyclic_gc():
        return _stages(path)


def _stages(path: Path) -> dict[str, float]:
    t0 = time.perf_counter()
    stack = load_stack(path)
    t1 = time.perf_counter()
    rendered = build(stack)
    t2 = time.perf_counter()
    text = to_yaml_stream(stream_objects(rendered.objects, rendered.charts, stack="bench"))
    t3 = time.perf_counter()
    return {
        "load": t1 - t0,
        "build": t2 - t1,
        "yaml": t3 - t2,
        "total": t3 - t0,
        "objects": float(len(rendered.objects)),
        "mib": len(text) / 2**20,
    }


def main(sizes: list[int] | None = None) -> None:
    """Print the render table, for a stack file written as YAML and as JSON."""
    sizes = sizes or [1_000, 5_000, 20_000]
    print(
        "Render: stack file -> validated args -> objects -> YAML stream (one process, cyclic GC off as in the CLI)"
    )
    header = ("file", "models", "objects", "load s", "build s", "yaml s", "total s", "out MiB")
    print(" ".join(f"{h:>8}" for h in header))
    for as_json in (False, True):
        rows: dict[int, dict[str, float]] = {}
        kind = "json" if as_json else "yaml"
        with tempfile.TemporaryDirectory() as tmp:
            for n in sizes:
                rows[n] = row = measure(n, Path(tmp), as_json=as_json)
                cells = (kind, n, int(row["objects"]))
                timings = (row["load"], row["build"], row["yaml"], row["total"], row["mib"])
                print(" ".join(f"{c:>8}" for c in cells) + " " + " ".join(f"{t:>8.2f}" for t in timings))
        if len(sizes) >= 2 and sizes[-2] > 0:
            a, b = sizes[-2], sizes[-1]
            exponent = math.log(rows[b]["total"] / rows[a]["total"]) / math.log(b / a)
            print(f"{kind}: growth exponent {a}->{b}: {exponent:.2f} (1.0 is linear)")
    print(f"peak RSS {_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or None)

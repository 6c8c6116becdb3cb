"""Where one render's time goes: CPU seconds per phase, in one process, as ``render -o -`` runs them.

    python bench/phases.py STACK_FILE

Phases: importing modelplane, reading the stack's files (YAML or JSON, checked), validating
them (pydantic and the cross-field rules), reading the lock, building the objects, ordering
the GitOps stream, writing its YAML. The cyclic garbage collector is off, as in the CLI.
"""

from __future__ import annotations

import gc
import importlib
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/phases.py STACK_FILE", file=sys.stderr)
        return 2
    gc.disable()
    phases: list[tuple[str, float]] = []

    def phase(name: str, work: Callable[[], T]) -> T:
        started = time.process_time()
        result = work()
        phases.append((name, time.process_time() - started))
        return result

    def imports() -> list[Any]:
        # The import is what this phase measures.
        return [
            importlib.import_module(f"modelplane.{name}")
            for name in ("build", "render", "stack", "rollout.lock")
        ]

    build, render, stack, lock = phase("import modelplane", imports)
    path = argv[0]
    composed = phase("read the stack's files", lambda: stack.compose_stack(path))
    args = phase(
        "validate (pydantic, rules)", lambda: stack.parse_stack(composed.data, path, composed=composed)
    )
    deployed = phase("read the lock", lambda: lock.load_lock(path, stack=args.stack.name))
    rendered = phase("build the objects", lambda: build.build(args, lock=deployed))
    objects = phase(
        "order the stream",
        lambda: render.stream_objects(rendered.objects, rendered.charts, stack=args.stack.name),
    )
    text = phase("write the YAML", lambda: render.to_yaml_stream(objects))
    total = sum(seconds for _, seconds in phases)
    print(f"{len(args.models):,} models, {len(objects):,} objects, {len(text) / 2**20:.0f} MiB of YAML")
    print("| phase | CPU s | share |\n|---|---|---|")
    for name, seconds in phases:
        print(f"| {name} | {seconds:.2f} | {100 * seconds / total:.0f}% |")
    print(f"| total | {total:.2f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

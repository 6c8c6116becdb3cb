"""The floors of the scale benchmark: the least any tool spends writing the same objects.

``prepare`` renders a stack once (as ``modelplane render -o -`` does) and stores its objects with
``marshal``, the fastest way Python reads plain data back. ``json`` and ``yaml`` are then whole
processes that read those dicts and write them, as ``json.dumps`` (keys sorted, one document per
line) and as PyYAML's C dumper (``yaml.dump_all`` with ``CSafeDumper``, keys sorted, block style):
what writing the render costs with no stack to read, nothing to validate and nothing to build.

    python bench/floors.py prepare STACK_FILE OBJECTS.marshal
    python bench/floors.py json OBJECTS.marshal > /dev/null
    python bench/floors.py yaml OBJECTS.marshal > /dev/null
"""

from __future__ import annotations

import json
import marshal
import sys
from pathlib import Path


def prepare(stack_file: Path, out: Path) -> int:
    """Render the stack under its lock and store the stream's objects; returns how many."""
    # Imported here only: the floors' processes must not pay for importing modelplane.
    from modelplane.build import build  # noqa: PLC0415
    from modelplane.render import stream_objects  # noqa: PLC0415
    from modelplane.rollout.lock import load_lock  # noqa: PLC0415
    from modelplane.stack import load_stack  # noqa: PLC0415

    stack = load_stack(stack_file)
    rendered = build(stack, lock=load_lock(stack_file, stack=stack.stack.name))
    objects = stream_objects(rendered.objects, rendered.charts, stack=stack.stack.name)
    out.write_bytes(marshal.dumps(objects))
    return len(objects)


def write_json(objects: list[dict[str, object]]) -> None:
    write = sys.stdout.write
    for obj in objects:
        write(json.dumps(obj, sort_keys=True, ensure_ascii=False))
        write("\n")


def write_yaml(objects: list[dict[str, object]]) -> None:
    import yaml  # noqa: PLC0415 - the JSON floor does not pay for importing PyYAML

    yaml.dump_all(
        objects,
        sys.stdout,
        Dumper=yaml.CSafeDumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        explicit_start=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "prepare":
        print(prepare(Path(argv[1]), Path(argv[2])))
        return 0
    if len(argv) == 2 and argv[0] in ("json", "yaml"):
        objects = marshal.loads(Path(argv[1]).read_bytes())
        (write_json if argv[0] == "json" else write_yaml)(objects)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

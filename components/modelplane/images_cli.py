"""``modelplane images``: list the images a stack renders, and pin them by digest.

``images list`` shows every image modelplane writes for a stack (found in the render under its
rollout lock, so a version still serving during a rollout counts), where it comes from and what
pins it. ``images pin`` is the one command that asks registries: it resolves each tag to its
manifest's digest and writes the image lock beside the stack, all or nothing; ``--check``
compares the lock with the render without the network (exit 3 when entries are missing or
stale), for CI.

Exit codes: 0 done, 2 a bad stack or lock, or a registry that refused an image (404, 401,
a malformed answer), 3 (``--check``) the lock is not up to date, 4 a registry could not be
reached. Nothing is written unless every image resolved.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelplane import console
from modelplane.build import build
from modelplane.errors import PlatformError
from modelplane.image_lock import ImageLock, LockedImage, image_lock_path, load_image_lock, write_image_lock
from modelplane.images import ImageUse, has_digest, image_uses, parse_reference, source_text, stack_paths
from modelplane.registry import (
    DEFAULT_TIMEOUT,
    Client,
    Resolved,
    docker_config_path,
    load_credentials,
)
from modelplane.rollout import lockfile
from modelplane.rollout.lock import load_lock
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_STALE = 3
EXIT_UNREACHABLE = 4
REPORT_SCHEMA_VERSION = 1


def _rendered_uses(file: str) -> tuple[ServingPlatformArgs, list[ImageUse], ImageLock]:
    """The stack, every image use of its render under the rollout lock (as written), and its image lock."""
    stack = load_stack(file)
    name = stack.stack.name
    images = load_image_lock(file, stack=name)
    with console.progress(f"rendering {file} ({len(stack.models):,} models)"):
        rendered = build(stack, lock=load_lock(file, stack=name))
    return stack, image_uses(rendered.objects), images


def _by_image(uses: list[ImageUse]) -> dict[str, list[ImageUse]]:
    result: dict[str, list[ImageUse]] = {}
    for use in uses:
        result.setdefault(use.image, []).append(use)
    return dict(sorted(result.items()))


def cmd_list(args: argparse.Namespace) -> int:
    """Every image the stack's render names: where it comes from and what pins it."""
    stack, uses, images = _rendered_uses(args.file)
    paths = stack_paths(stack.model_dump(mode="json", by_alias=True))
    locked = images.digests()
    entries: list[dict[str, Any]] = []
    for image, found in _by_image(uses).items():
        reference = parse_reference(image)
        if reference.digest is not None:
            digest, pinned_by = reference.digest, "reference"
        elif image in locked:
            digest, pinned_by = locked[image], "lock"
        else:
            digest, pinned_by = None, None
        entries.append(
            {
                "image": image,
                "digest": digest,
                "pinnedBy": pinned_by,
                "from": sorted({source_text(use, paths) for use in found}),
                "uses": [
                    {"kind": u.kind, "namespace": u.namespace or None, "name": u.name, "path": list(u.path)}
                    for u in found
                ],
            }
        )
    needed = {e["image"] for e in entries if e["pinnedBy"] != "reference"}
    stale = sorted(set(locked) - needed)
    if args.output == "json":
        console.write_json(
            {
                "schemaVersion": REPORT_SCHEMA_VERSION,
                "file": args.file,
                "stack": stack.stack.name,
                "pinning": stack.pinning(),
                "imageLock": str(image_lock_path(args.file)),
                "images": entries,
                "stale": stale,
            }
        )
        return EXIT_OK
    width = max((len(e["image"]) for e in entries), default=5)
    for entry in entries:
        pin = {"reference": "digest in the reference", "lock": "pinned by the lock", None: "NOT PINNED"}[
            entry["pinnedBy"]
        ]
        sources = entry["from"]
        more = f"; and {len(sources) - 3} more" if len(sources) > 3 else ""
        print(f"{entry['image']:<{width}}  {pin:<23}  {'; '.join(sources[:3])}{more}")
    unpinned = sum(1 for e in entries if e["pinnedBy"] is None)
    print(
        f"{args.file}: {len(entries)} images, {unpinned} not pinned, images.pinning: {stack.pinning()}"
        + (f"; {len(stale)} stale lock entries" if stale else "")
    )
    return EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    """Resolve every image's tag to its digest and write the image lock (or, with --check, compare)."""
    stack, uses, images = _rendered_uses(args.file)
    path = image_lock_path(args.file)
    needed = sorted({u.image for u in uses if not has_digest(u.image)})
    missing = [i for i in needed if i not in images.images]
    stale = sorted(set(images.images) - set(needed))
    if args.check:
        for image in missing:
            print(f"{path}: images: {image}: not in the image lock", file=sys.stderr)
        for image in stale:
            print(f"{path}: images: {image}: stale; the stack no longer renders it", file=sys.stderr)
        if missing or stale:
            print(f"{path}: not up to date; run `modelplane images pin {args.file}`", file=sys.stderr)
            return EXIT_STALE
        print(f"{path}: up to date ({len(needed)} images)")
        return EXIT_OK
    wanted = needed if args.update else missing
    insecure = frozenset(args.insecure_registry or ())
    client = Client(load_credentials(docker_config_path()), insecure=insecure, timeout=args.timeout)
    resolved: dict[str, Resolved] = {}
    failed: list[tuple[str, PlatformError]] = []
    for image in wanted:
        with console.progress(f"resolving {image}"):
            try:
                resolved[image] = client.resolve(parse_reference(image))
            except PlatformError as err:
                failed.append((image, err))
    if failed:
        for image, problem in failed:
            print(f"{args.file}: {image}: {problem}", file=sys.stderr)
        print(
            f"{path}: not written: {len(failed)} of {len(wanted)} images could not be resolved",
            file=sys.stderr,
        )
        unreachable = all(getattr(problem, "unreachable", False) for _, problem in failed)
        return EXIT_UNREACHABLE if unreachable else EXIT_INPUT
    entries = {
        image: (
            LockedImage(digest=resolved[image].digest, media_type=resolved[image].media_type)
            if image in resolved
            else images.images[image]
        )
        for image in needed
    }
    new = ImageLock(stack=stack.stack.name, images=entries, stack_file=args.file)
    changed = [i for i in needed if images.images.get(i) != entries[i]]
    if not changed and not stale and path.exists():
        print(f"{path}: up to date ({len(needed)} images)")
        return EXIT_OK
    with lockfile.exclusive(path):
        # Another pin may have written meanwhile: what it wrote is replaced by this complete one.
        write_image_lock(path, new)
    for image in changed:
        print(f"{image} {entries[image].digest}")
    print(f"{path}: wrote {len(needed)} images ({len(changed)} changed, {len(stale)} stale removed)")
    return EXIT_OK


def add_images_parser(sub: Any) -> None:
    """``modelplane images list|pin``."""
    p = sub.add_parser("images", help="the images a stack renders: list them, pin them by digest")
    images = p.add_subparsers(dest="images_command", required=True, parser_class=type(p), metavar="COMMAND")
    f = images.add_parser(
        "list", help="every image the stack renders and what pins it", description=cmd_list.__doc__
    )
    f.add_argument("file", metavar="FILE", help="stack file")
    f.add_argument("--output", choices=("text", "json"), default="text", help="report format (default text)")
    f.set_defaults(func=cmd_list)
    f = images.add_parser(
        "pin", help="resolve tags to digests into <stack>.images.lock.yaml", description=cmd_pin.__doc__
    )
    f.add_argument("file", metavar="FILE", help="stack file")
    f.add_argument(
        "--check",
        action="store_true",
        help="no network, write nothing: exit 3 if the image lock misses an image or holds a stale one",
    )
    f.add_argument(
        "--update", action="store_true", help="resolve every tag again (default: only those the lock lacks)"
    )
    f.add_argument(
        "--insecure-registry",
        action="append",
        metavar="HOST:PORT",
        help="speak plain HTTP to this registry (repeatable; never done otherwise)",
    )
    f.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per request (default {DEFAULT_TIMEOUT:g})",
    )
    f.set_defaults(func=cmd_pin)


__all__ = ["add_images_parser", "cmd_list", "cmd_pin"]

"""The image lock ``<stack>.images.lock.yaml``: the digest of every image a stack renders.

Digests are resolved once, by ``modelplane images pin`` (the only command that asks a
registry), and committed beside the stack, so validate, render, preview and plan stay offline
and deterministic: the same stack and lock give the same bytes, and a digest that changes is a
change a pull request shows.

Like the rollout lock it is committed, so a pull request can change it: it is read as
untrusted data with the rollout lock's discipline (``modelplane.rollout.lockfile``): a regular
file only, at most ``MAX_IMAGE_LOCK_BYTES``, plain JSON data, a schema version, strict fields,
every problem as ``FILE: path: message``; written atomically, keeping the file's mode, under
the advisory lock of its directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from modelplane.base import StrictModel
from modelplane.errors import LockError
from modelplane.images import DIGEST, parse_reference
from modelplane.rollout import lockfile
from modelplane.stack_yaml import problem_line
from modelplane.types import FieldPath, ImageRef

IMAGE_LOCK_SCHEMA_VERSION = 1
"""The version of the image lock's format this modelplane reads and writes."""

MAX_IMAGE_LOCK_BYTES = 4 * 1024 * 1024
"""Largest image lock accepted: about 200 bytes per image, so room for 20,000 images."""

MAX_IMAGES = 10_000
"""Most images one lock may hold; a stack renders a few dozen."""

MediaType = Literal[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]
"""The manifest types a tag may resolve to: a multi-platform index or list, or one manifest."""

HEADER = (
    "# The image lock of stack {stack}: the digest of each image it renders, written by\n"
    "# `modelplane images pin`. Commit it with the stack; do not edit it by hand.\n"
)


class LockedImage(StrictModel):
    """What a tag resolved to when it was pinned."""

    digest: str = Field(
        pattern=DIGEST.pattern, description="The manifest's digest, `sha256:` and 64 lower-case hex digits."
    )
    media_type: MediaType | None = Field(
        default=None, description="The manifest's media type (an index or list serves several platforms)."
    )


@dataclass(frozen=True)
class ImageLock:
    """The image lock of one stack: image reference (``repository:tag``) to what it resolved to."""

    stack: str
    images: Mapping[str, LockedImage] = field(default_factory=dict)
    stack_file: str = ""
    """The stack file it sits beside (what ``modelplane images pin`` takes), for messages."""

    def digests(self) -> dict[str, str]:
        """Image reference to digest."""
        return {image: locked.digest for image, locked in self.images.items()}


def image_lock_path(stack_file: str | Path) -> Path:
    """Where the image lock of a stack file lives: beside it, ``<stem>.images.lock.yaml``."""
    path = Path(stack_file)
    return path.with_name(f"{path.stem}.images.lock.yaml")


def _line(source: str, where: FieldPath, message: str) -> str:
    return problem_line(source, where, message)


def _key_problem(key: str) -> str | None:
    try:
        ImageKey.model_validate({"image": key})
        reference = parse_reference(key)
    except (ValidationError, ValueError):
        return "must be an image reference with a tag, [registry/]repository:tag"
    if reference.digest is not None or reference.tag is None:
        return "must be an image reference with a tag and no digest (the digest is the value)"
    return None


class ImageKey(StrictModel):
    """An image lock's key, checked as a stack's image is."""

    image: ImageRef = Field(description="The image reference.")


def parse_image_lock(data: Any, source: str, *, stack: str, stack_file: str = "") -> ImageLock:
    """An image lock from its plain data, every problem reported at once.

    Raises:
        LockError: the data is not an image lock of this stack in a version this modelplane reads.
    """
    if not isinstance(data, dict):
        raise lockfile.refuse(source, "<root>", "must be a mapping with schemaVersion, stack and images")
    problems = lockfile.plain_data_problems(data, source)
    if problems:
        raise LockError(problems)
    version = data.get("schemaVersion")
    if isinstance(version, bool) or not isinstance(version, int):
        raise lockfile.refuse(
            source,
            ("schemaVersion",),
            f"must be the image lock's schema version, a whole number (this modelplane writes "
            f"{IMAGE_LOCK_SCHEMA_VERSION})",
        )
    if version != IMAGE_LOCK_SCHEMA_VERSION:
        newer = version > IMAGE_LOCK_SCHEMA_VERSION
        raise lockfile.refuse(
            source,
            ("schemaVersion",),
            f"the image lock is schema version {version}, "
            + (
                "newer than this modelplane reads: upgrade modelplane"
                if newer
                else "a version modelplane never wrote"
            )
            + f" (it reads {IMAGE_LOCK_SCHEMA_VERSION})",
        )
    found: list[str] = []
    for key in sorted(set(data) - {"schemaVersion", "stack", "images"}):
        found.append(_line(source, (key,), "unknown field (allowed: images, schemaVersion, stack)"))
    if data.get("stack") != stack:
        found.append(
            _line(
                source,
                ("stack",),
                f"the image lock is for stack {data.get('stack')!r}, not {stack!r}; each stack has its own",
            )
            if isinstance(data.get("stack"), str)
            else _line(source, ("stack",), "must be the stack's name")
        )
    images = data.get("images")
    parsed: dict[str, LockedImage] = {}
    if not isinstance(images, dict):
        found.append(_line(source, ("images",), "must be a mapping of image reference to its digest"))
    elif len(images) > MAX_IMAGES:
        found.append(_line(source, ("images",), f"holds {len(images):,} images; at most {MAX_IMAGES:,}"))
    else:
        for key, value in images.items():
            wrong = _key_problem(key)
            if wrong is not None:
                found.append(_line(source, ("images", key), wrong))
                continue
            try:
                parsed[key] = LockedImage.model_validate(value)
            except ValidationError as err:
                for error in err.errors():
                    where = ("images", key, *(str(p) for p in error["loc"]))
                    message = (
                        "unknown field (allowed: digest, mediaType)"
                        if error["type"] == "extra_forbidden"
                        else _message(error)
                    )
                    found.append(_line(source, where, message))
    if found:
        raise LockError(sorted(found))
    return ImageLock(stack=stack, images=dict(sorted(parsed.items())), stack_file=stack_file)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "string_pattern_mismatch":
        return "must be a digest: sha256: and 64 lower-case hex digits"
    if kind == "literal_error":
        return "must be an OCI or Docker manifest media type (index, manifest, list or v2 manifest)"
    if kind == "missing":
        return "required field is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping with digest and mediaType"
    return "must be a string"


def read_image_lock(path: Path, *, stack: str, stack_file: str = "") -> ImageLock | None:
    """The image lock at ``path``, or None when there is none.

    Raises:
        LockError: unreadable, too large, not one JSON or YAML document, or not a valid image lock.
    """
    raw = lockfile.read_bytes(path, limit=MAX_IMAGE_LOCK_BYTES)
    if raw is None:
        return None
    data = lockfile.parse_bytes(raw, str(path), limit=MAX_IMAGE_LOCK_BYTES)
    return parse_image_lock(data, str(path), stack=stack, stack_file=stack_file)


def image_lock_from_bytes(raw: bytes, source: str, *, stack: str, stack_file: str = "") -> ImageLock:
    """An image lock from its bytes (a Git revision's, for a preview's base).

    Raises:
        LockError: too large, not one JSON or YAML document, or not a valid image lock.
    """
    data = lockfile.parse_bytes(raw, source, limit=MAX_IMAGE_LOCK_BYTES)
    return parse_image_lock(data, source, stack=stack, stack_file=stack_file)


def load_image_lock(stack_file: str | Path, *, stack: str) -> ImageLock:
    """The image lock beside a stack file, or an empty one when there is none.

    Raises:
        LockError: the image lock is unreadable or invalid.
    """
    path = image_lock_path(stack_file)
    return read_image_lock(path, stack=stack, stack_file=str(stack_file)) or ImageLock(
        stack=stack, stack_file=str(stack_file)
    )


def dump_image_lock(lock: ImageLock) -> str:
    """The text of an image lock: a comment header, then JSON with one image per line.

    Deterministic: images sorted, keys sorted, nothing that changes unless a digest does.
    """
    lines = []
    for image, locked in sorted(lock.images.items()):
        entry = locked.model_dump(by_alias=True, exclude_none=True)
        lines.append(f"    {json.dumps(image)}: {json.dumps(entry, sort_keys=True)}")
    body = ",\n".join(lines)
    images = "{\n" + body + "\n  }" if lines else "{}"
    return (
        HEADER.format(stack=lock.stack)
        + "{\n"
        + f'  "schemaVersion": {IMAGE_LOCK_SCHEMA_VERSION},\n'
        + f'  "stack": {json.dumps(lock.stack)},\n'
        + f'  "images": {images}\n'
        + "}\n"
    )


def write_image_lock(path: Path, lock: ImageLock) -> None:
    """Write the image lock atomically, keeping the file's mode; call it under ``lockfile.exclusive(path)``.

    Raises:
        LockError: the file cannot be written (the old one is then left untouched).
    """
    lockfile.write_text(path, dump_image_lock(lock))

"""The container images modelplane writes, found in what it renders, and pinned by digest.

A tag can move: the same ``repo:tag`` may name another image tomorrow, and a node that already
holds the old one keeps running it (``IfNotPresent``). A digest cannot move. So a stack may ask
for every image it authors to be pinned (``images.pinning: digest``, the default in prod), and
the digests come from the image lock that ``modelplane images pin`` writes beside the stack.

Which images: every string under a key ``image`` in every object modelplane renders (pod
templates, ServingRuntime and ClusterServingRuntime containers, InferenceService predictors,
transformers and explainers, the storage initializer...), so a new image cannot escape the
listing, plus the one image KServe derives instead of reading: a predictor that names a
``runtimeVersion`` and no ``image`` runs the runtime's image with its tag replaced (KServe
v0.20.0 pkg/controller/v1beta1/inferenceservice/utils/utils.go:338-355 ``UpdateImageTag``).
Pinning writes that derived image into the predictor, because the same function leaves an
image that carries ``@sha256:`` alone (utils.go:342-345): a runtime pinned by digest would
otherwise silently serve its own version instead of the model's ``runtimeVersion``.

Images inside upstream charts (KServe's controller, Knative, Prometheus...) are the charts'
own: a chart's values pin them, and modelplane does not rewrite them.

Pure: data in, data out. Nothing here reads the network or a file; the lock is
``modelplane.image_lock`` and the registry client ``modelplane.registry``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from modelplane.base import Problem, StrictModel, format_path
from modelplane.kube import Obj
from modelplane.types import FieldPath

Pinning = Literal["digest", "tag"]

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
"""A digest as modelplane writes and accepts it: sha256, lower-case hex."""

_KSERVE_TAG = re.compile(r"(:([\w.\-_]*))$")
"""KServe's own tag pattern (utils.go:347), so the derived image is the one KServe would run."""

DOCKER_HUB = "docker.io"


class ImagePolicy(StrictModel):
    """How the images modelplane authors are pinned."""

    pinning: Pinning | None = Field(
        default=None,
        description="`digest`: every image modelplane writes carries a digest, from the image "
        "reference itself or from the image lock `modelplane images pin` writes beside the stack "
        "(`<stack>.images.lock.yaml`); validate, render, preview and plan refuse an image that has "
        "none. `tag`: images are written as given. Default: `digest` for `stack.tier: prod`, "
        "`tag` otherwise.",
    )

    def effective(self, tier: str) -> Pinning:
        """The pinning in force for a stack of that tier."""
        if self.pinning is not None:
            return self.pinning
        return "digest" if tier == "prod" else "tag"


@dataclass(frozen=True)
class Reference:
    """An image reference split as the OCI distribution API needs it."""

    written: str
    """The reference without its digest, as written (the image lock's key)."""
    registry: str
    """The registry host (with port), ``docker.io`` when none is written."""
    repository: str
    """The repository on that registry (``library/`` added for Docker Hub's single names)."""
    tag: str | None
    digest: str | None


def parse_reference(text: str) -> Reference:
    """Split ``[registry/]repository[:tag][@sha256:digest]`` as Docker and containerd do.

    The first path component is a registry when it holds a ``.`` or ``:`` or is ``localhost``
    (distribution/reference normalize.go ``splitDockerDomain``).

    Raises:
        ValueError: not a reference with a tag or a digest.
    """
    name, at, digest = text.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise ValueError("the digest must be sha256:<64 lower-case hex digits>")
    last = name.rsplit("/", 1)[-1]
    tag: str | None = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    if tag is None and not at:
        raise ValueError("names neither a tag nor a digest")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository:
        raise ValueError("names no repository")
    return Reference(
        written=text.partition("@")[0],
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest or None,
    )


def has_digest(image: str) -> bool:
    """Whether the reference carries its digest itself."""
    return "@" in image


def with_tag(image: str, tag: str) -> str:
    """``image`` with its tag replaced as KServe replaces it for ``runtimeVersion`` (utils.go:347-353)."""
    if _KSERVE_TAG.search(image) is None:
        return f"{image}:{tag}"
    return _KSERVE_TAG.sub(f":{tag}", image)


@dataclass(frozen=True)
class ImageUse:
    """One place a rendered object names an image."""

    image: str
    """The reference as rendered (with its digest when it has one)."""
    kind: str
    namespace: str
    name: str
    path: FieldPath
    """Where in the object: the ``image`` field, existing or (``derived``) to be written."""
    derived: str | None = None
    """For an image KServe derives: the ``runtimeVersion`` it comes from."""

    @property
    def object(self) -> str:
        """The object as ``Kind namespace/name`` (``Kind name`` when cluster-scoped)."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"

    @property
    def where(self) -> str:
        """The object and the field, as one string."""
        return f"{self.object} {format_path(self.path)}"


_NESTED = (dict, list)


def _walk(value: Any, path: FieldPath) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
    """Every mapping inside ``value`` with its path, depth first, in document order."""
    pending: list[tuple[FieldPath, Any]] = [(path, value)]
    while pending:
        where, item = pending.pop()
        # Only containers are queued: a scalar would be popped to yield nothing.
        if isinstance(item, dict):
            yield where, item
            children = [((*where, key), child) for key, child in item.items() if isinstance(child, _NESTED)]
        elif isinstance(item, list):
            children = [((*where, i), child) for i, child in enumerate(item) if isinstance(child, _NESTED)]
        else:
            continue
        pending.extend(reversed(children))


def _runtime_images(objects: Sequence[Obj]) -> dict[tuple[str, str], str]:
    """The server image of each (Cluster)ServingRuntime, by (namespace, name); ``""`` for cluster-scoped."""
    result: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj.get("kind") not in ("ServingRuntime", "ClusterServingRuntime"):
            continue
        containers = obj.get("spec", {}).get("containers") or []
        # KServe merges the predictor into the runtime container named kserve-container
        # (pkg/constants InferenceServiceContainerName), the first one when none has that name.
        chosen = next((c for c in containers if c.get("name") == "kserve-container"), None)
        if chosen is None and containers:
            chosen = containers[0]
        if chosen is not None and isinstance(chosen.get("image"), str):
            namespace = obj["metadata"].get("namespace", "") if obj["kind"] == "ServingRuntime" else ""
            result[(namespace, obj["metadata"]["name"])] = chosen["image"]
    return result


def _indexed_uses(objects: Sequence[Obj]) -> list[tuple[int, ImageUse]]:
    runtimes = _runtime_images(objects)
    uses: list[tuple[int, ImageUse]] = []
    for index, obj in enumerate(objects):
        meta = obj.get("metadata", {})
        ident = (str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))
        for path, mapping in _walk(obj, ()):
            image = mapping.get("image")
            if isinstance(image, str):
                uses.append((index, ImageUse(image, *ident, (*path, "image"))))
                continue
            version = mapping.get("runtimeVersion")
            runtime = mapping.get("runtime")
            if ident[0] != "InferenceService" or not isinstance(version, str) or not isinstance(runtime, str):
                continue
            # KServe looks the runtime up in the model's namespace first, then cluster-wide.
            base = runtimes.get((ident[1], runtime)) or runtimes.get(("", runtime))
            if base is None:
                continue  # a runtime the cluster already has: its image is not modelplane's
            derived = with_tag(base.partition("@")[0], version)
            uses.append((index, ImageUse(derived, *ident, (*path, "image"), derived=version)))
    return uses


def image_uses(objects: Sequence[Obj]) -> list[ImageUse]:
    """Every image the objects name, in object order, with the images KServe derives from them."""
    return [use for _, use in _indexed_uses(objects)]


def pin_objects(objects: Sequence[Obj], digests: Mapping[str, str]) -> list[Obj]:
    """The objects with every image the lock pins written as ``repository:tag@sha256:...``.

    An image that carries a digest already is left as written. Objects that change are copied;
    the others are returned as they are.
    """
    if not digests:
        return list(objects)  # nothing to pin: every object as it is
    changes: dict[int, list[ImageUse]] = {}
    for index, use in _indexed_uses(objects):
        if not has_digest(use.image) and use.image in digests:
            changes.setdefault(index, []).append(use)
    result = list(objects)
    for index, pinned in changes.items():
        obj = copy.deepcopy(objects[index])
        for use in pinned:
            holder: Any = obj
            for key in use.path[:-1]:
                holder = holder[key]
            holder[use.path[-1]] = f"{use.image}@{digests[use.image]}"
        result[index] = obj
    return result


def stack_paths(stack_data: Any) -> dict[str, list[FieldPath]]:
    """Where each string of a stack (its data with defaults, as the file spells keys) sits."""
    found: dict[str, list[FieldPath]] = {}
    for path, mapping in _walk(stack_data, ()):
        for key, value in mapping.items():
            if isinstance(value, str):
                found.setdefault(value, []).append((*path, key))
    return found


def origin(use: ImageUse, paths: Mapping[str, Sequence[FieldPath]]) -> FieldPath | None:
    """The stack field the image comes from, when the stack names it (first one, in file order)."""
    if use.derived is not None:
        return None
    stated = paths.get(use.image.partition("@")[0]) or paths.get(use.image)
    return min(stated, key=_path_order) if stated else None


def _path_order(path: FieldPath) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, p) if isinstance(p, int) else (1, p) for p in path)


def source_text(use: ImageUse, paths: Mapping[str, Sequence[FieldPath]]) -> str:
    """Where an image comes from, for people: the stack field, or the runtime catalog, or KServe."""
    stated = origin(use, paths)
    if stated is not None:
        return format_path(stated)
    if use.derived is not None:
        return f"runtimeVersion {use.derived} of {use.object}"
    if use.kind in ("ServingRuntime", "ClusterServingRuntime"):
        return f"runtime catalog, {use.object}"
    return f"written by modelplane in {use.object}"


def unpinned_problems(
    uses: Sequence[ImageUse], paths: Mapping[str, Sequence[FieldPath]], *, command: str
) -> list[Problem]:
    """One problem per image that has no digest under ``pinning: digest`` (one per image, not per use).

    ``uses`` are the uses after pinning: an image still without ``@`` is one the lock lacks.
    """
    seen: dict[str, ImageUse] = {}
    for use in uses:
        if not has_digest(use.image) and use.image not in seen:
            seen[use.image] = use
    problems: list[Problem] = []
    for image, use in sorted(seen.items()):
        stated = origin(use, paths)
        where: FieldPath = stated if stated is not None else ("images",)
        came = "" if stated is not None else f" ({source_text(use, paths)})"
        problems.append(
            Problem(where, f"{image}{came} has no digest (images.pinning: digest); run `{command}`")
        )
    return problems

"""What a model *version* is: the fields that define it, their digest, and its DNS-safe name.

A rollout starts when what answers a request changes: the model files (``storage``: its URI,
URIs or storage-config entry), what reads them (``format``, ``runtime``, ``runtimeVersion``,
``image``, ``protocol``, the predictor container's command, args, environment, ports and
volumes), the resources one replica runs with and how it spreads over nodes (``workers``), or
the ``version`` label itself. Everything else about a model (scaling, labels, annotations,
storage credentials, the predictor's pod settings and probes, transformer, explainer, rollout
policy, the probe's sample request) changes in place with no canary, because it does not change
which model answers.

The digest is a sha256 over the canonical JSON of those fields, written without defaults so a
library upgrade that adds an optional field does not make every model look new.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from typing import Any

from modelplane.model import MIN_VERSION_NAME, ModelArgs, standard_component_limit

VERSION_FIELDS: tuple[str, ...] = (
    "version",
    "storageUri",
    "storage",
    "format",
    "runtime",
    "runtimeVersion",
    "image",
    "protocol",
    "container",
    "resources",
    "workers",
)
"""Keys of a version spec, in the order previews list them."""

IN_PLACE_FIELDS: tuple[str, ...] = (
    "scaling",
    "labels",
    "annotations",
    "predictor",
    "storage.secretName",
    "storage.serviceAccountName",
    "transformer",
    "explainer",
    "rollout",
    "sampleRequest",
    "slo",
)
"""Model fields whose change is applied in place, without a canary."""

_NOT_NAME = re.compile(r"[^a-z0-9-]+")

CONTAINER_KEYS: frozenset[str] = frozenset(
    {"command", "args", "env", "env_from", "ports", "volumes", "shared_memory"}
)
"""Predictor settings that change what the server does (its container), not where or how it runs."""


def version_spec(model: ModelArgs) -> dict[str, Any]:
    """The version-defining fields of a model as plain data (camelCase, defaults left out)."""
    spec: dict[str, Any] = {
        "version": model.version,
        "format": model.model_format.model_dump(by_alias=True, exclude_defaults=True),
        "runtime": model.runtime,
    }
    if model.storage is not None:
        location = model.storage.location()
        uri = location.pop("uri", None)
        if uri is not None:
            spec["storageUri"] = uri
        if location:
            spec["storage"] = location
    for key, value in (("image", model.image), ("runtimeVersion", model.runtime_version)):
        if value is not None:
            spec[key] = value
    protocol = model.protocol.model_dump(by_alias=True, exclude_defaults=True)
    if protocol:
        spec["protocol"] = protocol
    container = model.predictor.model_dump(by_alias=True, exclude_defaults=True, include=set(CONTAINER_KEYS))
    if container:
        spec["container"] = container
    resources = model.resources.model_dump(by_alias=True, exclude_defaults=True)
    if resources:
        spec["resources"] = resources
    if model.workers is not None:
        # The environment only when set: a spec without it keeps its digest.
        workers = model.workers.model_dump(by_alias=True, exclude={"env"})
        if model.workers.env:
            workers["env"] = [v.model_dump(by_alias=True, exclude_defaults=True) for v in model.workers.env]
        spec["workers"] = workers
    return spec


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same data always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest_of(spec: dict[str, Any]) -> str:
    """``sha256:<hex>`` of a version spec's canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Version-defining fields that differ between two specs, in ``VERSION_FIELDS`` order."""
    return [f for f in VERSION_FIELDS if old.get(f) != new.get(f)]


def with_spec(model: ModelArgs, spec: dict[str, Any]) -> ModelArgs:
    """``model`` with its version-defining fields replaced by ``spec`` (the in-place fields kept)."""
    data = model.model_dump(by_alias=True, exclude_none=True)
    data["version"] = spec["version"]
    credentials = {
        k: v
        for k, v in data.get("storage", {}).items()
        if k in ("secretName", "serviceAccountName", "readOnly")
    }
    location = dict(spec.get("storage", {}))
    if "storageUri" in spec:
        location["uri"] = spec["storageUri"]
    if location:
        data["storage"] = credentials | location
    else:
        data.pop("storage", None)
    data["format"] = spec["format"]
    data["runtime"] = spec["runtime"]
    data["protocol"] = spec.get("protocol", {})
    data["resources"] = spec.get("resources", {})
    predictor = {k: v for k, v in data.get("predictor", {}).items() if _snake(k) not in CONTAINER_KEYS}
    data["predictor"] = predictor | spec.get("container", {})
    for key in ("image", "runtimeVersion", "workers"):
        if key in spec:
            data[key] = spec[key]
        else:
            data.pop(key, None)
    return ModelArgs.model_validate(data)


@functools.lru_cache(maxsize=1024)
def _snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def version_name(
    version: str, *, model: str, digest: str, namespace: str, taken: frozenset[str] = frozenset()
) -> str:
    """A DNS-safe name for a version, distinct from ``taken``.

    It becomes KServe's ``predictor.name`` in Standard mode (so the Deployment is
    ``<model>-<name>-predictor``) and the suffix of the side InferenceService in ModelMesh mode,
    so it must start with a letter and keep ``<model>-<name>-predictor`` within the longest name
    KServe can give a component in ``namespace`` (``model.standard_component_limit``; the stack's
    rules refuse a model name that leaves less than ``MIN_VERSION_NAME``). A version label that
    maps onto a taken name gets a digest suffix.
    """
    base = _NOT_NAME.sub("-", version.lower()).strip("-")
    if not base or not base[0].isalpha():
        base = f"v{base}".rstrip("-")
    room = max(MIN_VERSION_NAME, standard_component_limit(namespace) - len(model) - len("--predictor"))
    suffix = digest.removeprefix("sha256:")[:6]
    name = base[:room].rstrip("-")
    if name in taken:
        name = f"{base[: room - 7].rstrip('-')}-{suffix}"
    return name

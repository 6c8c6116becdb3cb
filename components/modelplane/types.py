"""Reusable field types for stack files.

Each type validates once, where it is declared, so models never re-check what a type
already guarantees. Messages name the rule that failed; the stack loader adds the file
and the field path.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field

DeploymentMode = Literal["knative", "standard", "modelmesh"]
"""How a model is served: a Knative Service, a plain Deployment, or the model mesh."""

FieldPath = tuple[str | int, ...]
"""Where a value sits in a stack or lock file: keys and list indexes, outermost first."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ISVC_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(
    r"^(?P<num>[0-9]+(\.[0-9]+)?|\.[0-9]+)"
    r"(?:(?P<suffix>m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exp>[-+]?[0-9]{1,2}))?$"
)
_LOOSE_QUANTITY = re.compile(r"^(?P<num>[0-9]+(\.[0-9]+)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]+)$")
_DURATION = re.compile(r"^(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?$")
_IMAGE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_SEMVER = re.compile(r"^v?[0-9]+\.[0-9]+(\.[0-9]+)?([-+][0-9A-Za-z.-]+)?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

_SUFFIX_FACTOR: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


MAX_QUANTITY = Decimal(2**63 - 1)
"""Largest quantity accepted; Kubernetes keeps quantities in 64-bit integers."""


def parse_quantity(value: str) -> Decimal:
    """Return the numeric value of a Kubernetes quantity such as ``500m``, ``2Gi`` or ``1e3``.

    Raises:
        ValueError: the text is not a non-negative Kubernetes quantity within ``MAX_QUANTITY``.
    """
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity (like 500m, 2, 512Mi, 4Gi): {value!r}")
    try:
        number = Decimal(match.group("num")).scaleb(int(match.group("exp") or 0))
    except InvalidOperation as err:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"not a number: {value!r}") from err
    number *= _SUFFIX_FACTOR[match.group("suffix") or ""]
    if number > MAX_QUANTITY:
        raise ValueError(f"quantity {value!r} is larger than Kubernetes allows (2^63-1)")
    return number


def parse_duration(value: str) -> int:
    """Return the whole seconds of a duration such as ``90s``, ``5m`` or ``1h30m``.

    Raises:
        ValueError: the text is not such a duration.
    """
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise ValueError(f"not a duration in whole seconds (like 30s, 5m, 1h30m): {value!r}")
    hours, minutes, seconds = (int(match.group(k) or 0) for k in ("h", "m", "s"))
    return hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """Format whole seconds the way Knative's ConfigMaps write durations (``90s``, ``5m``, ``1h``)."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _dns_label(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > 63:
        raise ValueError(f"must be at most 63 characters (has {len(value)})")
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric"
        )
    return value


def _isvc_name(value: str) -> str:
    _dns_label(value)
    if not _ISVC_NAME.fullmatch(value):
        raise ValueError("must start with a lower-case letter (KServe's InferenceService name rule)")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError("must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'")
    return value


_QUANTITY_EXAMPLE = "a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi"


def _quantity_problem(value: str) -> str:
    """Why a text is not a quantity, with the likely fix for a unit Kubernetes does not know."""
    if value.startswith("-"):
        return "must not be negative"
    loose = _LOOSE_QUANTITY.fullmatch(value.strip())
    if loose is None:
        return f"must be {_QUANTITY_EXAMPLE}"
    number, unit = loose.group("num"), loose.group("unit")
    if unit in _SUFFIX_FACTOR:
        return f"must be written without spaces: {number}{unit}"
    # 2GB, 2gb, 2gi, 512MiB: what people write for Kubernetes' G/Gi, Mi, ...
    of_bytes = len(unit) > 1 and unit[-1] in "bB"
    stem = unit[:-1] if of_bytes else unit
    # A byte unit is never "m" (milli), whatever its case.
    fits = [
        s
        for s in _SUFFIX_FACTOR
        if s and s.lower() in (stem.lower(), stem.lower() + "i") and not (of_bytes and s == "m")
    ]
    if fits:
        return f"unknown unit {unit!r}; write {' or '.join(number + s for s in fits)}"
    units = ", ".join(s for s in _SUFFIX_FACTOR if s)
    return f"unknown unit {unit!r}; Kubernetes units are {units}"


def _quantity(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be {_QUANTITY_EXAMPLE}")
    if isinstance(value, int):
        value = str(value)
    elif isinstance(value, float):
        value = format(Decimal(str(value)), "f")
    if _QUANTITY.fullmatch(value) is None:
        raise ValueError(_quantity_problem(value))
    try:
        parse_quantity(value)
    except ValueError:
        raise ValueError("must be at most 2^63-1, the largest quantity Kubernetes keeps") from None
    return value


_DURATION_EXAMPLE = "a duration in whole seconds such as 30s, 5m or 1h30m"


def _duration(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"must be {_DURATION_EXAMPLE}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        value = f"{value}s"
    if value.startswith("-"):
        raise ValueError("must not be negative")
    try:
        parse_duration(value)
    except ValueError:
        raise ValueError(f"must be {_DURATION_EXAMPLE}") from None
    return value


def _image(value: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError("must be an image reference: [registry/]repository[:tag][@sha256:digest]")
    if ":" not in value.rsplit("/", 1)[-1] and "@" not in value:
        raise ValueError("must pin a tag or digest; an untagged image means ':latest'")
    if value.endswith(":latest"):
        raise ValueError("must not use ':latest'; pin a version or a digest")
    return value


def _version(value: str) -> str:
    if not _SEMVER.fullmatch(value):
        raise ValueError("must be a version like v1.2.3 or 1.2")
    return value


def _label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(
            "must be a Kubernetes label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends"
        )
    return value


def _label_key(value: str) -> str:
    prefix, slash, name = value.rpartition("/")
    if slash and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(
            "must be a Kubernetes label key: the prefix before '/' must be a DNS-1123 subdomain "
            "(lower-case letters, digits, '-' and '.')"
        )
    if len(name) > 63 or not _LABEL_KEY_NAME.fullmatch(name):
        raise ValueError(
            "must be a Kubernetes label key: [prefix/]name, the name at most 63 of [A-Za-z0-9-_.], "
            "alphanumeric at both ends"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
"""A DNS-1123 label: the name rule for namespaces, services and most objects."""

ModelName = Annotated[str, AfterValidator(_isvc_name)]
"""A DNS-1123 label that starts with a letter, as KServe requires of InferenceService names."""

DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
"""A DNS-1123 subdomain, such as an ingress domain."""

Quantity = Annotated[str, BeforeValidator(_quantity)]
"""A non-negative Kubernetes quantity kept as written (``500m``, ``2Gi``); numbers are accepted."""

Duration = Annotated[str, BeforeValidator(_duration)]
"""A duration in whole seconds written as ``30s``, ``5m`` or ``1h30m``."""

ImageRef = Annotated[str, AfterValidator(_image)]
"""A container image pinned by tag or digest; ``:latest`` and untagged images are refused."""

Version = Annotated[str, AfterValidator(_version)]
"""An upstream release version such as ``v0.20.0`` or ``1.21.1``."""

LabelValue = Annotated[str, AfterValidator(_label_value)]
"""A Kubernetes label value."""

LabelKey = Annotated[str, AfterValidator(_label_key)]
"""A Kubernetes label key, with an optional DNS prefix."""

Percent = Annotated[int, Field(ge=0, le=100)]
"""A whole percentage from 0 to 100."""

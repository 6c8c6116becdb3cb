"""The reusable field types: what each accepts, what it keeps, and the exact words of each refusal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

import modelplane.types as types
from modelplane.types import (
    DnsLabel,
    DnsSubdomain,
    Duration,
    ImageRef,
    LabelKey,
    LabelValue,
    ModelName,
    Percent,
    Quantity,
    Version,
    format_duration,
    parse_duration,
    parse_quantity,
)

DIGEST = "sha256:" + "0123456789abcdef" * 4
DNS_LABEL_RULE = (
    "must be a DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric"
)
LABEL_KEY_RULE = "must be a Kubernetes label key: [prefix/]name, the name at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends"
LABEL_KEY_PREFIX_RULE = (
    "must be a Kubernetes label key: the prefix before '/' must be a DNS-1123 subdomain "
    "(lower-case letters, digits, '-' and '.')"
)
LABEL_VALUE_RULE = "must be a Kubernetes label value: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends"
QUANTITY_RULE = "must be a Kubernetes quantity such as 500m, 2, 512Mi or 4Gi"
DURATION_RULE = "must be a duration in whole seconds such as 30s, 5m or 1h30m"
IMAGE_RULE = "must be an image reference: [registry/]repository[:tag][@sha256:digest]"


def accepted(field_type: Any, value: object) -> object:
    return TypeAdapter(field_type).validate_python(value)


def refusal(field_type: Any, value: object) -> str:
    """The message a type gives for a value, as the stack loader shows it."""
    with pytest.raises(ValidationError) as info:
        TypeAdapter(field_type).validate_python(value)
    [error] = info.value.errors()
    cause = (error.get("ctx") or {}).get("error")
    return str(cause) if cause is not None else error["msg"]


# --- quantities ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", Decimal(0)),
        ("2", Decimal(2)),
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1k", Decimal(1000)),
        ("1Ki", Decimal(1024)),
        ("512Mi", Decimal(512 * 2**20)),
        ("4G", Decimal(4 * 10**9)),
        ("2Ti", Decimal(2 * 2**40)),
        ("1E", Decimal(10**18)),
        ("1e3", Decimal(1000)),
        ("25e-1", Decimal("2.5")),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "-1", "2GB", "1.", "1 Gi", "Gi", "1e999"])
def test_parse_quantity_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="Kubernetes"):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("500m", "500m"),
        ("4Gi", "4Gi"),
        (2, "2"),
        (0, "0"),
        (0.5, "0.5"),
        (1e-07, "0.0000001"),
        ("1e3", "1e3"),
    ],
)
def test_quantity_keeps_what_was_written(value: object, kept: str) -> None:
    assert accepted(Quantity, value) == kept


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "must not be negative"),
        (-1, "must not be negative"),
        (-0.5, "must not be negative"),
        ("2GB", "unknown unit 'GB'; write 2G or 2Gi"),
        ("512mb", "unknown unit 'mb'; write 512M or 512Mi"),
        ("1gi", "unknown unit 'gi'; write 1Gi"),
        ("512MiB", "unknown unit 'MiB'; write 512Mi"),
        ("1KB", "unknown unit 'KB'; write 1k or 1Ki"),
        ("3x", "unknown unit 'x'; Kubernetes units are m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei"),
        ("1 Gi", "must be written without spaces: 1Gi"),
        ("", QUANTITY_RULE),
        ("lots", QUANTITY_RULE),
        ("1.2.3", QUANTITY_RULE),
        (True, QUANTITY_RULE),
        (None, QUANTITY_RULE),
        ([1], QUANTITY_RULE),
        (float("inf"), QUANTITY_RULE),
        (float("nan"), QUANTITY_RULE),
        ("9" * 30, "must be at most 2^63-1, the largest quantity Kubernetes keeps"),
        ("99Ei", "must be at most 2^63-1, the largest quantity Kubernetes keeps"),
    ],
)
def test_quantity_refusal(value: object, message: str) -> None:
    assert refusal(Quantity, value) == message


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0), ("30s", 30), ("90s", 90), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("2h0m5s", 7205)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (45, "45s"), (90, "90s"), (300, "5m"), (7200, "2h")]
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("value", "kept"), [("30s", "30s"), ("1h30m", "1h30m"), (45, "45s"), (0, "0s")])
def test_duration_keeps_text_and_reads_numbers_as_seconds(value: object, kept: str) -> None:
    assert accepted(Duration, value) == kept


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", DURATION_RULE),
        ("1.5s", DURATION_RULE),
        ("500ms", DURATION_RULE),
        ("30m1h", DURATION_RULE),
        ("5 m", DURATION_RULE),
        ("1d", DURATION_RULE),
        ("-5s", "must not be negative"),
        (-5, "must not be negative"),
        (1.5, DURATION_RULE),
        (True, DURATION_RULE),
        (None, DURATION_RULE),
    ],
)
def test_duration_refusal(value: object, message: str) -> None:
    assert refusal(Duration, value) == message


# --- DNS names ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a", "fraud", "fraud-detector", "0abc", "a1", "a" * 63])
def test_dns_label_accepts(value: str) -> None:
    assert accepted(DnsLabel, value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("Fraud", DNS_LABEL_RULE),
        ("-fraud", DNS_LABEL_RULE),
        ("fraud-", DNS_LABEL_RULE),
        ("fraud_team", DNS_LABEL_RULE),
        ("fraud.team", DNS_LABEL_RULE),
        ("a" * 64, "must be at most 63 characters (has 64)"),
    ],
)
def test_dns_label_refusal(value: str, message: str) -> None:
    assert refusal(DnsLabel, value) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2fa", "must start with a lower-case letter (KServe's InferenceService name rule)"),
        ("Model", DNS_LABEL_RULE),
        ("m" * 64, "must be at most 63 characters (has 64)"),
    ],
)
def test_model_name_refusal(value: str, message: str) -> None:
    assert refusal(ModelName, value) == message


def test_model_name_accepts_a_kserve_name() -> None:
    assert accepted(ModelName, "fraud-detector-v2") == "fraud-detector-v2"


@pytest.mark.parametrize(
    "value", ["example.com", "models.example.com", "a", "a-b.c-d", ("a" * 63 + ".") * 3 + "a" * 61]
)
def test_dns_subdomain_accepts(value: str) -> None:
    assert accepted(DnsSubdomain, value) == value


@pytest.mark.parametrize(
    "value", ["", "Example.com", "example..com", ".example.com", "example.com.", "a_b.com", "a" * 254]
)
def test_dns_subdomain_refusal(value: str) -> None:
    assert (
        refusal(DnsSubdomain, value)
        == "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'"
    )


# --- images -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "nginx:1.27",
        "ghcr.io/example/server:3.2.0",
        "localhost:5000/server:1",
        "registry.example.com:443/team/server:v1-rc.1",
        f"ghcr.io/example/server@{DIGEST}",
        f"ghcr.io/example/server:latest@{DIGEST}",
    ],
)
def test_image_ref_accepts_pinned_images(value: str) -> None:
    assert accepted(ImageRef, value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nginx", "must pin a tag or digest; an untagged image means ':latest'"),
        ("localhost:5000/server", "must pin a tag or digest; an untagged image means ':latest'"),
        ("ghcr.io/example/server:latest", "must not use ':latest'; pin a version or a digest"),
        ("nginx:latest", "must not use ':latest'; pin a version or a digest"),
        ("GHCR.io/Example/Server:1", IMAGE_RULE),
        ("ghcr.io/example/server:", IMAGE_RULE),
        ("ghcr.io/example/server@sha256:abc", IMAGE_RULE),
        ("", IMAGE_RULE),
    ],
)
def test_image_ref_refusal(value: str, message: str) -> None:
    assert refusal(ImageRef, value) == message


# --- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["app", "team_name", "app.kubernetes.io/name", "example.com/Team.Name-1", "a" * 63, "x/" + "a" * 63],
)
def test_label_key_accepts(value: str) -> None:
    assert accepted(LabelKey, value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", LABEL_KEY_RULE),
        ("-app", LABEL_KEY_RULE),
        ("app-", LABEL_KEY_RULE),
        ("team name", LABEL_KEY_RULE),
        ("a" * 64, LABEL_KEY_RULE),
        ("example.com/", LABEL_KEY_RULE),
        ("Example.com/app", LABEL_KEY_PREFIX_RULE),
        ("/app", LABEL_KEY_PREFIX_RULE),
        ("a/b/c", LABEL_KEY_PREFIX_RULE),
        ("a" * 254 + "/app", LABEL_KEY_PREFIX_RULE),
    ],
)
def test_label_key_refusal(value: str, message: str) -> None:
    assert refusal(LabelKey, value) == message


@pytest.mark.parametrize("value", ["", "v1", "fraud", "Team.Name_1-x", "a" * 63])
def test_label_value_accepts(value: str) -> None:
    assert accepted(LabelValue, value) == value


@pytest.mark.parametrize("value", ["-v1", "v1-", "v 1", "v1/2", "a" * 64])
def test_label_value_refusal(value: str) -> None:
    assert refusal(LabelValue, value) == LABEL_VALUE_RULE


# --- versions and percentages -------------------------------------------------------------


@pytest.mark.parametrize("value", ["v0.20.0", "1.33", "91.5.0", "v1.2.3-rc.1", "1.2.3+build.7"])
def test_version_accepts(value: str) -> None:
    assert accepted(Version, value) == value


@pytest.mark.parametrize("value", ["latest", "1", "v1", "1.x", "", "1.2.3.4"])
def test_version_refusal(value: str) -> None:
    assert refusal(Version, value) == "must be a version like v1.2.3 or 1.2"


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "Input should be greater than or equal to 0"), (101, "Input should be less than or equal to 100")],
)
def test_percent_refusal(value: int, message: str) -> None:
    assert refusal(Percent, value) == message


@pytest.mark.parametrize("value", [0, 50, 100])
def test_percent_accepts(value: int) -> None:
    assert accepted(Percent, value) == value


@pytest.mark.parametrize(
    "validator",
    ["_dns_label", "_isvc_name", "_dns_subdomain", "_label_value", "_image"],
)
def test_a_trailing_newline_is_not_part_of_a_valid_value(validator: str) -> None:
    value = "ghcr.io/x/y:1.0\n" if validator == "_image" else "abc\n"
    with pytest.raises(ValueError):
        getattr(types, validator)(value)

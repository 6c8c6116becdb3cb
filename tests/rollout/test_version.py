"""What defines a model version: its spec, digest and DNS-safe name."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.model import ModelArgs, derived_name_problems
from modelplane.rollout.version import changed_fields, digest_of, version_name, version_spec, with_spec
from tests.rollout.builders import edit, load, stack_data


def _model(data: dict[str, Any]) -> Any:
    return load(data).models[0]


BASE = stack_data("standard")


def test_digest_is_stable_for_the_same_model() -> None:
    assert digest_of(version_spec(_model(BASE))) == digest_of(version_spec(_model(BASE)))


def test_digest_is_sha256_of_canonical_json() -> None:
    spec = {"b": 1, "a": {"d": 2, "c": 3}}
    assert digest_of(spec) == digest_of({"a": {"c": 3, "d": 2}, "b": 1})
    assert digest_of(spec).startswith("sha256:") and len(digest_of(spec)) == 71


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"version": "v2"}, "version"),
        ({"storage_uri": "s3://models/std/other"}, "storageUri"),
        ({"format": {"name": "sklearn"}}, "format"),
        ({"runtime": "mlserver"}, "runtime"),
        ({"protocol": {"version": "v1"}}, "protocol"),
        ({"resources": {"cpu": "2"}}, "resources"),
    ],
)
def test_version_defining_field_changes_the_digest(changes: dict[str, Any], field: str) -> None:
    before, after = version_spec(_model(BASE)), version_spec(_model(edit(BASE, "std", **changes)))
    assert digest_of(before) != digest_of(after)
    assert changed_fields(before, after) == [field]


@pytest.mark.parametrize(
    "changes",
    [
        {"scaling": {"minReplicas": 3, "maxReplicas": 9}},
        {"labels": {"team": "risk"}},
        {"storage": {"uri": "s3://models/std/v1", "secretName": "s3-creds"}},
        {"transformer": {"image": "ghcr.io/example/tok:1.0.0"}},
        {"rollout": {"stepInterval": "1h"}},
    ],
)
def test_in_place_fields_do_not_change_the_digest(changes: dict[str, Any]) -> None:
    assert digest_of(version_spec(_model(BASE))) == digest_of(
        version_spec(_model(edit(BASE, "std", **changes)))
    )


def test_spec_leaves_defaults_out() -> None:
    assert version_spec(_model(BASE)) == {
        "version": "v1",
        "storageUri": "s3://models/std/v1",
        "format": {"name": "sklearn", "version": "1"},
        "runtime": "sklearn",
    }


def test_with_spec_restores_version_fields_and_keeps_in_place_fields() -> None:
    old = _model(BASE)
    new = _model(
        edit(BASE, "std", version="v2", storage_uri="s3://x/v2", scaling={"minReplicas": 4, "maxReplicas": 8})
    )
    restored = with_spec(new, version_spec(old))
    assert version_spec(restored) == version_spec(old)
    assert restored.scaling.min_replicas == 4


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v7", "v7"),
        ("V7", "v7"),
        ("1.2.3", "v1-2-3"),
        ("2024_05_rc1", "v2024-05-rc1"),
        ("release-", "release"),
    ],
)
def test_version_name_is_a_dns_label_starting_with_a_letter(version: str, expected: str) -> None:
    assert version_name(version, model="m", digest="sha256:" + "a" * 64, namespace="team") == expected


def test_version_name_taken_gets_a_digest_suffix() -> None:
    assert (
        version_name(
            "v7", model="m", digest="sha256:abcdef" + "0" * 58, namespace="team", taken=frozenset({"v7"})
        )
        == "v7-abcdef"
    )


@pytest.mark.parametrize(
    ("model", "namespace"), [("a" * 39, "team"), ("a" * 23, "n" * 20), ("abc", "n" * 40)]
)
@pytest.mark.parametrize("taken", [frozenset(), frozenset({"v" + "1" * 80})])
def test_version_name_keeps_what_kserve_derives_from_it_within_its_limits(
    model: str, namespace: str, taken: frozenset[str]
) -> None:
    # The longest model names the rules let through in these namespaces.
    args = ModelArgs.model_validate(
        {
            "name": model,
            "tenant": "t",
            "runtime": "sklearn",
            "format": {"name": "sklearn"},
            "storage": {"uri": "s3://b/m"},
            "version": "v1",
        }
    )
    assert derived_name_problems(args, namespace=namespace, mode="standard", canary=True) == []
    longer = args.model_copy(update={"name": model + "b"})
    assert derived_name_problems(longer, namespace=namespace, mode="standard", canary=True) != []
    name = version_name(
        "v" + "1" * 80, model=model, digest="sha256:" + "b" * 64, namespace=namespace, taken=taken
    )
    deployment = f"{model}-{name}-predictor"
    # KServe labels its pods app=isvc.<deployment> (a label value) and gives it the host
    # <deployment>-<namespace>.<domain> (a DNS label): both at most 63 characters.
    assert len(f"isvc.{deployment}") <= 63
    assert len(f"{deployment}-{namespace}") <= 63
    assert name not in taken

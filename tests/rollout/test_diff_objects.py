"""The object-level diff: keyed by identity, kopf-style items, replacement on immutable fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.base import format_path
from modelplane.kube import ObjectKey
from modelplane.rollout.diff import diff_objects, diff_values


def obj(
    kind: str, name: str, spec: dict[str, Any] | None = None, namespace: str = "ns", api: str = "v1"
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec or {}}


def test_identical_sets_have_no_changes() -> None:
    objects = [obj("ConfigMap", "a"), obj("Service", "b")]
    assert diff_objects(objects, copy.deepcopy(objects)) == []


def test_added_and_removed_objects() -> None:
    changes = diff_objects([obj("ConfigMap", "old")], [obj("ConfigMap", "new")])
    assert [(c.key.name, c.action, c.destructive) for c in changes] == [
        ("new", "added", False),
        ("old", "removed", True),
    ]


def test_changed_object_lists_kopf_items_in_key_order() -> None:
    before = obj("Deployment", "web", {"replicas": 1, "paused": False, "template": {"a": 1}}, api="apps/v1")
    after = obj("Deployment", "web", {"replicas": 3, "minReadySeconds": 5, "template": {}}, api="apps/v1")
    (change,) = diff_objects([before], [after])
    assert change.action == "changed"
    assert [i.as_tuple() for i in change.items] == [
        ("add", ("spec", "minReadySeconds"), None, 5),
        ("remove", ("spec", "paused"), False, None),
        ("change", ("spec", "replicas"), 1, 3),
        ("remove", ("spec", "template", "a"), 1, None),
    ]


def test_equal_length_lists_compare_item_by_item() -> None:
    assert [i.as_tuple() for i in diff_values({"x": [1, 2, 3]}, {"x": [1, 5, 3]})] == [
        ("change", ("x", 1), 2, 5)
    ]


def test_lists_of_different_length_change_as_a_whole() -> None:
    assert [i.as_tuple() for i in diff_values({"x": [1]}, {"x": [1, 2]})] == [("change", ("x",), [1], [1, 2])]


def test_identity_includes_namespace_and_api_version() -> None:
    changes = diff_objects([obj("ConfigMap", "a", namespace="one")], [obj("ConfigMap", "a", namespace="two")])
    assert {(c.key, c.action) for c in changes} == {
        (ObjectKey("v1", "ConfigMap", "one", "a"), "removed"),
        (ObjectKey("v1", "ConfigMap", "two", "a"), "added"),
    }


@pytest.mark.parametrize(
    ("kind", "api", "before", "after", "reason"),
    [
        (
            "Deployment",
            "apps/v1",
            {"selector": {"matchLabels": {"a": "1"}}},
            {"selector": {"matchLabels": {"a": "2"}}},
            "spec.selector",
        ),
        (
            "StatefulSet",
            "apps/v1",
            {"volumeClaimTemplates": [{"x": 1}]},
            {"volumeClaimTemplates": [{"x": 2}]},
            "spec.volumeClaimTemplates",
        ),
        ("StatefulSet", "apps/v1", {"serviceName": "a"}, {"serviceName": "b"}, "spec.serviceName"),
        (
            "StatefulSet",
            "apps/v1",
            {"selector": {"matchLabels": {"a": "1"}}},
            {"selector": {}},
            "spec.selector",
        ),
        ("Service", "v1", {"clusterIP": "10.0.0.1"}, {"clusterIP": "10.0.0.2"}, "spec.clusterIP"),
        (
            "Job",
            "batch/v1",
            {"template": {"spec": {"x": 1}}},
            {"template": {"spec": {"x": 2}}},
            "spec.template",
        ),
        (
            "PersistentVolumeClaim",
            "v1",
            {"storageClassName": "fast"},
            {"storageClassName": "slow"},
            "spec.storageClassName",
        ),
    ],
)
def test_immutable_field_change_replaces_the_object(
    kind: str, api: str, before: dict[str, Any], after: dict[str, Any], reason: str
) -> None:
    (change,) = diff_objects([obj(kind, "x", before, api=api)], [obj(kind, "x", after, api=api)])
    assert change.action == "replaced"
    assert change.destructive
    assert change.reasons == (f"{reason} cannot change in place",)


def test_inference_service_mode_annotation_replaces_it() -> None:
    def isvc(mode: str) -> dict[str, Any]:
        o = obj("InferenceService", "m", {"predictor": {}}, api="serving.kserve.io/v1beta1")
        o["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": mode}
        return o

    (change,) = diff_objects([isvc("Knative")], [isvc("Standard")])
    assert change.action == "replaced"
    assert change.reasons == (
        'metadata.annotations["serving.kserve.io/deploymentMode"] cannot change in place',
    )


def test_mutable_field_of_a_kind_with_immutable_ones_is_a_change() -> None:
    (change,) = diff_objects(
        [obj("Deployment", "w", {"replicas": 1}, api="apps/v1")],
        [obj("Deployment", "w", {"replicas": 2}, api="apps/v1")],
    )
    assert change.action == "changed"
    assert not change.destructive


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("Namespace", "deleting a Namespace deletes every object in it"),
        ("InferenceService", "deleting an InferenceService stops serving the model"),
    ],
)
def test_severe_removals_say_why(kind: str, reason: str) -> None:
    (change,) = diff_objects([obj(kind, "x", namespace="" if kind == "Namespace" else "ns")], [])
    assert change.reasons == (reason,)


def test_changes_come_in_render_order() -> None:
    old = [obj("Service", "b"), obj("Namespace", "z", namespace="")]
    new = [obj("Service", "a"), obj("Namespace", "y", namespace="")]
    assert [(c.key.kind, c.key.name) for c in diff_objects(old, new)] == [
        ("Namespace", "y"),
        ("Namespace", "z"),
        ("Service", "a"),
        ("Service", "b"),
    ]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("spec", "predictor", "minReplicas"), "spec.predictor.minReplicas"),
        (("spec", "canary", 0, "trafficPercent"), "spec.canary[0].trafficPercent"),
        (("metadata", "labels", "modelplane.dev/version"), 'metadata.labels["modelplane.dev/version"]'),
    ],
)
def test_dotted_paths(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text

"""Outside dev, ``pulumi destroy`` or a resource dropped from the program cannot delete what
holds data or serves: namespaces, CRDs, etcd and its volumes, Prometheus's storage and every
InferenceService are protected and retained on delete. Checked on the real program under
Pulumi's mocks, which see the options the engine would get."""

from __future__ import annotations

import pytest

from modelplane.resources._register import KEPT_KINDS
from tests.pulumi_mocks import Recording, run_program

KEPT_TOKENS = {
    "kubernetes:core/v1:Namespace",
    "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
    "kubernetes:core/v1:PersistentVolumeClaim",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:serving.kserve.io/v1beta1:InferenceService",
}


@pytest.fixture(scope="module")
def prod() -> Recording:
    return run_program("prod")


@pytest.fixture(scope="module")
def dev() -> Recording:
    return run_program("dev")


def _kept(recording: Recording) -> list[tuple[str, str, bool | None, bool | None]]:
    return [
        (r.type, r.name, r.protect, r.retain_on_delete)
        for r in recording.registrations
        if r.type in KEPT_TOKENS
    ]


def test_the_kept_kinds_are_the_tokens_checked() -> None:
    assert {token.rsplit(":", 1)[1] for token in KEPT_TOKENS} == KEPT_KINDS


def test_outside_dev_namespaces_storage_and_models_are_protected_and_retained(prod: Recording) -> None:
    kept = _kept(prod)
    kinds = {token for token, *_ in kept}
    assert {
        "kubernetes:core/v1:Namespace",
        "kubernetes:apps/v1:StatefulSet",
        "kubernetes:serving.kserve.io/v1beta1:InferenceService",
    } <= kinds, kinds
    assert [k for k in kept if k[2:] != (True, True)] == []
    etcd = prod.one("kubernetes:apps/v1:StatefulSet")
    assert etcd.inputs["metadata"]["name"] == "modelmesh-etcd" and etcd.protect and etcd.retain_on_delete
    mesh_namespace = [
        r
        for r in prod.of_type("kubernetes:core/v1:Namespace")
        if r.inputs["metadata"]["name"] == "modelmesh-serving"
    ]
    assert [(r.protect, r.retain_on_delete) for r in mesh_namespace] == [(True, True)]


def test_outside_dev_prometheus_storage_is_protected_and_retained(prod: Recording) -> None:
    (release,) = [
        r
        for r in prod.of_type("kubernetes:helm.sh/v3:Release")
        if r.inputs["name"] == "kube-prometheus-stack"
    ]
    assert (release.protect, release.retain_on_delete) == (True, True)


def test_what_holds_no_data_is_not_protected(prod: Recording) -> None:
    loose = [r for r in prod.registrations if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    assert loose and all(not r.protect for r in loose)


def test_dev_protects_nothing(dev: Recording) -> None:
    assert [r.name for r in dev.registrations if r.protect] == []
    assert [r.name for r in dev.registrations if r.type in KEPT_TOKENS and r.retain_on_delete] == []

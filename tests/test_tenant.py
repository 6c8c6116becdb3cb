"""A tenant's namespace bounds what lives in it: its own Role, a LimitRange, object-count quotas."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.tenant import TENANT_ROLE, TenantArgs, policy_objects


def _objects(**fields: Any) -> dict[str, Any]:
    tenant = TenantArgs.model_validate({"name": "fraud", **fields})
    return {o["kind"]: o for o in policy_objects(tenant, stack="dev")}


def test_the_role_manages_the_tenants_inference_services_and_nothing_cluster_wide() -> None:
    role = _objects()["Role"]
    assert role["metadata"] == {
        "name": TENANT_ROLE,
        "namespace": "fraud",
        "labels": role["metadata"]["labels"],
    }
    resources = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert resources == {
        ("serving.kserve.io", "inferenceservices"),
        ("serving.kserve.io", "inferenceservices/status"),
        ("", "pods"),
        ("", "pods/log"),
        ("", "events"),
    }
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])
    writes = {r for rule in role["rules"] if "delete" in rule["verbs"] for r in rule["resources"]}
    assert writes == {"inferenceservices"}


@pytest.mark.parametrize(("groups", "bound"), [([], None), (["b", "a", "a"], ["a", "b"])])
def test_the_role_is_bound_to_the_groups_the_stack_names(groups: list[str], bound: list[str] | None) -> None:
    binding = _objects(adminGroups=groups).get("RoleBinding")
    if bound is None:
        assert binding is None
        return
    assert binding is not None
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": TENANT_ROLE,
    }
    assert [s["name"] for s in binding["subjects"]] == bound
    assert {s["kind"] for s in binding["subjects"]} == {"Group"}


def test_containers_without_resources_get_the_limit_range_defaults() -> None:
    (limit,) = _objects(containerDefaults={"memoryLimit": "4Gi"})["LimitRange"]["spec"]["limits"]
    assert limit == {
        "type": "Container",
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
        "default": {"cpu": "2", "memory": "4Gi"},
    }


@pytest.mark.parametrize(("quota", "services"), [({}, None), ({"inferenceServices": 7, "secrets": 9}, "7")])
def test_object_counts_are_bounded(quota: dict[str, int], services: str | None) -> None:
    tenant = TenantArgs.model_validate({"name": "fraud", "objectQuota": quota})
    (counts,) = [o for o in policy_objects(tenant, stack="dev") if o["kind"] == "ResourceQuota"]
    expected = {"count/configmaps": "100", "count/secrets": str(quota.get("secrets", 100))}
    if services is not None:
        expected["count/inferenceservices.serving.kserve.io"] = services
    assert counts["spec"]["hard"] == dict(sorted(expected.items()))

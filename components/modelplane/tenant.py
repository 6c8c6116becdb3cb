"""Tenants: the teams that own models, each in its own hardened namespace.

A tenant's namespace enforces Pod Security "restricted", denies traffic by default, and bounds
what lives in it: a Role that manages the tenant's own InferenceServices and nothing
cluster-wide (bound to the groups the stack names), a LimitRange that gives every container
without resources a request and a limit, and a ResourceQuota on how many Secrets and ConfigMaps
(and, when the stack says, InferenceServices) the namespace may hold, so a runaway script
cannot fill etcd.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from modelplane.base import Problem, StrictModel
from modelplane.errors import ProblemError
from modelplane.gpu_pool import GpuPoolArgs, MigSharing
from modelplane.kube import LABEL_TENANT, labels, reserved_label
from modelplane.types import DnsLabel, FieldPath, LabelKey, LabelValue, Quantity

POD_SECURITY_LEVEL = "restricted"
"""The Pod Security level every tenant namespace enforces, audits and warns at. A stack cannot
lower it: the ``pod-security.kubernetes.io/*`` labels are modelplane's (``reserved_label``), so
the model rules that depend on it (a modelcar's pods are refused) read it from here."""


class GpuQuotaArgs(StrictModel):
    """The most GPU units a tenant's pods may request on one pool (a ResourceQuota)."""

    pool: DnsLabel = Field(description="GPU pool the quota is for.")
    limit: int = Field(
        ge=0,
        le=100000,
        description="Units of the pool's resource: whole GPUs, time-sliced shares or MIG devices.",
    )
    mig_profile: str | None = Field(
        default=None,
        description="On a mixed-strategy MIG pool, the profile limited; default: the limit applies to each profile.",
    )


class ContainerDefaultsArgs(StrictModel):
    """The LimitRange of a tenant's namespace: resources of containers that state none.

    KServe and ModelMesh set resources on the containers they create; this bounds the rest
    (a sidecar someone adds, a debug pod). A default limit applies only to a container without
    a limit, so it is set well above any default request.
    """

    cpu_request: Quantity = Field(default="100m", description="Default CPU request. Default: 100m.")
    memory_request: Quantity = Field(default="128Mi", description="Default memory request. Default: 128Mi.")
    cpu_limit: Quantity = Field(default="2", description="Default CPU limit. Default: 2.")
    memory_limit: Quantity = Field(default="2Gi", description="Default memory limit. Default: 2Gi.")


class ObjectQuotaArgs(StrictModel):
    """How many objects of a kind a tenant's namespace may hold (a ResourceQuota of object counts)."""

    inference_services: int | None = Field(
        default=None,
        ge=1,
        le=100000,
        description="InferenceServices. Default: none. A quota refuses every object it counts until the "
        "quota controller has computed its status, so an InferenceService applied together with a new "
        "quota is refused at first (a real API server does: tests/cluster); set it once the namespace "
        "exists, and leave room for the side objects of rollouts (twice the tenant's models).",
    )
    secrets: int = Field(default=100, ge=1, le=100000, description="Secrets. Default: 100.")
    config_maps: int = Field(default=100, ge=1, le=100000, description="ConfigMaps. Default: 100.")


class TenantArgs(StrictModel):
    """One tenant and its namespace."""

    name: DnsLabel = Field(description="Tenant name; models name it in `tenant`.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the tenant's models. Default: its name."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Extra labels on the namespace. Keys modelplane or Kubernetes set themselves "
        "(`modelplane.dev/*`, `app.kubernetes.io/{managed-by,part-of,component}`, `pod-security.kubernetes.io/*`, "
        "`kubernetes.io/metadata.name`, `modelmesh-enabled`) are refused.",
    )
    gpu_quotas: list[GpuQuotaArgs] = Field(
        default_factory=list,
        description="GPU quotas per pool. Default: none (the pools' size is the only bound).",
    )
    admin_groups: list[
        Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[^\s]+$")]
    ] = Field(
        default_factory=list,
        max_length=50,
        description="Groups (as the cluster's authenticator names them) bound to the tenant's Role, "
        "which manages its InferenceServices and reads its pods and logs, in its namespace only. "
        "Default: none (the Role exists, unbound).",
    )
    container_defaults: ContainerDefaultsArgs = Field(
        default_factory=ContainerDefaultsArgs, description="The namespace's LimitRange."
    )
    object_quota: ObjectQuotaArgs = Field(
        default_factory=ObjectQuotaArgs, description="The namespace's object-count ResourceQuota."
    )

    @model_validator(mode="after")
    def _own_labels(self) -> TenantArgs:
        problems = [
            Problem(("labels", key), f"is a reserved label key ({whose}); choose another key", key)
            for key in self.labels
            if (whose := reserved_label(key, namespace=True)) is not None
        ]
        if problems:
            raise ProblemError(problems)
        return self

    @property
    def namespace_name(self) -> str:
        """The namespace the tenant's models live in."""
        return self.namespace or self.name

    @property
    def pod_security(self) -> str:
        """The Pod Security level the tenant's namespace enforces."""
        return POD_SECURITY_LEVEL


def objects(
    tenant: TenantArgs,
    *,
    stack: str,
    kubernetes_minor: str,
    ingress_namespaces: list[str],
    monitoring_namespace: str,
    mesh: bool = False,
    mesh_namespace: str = "modelmesh-serving",
    gpu_pools: list[GpuPoolArgs] | None = None,
) -> list[dict[str, object]]:
    """A tenant's namespace (Pod Security "restricted" enforced) and its NetworkPolicies.

    Ingress is denied by default and allowed only from the namespace itself, the inference
    gateways and Prometheus; egress is limited to DNS and HTTPS (model storage).
    """
    namespace = tenant.namespace_name
    common = labels(stack, "tenant", **{LABEL_TENANT: tenant.name})
    ns_labels = dict(common) | dict(tenant.labels)
    pss_version = f"v{kubernetes_minor}"
    for mode in ("enforce", "audit", "warn"):
        ns_labels[f"pod-security.kubernetes.io/{mode}"] = tenant.pod_security
        ns_labels[f"pod-security.kubernetes.io/{mode}-version"] = pss_version
    if mesh:
        ns_labels["modelmesh-enabled"] = "true"
    allowed_from = sorted({*ingress_namespaces, monitoring_namespace})
    egress_extra: list[dict[str, object]] = []
    if mesh:
        # ModelMesh runtime pods in this namespace keep their cluster state in etcd.
        egress_extra.append(
            {
                "to": [
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": mesh_namespace}}}
                ],
                "ports": [{"port": 2379, "protocol": "TCP"}],
            }
        )
    quotas = quota_objects(tenant, gpu_pools or [], stack=stack)
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(sorted(ns_labels.items()))},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": namespace, "labels": common},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-serving", "namespace": namespace, "labels": common},
            "spec": {
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [{"podSelector": {}}]},
                    {
                        "from": [
                            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}
                            for ns in allowed_from
                        ]
                    },
                ],
                "egress": [
                    {"to": [{"podSelector": {}}]},
                    {
                        "to": [
                            {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
                        ],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    },
                    {"ports": [{"port": 443, "protocol": "TCP"}]},
                    *egress_extra,
                ],
            },
        },
        *quotas,
        *policy_objects(tenant, stack=stack),
    ]


TENANT_ROLE = "modelplane-tenant"
"""The Role (and RoleBinding) that lets a tenant's groups manage their own models."""


def policy_objects(tenant: TenantArgs, *, stack: str) -> list[dict[str, object]]:
    """The tenant's Role (and its binding), LimitRange and object-count ResourceQuota.

    The quota counts Secrets and ConfigMaps, which controllers create in the namespace after
    the quota exists; InferenceServices only when the stack sets a number (see ``ObjectQuotaArgs``).
    """
    namespace = tenant.namespace_name
    common = labels(stack, "tenant", **{LABEL_TENANT: tenant.name})

    def meta(name: str) -> dict[str, object]:
        return {"name": name, "namespace": namespace, "labels": common}

    read = ["get", "list", "watch"]
    role: dict[str, object] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(TENANT_ROLE),
        "rules": [
            {
                "apiGroups": ["serving.kserve.io"],
                "resources": ["inferenceservices"],
                "verbs": [*read, "create", "update", "patch", "delete"],
            },
            {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices/status"], "verbs": read},
            {"apiGroups": [""], "resources": ["pods", "pods/log", "events"], "verbs": read},
        ],
    }
    result: list[dict[str, object]] = [role]
    if tenant.admin_groups:
        result.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": meta(TENANT_ROLE),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TENANT_ROLE},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}
                    for group in sorted(set(tenant.admin_groups))
                ],
            }
        )
    defaults = tenant.container_defaults
    result.append(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": meta("container-defaults"),
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": defaults.cpu_request, "memory": defaults.memory_request},
                        "default": {"cpu": defaults.cpu_limit, "memory": defaults.memory_limit},
                    }
                ]
            },
        }
    )
    quota = tenant.object_quota
    hard = {"count/secrets": str(quota.secrets), "count/configmaps": str(quota.config_maps)}
    if quota.inference_services is not None:
        hard["count/inferenceservices.serving.kserve.io"] = str(quota.inference_services)
    result.append(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": meta("object-counts"),
            "spec": {"hard": dict(sorted(hard.items()))},
        }
    )
    return result


def quota_resources(tenant: TenantArgs, pools: list[GpuPoolArgs]) -> dict[str, int]:
    """Extended resource -> the tenant's limit on it.

    A ResourceQuota counts requests per resource name in a namespace and cannot tell two pools
    apart when both advertise, say, ``nvidia.com/gpu``: ``gpu_quota_problems`` refuses a quota on
    such a pool, so each resource here is one pool's.
    """
    by_name = {p.name: p for p in pools}
    result: dict[str, int] = {}
    for quota in tenant.gpu_quotas:
        pool = by_name.get(quota.pool)
        if pool is None:
            continue
        names = [pool.resource_name(quota.mig_profile)] if quota.mig_profile else pool.resource_names()
        for name in names:
            result[name] = result.get(name, 0) + quota.limit
    return dict(sorted(result.items()))


def quota_objects(tenant: TenantArgs, pools: list[GpuPoolArgs], *, stack: str) -> list[dict[str, object]]:
    """The tenant's GPU ResourceQuota, when it has GPU quotas."""
    hard = quota_resources(tenant, pools)
    if not hard:
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {
                "name": "gpu",
                "namespace": tenant.namespace_name,
                "labels": labels(stack, "tenant", **{LABEL_TENANT: tenant.name}),
            },
            "spec": {"hard": {f"requests.{name}": str(limit) for name, limit in hard.items()}},
        }
    ]


def _shared_resource_problems(
    quota: GpuQuotaArgs, pool: GpuPoolArgs, pools: list[GpuPoolArgs], tenant: TenantArgs, *, where: FieldPath
) -> list[Problem]:
    """A quota on a resource another pool also advertises: Kubernetes cannot quota the two apart.

    A ResourceQuota's ``requests.<resource>`` counts every pod of the namespace requesting that
    resource (k8s.io/kubernetes pkg/quota/v1/evaluator/core/pods.go:198-212), whichever node it
    lands on, so the limit would cap the other pool too and add up with a quota on it.
    """
    names = [pool.resource_name(quota.mig_profile)] if quota.mig_profile else pool.resource_names()
    result: list[Problem] = []
    for other in pools:
        shared = sorted(set(names) & set(other.resource_names())) if other.name != pool.name else []
        if not shared:
            continue
        also = any(q.pool == other.name for q in tenant.gpu_quotas)
        consequence = (
            f"its limit and the tenant's quota on {other.name!r} would add up to one limit the tenant may spend on either"
            if also
            else f"it would also cap the tenant's use of pool {other.name!r}"
        )
        result.append(
            Problem(
                (*where, "pool"),
                f"pool {pool.name!r} advertises {', '.join(shared)}, as pool {other.name!r} does, and a ResourceQuota "
                f"counts requests per resource name, not per pool: {consequence}; give the pools different "
                "resources (time-slicing renames to nvidia.com/gpu.shared, MIG to nvidia.com/mig-<profile>) or drop "
                "the quota",
                quota.pool,
            )
        )
    return result


def gpu_quota_problems(tenant: TenantArgs, pools: list[GpuPoolArgs], *, path: FieldPath) -> list[Problem]:
    """Problems of a tenant's GPU quotas against the pools they name; ``path`` is the tenant's."""
    result: list[Problem] = []
    by_name = {p.name: p for p in pools}
    known = ", ".join(sorted(by_name)) or "none declared"
    seen: set[tuple[str, str | None]] = set()
    for q, quota in enumerate(tenant.gpu_quotas):
        where: FieldPath = (*path, "gpuQuotas", q)
        pool = by_name.get(quota.pool)
        if pool is None:
            result.append(Problem((*where, "pool"), f"unknown GPU pool (gpuPools: {known})", quota.pool))
            continue
        if (quota.pool, quota.mig_profile) in seen:
            result.append(
                Problem(where, f"a second quota for pool {quota.pool!r}", quota.mig_profile or quota.pool)
            )
        seen.add((quota.pool, quota.mig_profile))
        result += _shared_resource_problems(quota, pool, pools, tenant, where=where)
        if quota.mig_profile is not None:
            sharing = pool.sharing
            if not isinstance(sharing, MigSharing) or sharing.strategy != "mixed":
                result.append(
                    Problem(
                        (*where, "migProfile"),
                        f"pool {pool.name!r} is not a mixed-strategy MIG pool; its quota has no profile",
                        quota.mig_profile,
                    )
                )
            elif quota.mig_profile not in sharing.profiles:
                result.append(
                    Problem(
                        (*where, "migProfile"),
                        f"pool {pool.name!r} does not offer MIG profile {quota.mig_profile!r} "
                        f"(it offers {', '.join(sorted(sharing.profiles))})",
                        quota.mig_profile,
                    )
                )
    return result

"""Tenants: the teams that own models, each in its own hardened namespace."""

from __future__ import annotations

from pydantic import Field

from components.base import StrictModel
from components.types import DnsLabel, LabelKey, LabelValue


class TenantArgs(StrictModel):
    """One tenant and its namespace."""

    name: DnsLabel = Field(description="Tenant name; models name it in `tenant`.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the tenant's models. Default: its name."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Extra labels on the namespace."
    )

    @property
    def namespace_name(self) -> str:
        """The namespace the tenant's models live in."""
        return self.namespace or self.name


def objects(
    tenant: TenantArgs,
    *,
    stack: str,
    kubernetes_minor: str,
    ingress_namespaces: list[str],
    monitoring_namespace: str,
    mesh: bool = False,
) -> list[dict[str, object]]:
    """A tenant's namespace (Pod Security "restricted" enforced) and its NetworkPolicies.

    Ingress is denied by default and allowed only from the namespace itself, the inference
    gateways and Prometheus; egress is limited to DNS and HTTPS (model storage).
    """
    from components.kube import LABEL_TENANT, labels

    namespace = tenant.namespace_name
    common = labels(stack, "tenant", **{LABEL_TENANT: tenant.name})
    ns_labels = dict(common) | dict(tenant.labels)
    pss_version = f"v{kubernetes_minor}"
    for mode in ("enforce", "audit", "warn"):
        ns_labels[f"pod-security.kubernetes.io/{mode}"] = "restricted"
        ns_labels[f"pod-security.kubernetes.io/{mode}-version"] = pss_version
    if mesh:
        ns_labels["modelmesh-enabled"] = "true"
    allowed_from = sorted({*ingress_namespaces, monitoring_namespace})
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
                ],
            },
        },
    ]

"""Inference ingress: how requests reach models, and the Gateway API objects modelplane authors.

KServe routes Standard-mode models with Gateway API HTTPRoutes that attach to one inference
Gateway; canary weights and shadow mirrors ride on them. modelplane authors that Gateway (its
listeners and which namespaces may attach routes) and its GatewayClass for Envoy Gateway, whose
release (with the Gateway API CRDs) ``modelplane.control_plane.charts`` installs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from modelplane.base import StrictModel
from modelplane.kube import Obj, labels
from modelplane.types import DnsLabel, DnsSubdomain

ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


class IngressArgs(StrictModel):
    """How inference traffic reaches models."""

    domain: DnsSubdomain = Field(
        default="example.com", description="Ingress domain; model URLs are `<model>-<namespace>.<domain>`."
    )
    gateway_api: bool = Field(
        default=True,
        description="Route Standard-mode models with Gateway API HTTPRoutes (needed for weighted canaries).",
    )
    install_gateway: bool = Field(
        default=True,
        description="Install Envoy Gateway (with the Gateway API CRDs) and author the GatewayClass and Gateway; "
        "false to use an existing Gateway API implementation and Gateway.",
    )
    gateway_name: DnsLabel = Field(
        default="kserve-ingress-gateway", description="Gateway that routes inference."
    )
    gateway_namespace: DnsLabel = Field(default="kserve", description="Namespace of that Gateway.")
    gateway_class: DnsLabel = Field(default="envoy", description="GatewayClass of the inference Gateway.")
    url_scheme: Literal["http", "https"] = Field(
        default="https", description="Scheme of published model URLs."
    )
    tls_secret_name: DnsSubdomain | None = Field(
        default=None,
        description="TLS Secret (in the Gateway's namespace) for an HTTPS listener; referenced by name only. "
        "No HTTPS listener when unset.",
    )


def objects(ingress: IngressArgs, *, stack: str) -> list[Obj]:
    """The GatewayClass (Envoy Gateway) and the inference Gateway KServe's HTTPRoutes attach to.

    Routes are admitted only from this stack's tenant namespaces, not from every namespace.
    """
    common = labels(stack, "control-plane")
    allowed = {
        "namespaces": {
            "from": "Selector",
            "selector": {
                "matchLabels": {"app.kubernetes.io/component": "tenant", "modelplane.dev/stack": stack}
            },
        }
    }
    listeners: list[dict[str, Any]] = [
        {"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": allowed},
    ]
    if ingress.tls_secret_name:
        listeners.append(
            {
                "name": "https",
                "port": 443,
                "protocol": "HTTPS",
                "tls": {
                    "mode": "Terminate",
                    "certificateRefs": [{"kind": "Secret", "name": ingress.tls_secret_name}],
                },
                "allowedRoutes": allowed,
            }
        )
    return [
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "GatewayClass",
            "metadata": {"name": ingress.gateway_class, "labels": common},
            "spec": {"controllerName": ENVOY_GATEWAY_CONTROLLER},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {
                "name": ingress.gateway_name,
                "namespace": ingress.gateway_namespace,
                "labels": common,
            },
            "spec": {"gatewayClassName": ingress.gateway_class, "listeners": listeners},
        },
    ]

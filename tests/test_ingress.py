"""Inference ingress: the GatewayClass and Gateway modelplane authors for KServe's HTTPRoutes."""

from __future__ import annotations

from modelplane import ingress
from modelplane.ingress import IngressArgs
from modelplane.validation import CrdSchemas


def test_https_listener_references_its_secret_by_name(crd_schemas: CrdSchemas) -> None:
    args = IngressArgs.model_validate({"tlsSecretName": "models-tls"})
    gateway = ingress.objects(args, stack="s")[1]
    https = gateway["spec"]["listeners"][1]
    assert https["tls"]["certificateRefs"] == [{"kind": "Secret", "name": "models-tls"}]
    assert crd_schemas.validate(gateway) == []


def test_routes_attach_only_from_the_stacks_tenant_namespaces() -> None:
    gateway_class, gateway = ingress.objects(IngressArgs(), stack="prod")
    assert gateway_class["spec"] == {"controllerName": ingress.ENVOY_GATEWAY_CONTROLLER}
    (listener,) = gateway["spec"]["listeners"]
    assert listener["allowedRoutes"]["namespaces"] == {
        "from": "Selector",
        "selector": {
            "matchLabels": {"app.kubernetes.io/component": "tenant", "modelplane.dev/stack": "prod"}
        },
    }

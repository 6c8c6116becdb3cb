"""The serving control plane: KServe, cert-manager, Gateway API and (when used) Knative.

Upstream software comes from its pinned releases (see ``components.upstream``); what this
module authors is their configuration, computed from typed arguments rather than raw
chart values, and the order they must be installed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from components.base import Contribution, StrictModel
from components.types import DnsLabel, DnsSubdomain, Quantity
from components.upstream import Chart, Versions

if TYPE_CHECKING:
    from components.serving_platform import BuildContext, ServingPlatformArgs

DeploymentMode = Literal["knative", "standard", "modelmesh"]
"""How a model is served: a Knative Service, a plain Deployment, or the model mesh."""

KSERVE_MODE_NAMES: dict[str, str] = {"knative": "Knative", "standard": "Standard", "modelmesh": "ModelMesh"}
"""The value of ``serving.kserve.io/deploymentMode`` for each deployment mode."""


class IngressArgs(StrictModel):
    """How inference traffic reaches models."""

    domain: DnsSubdomain = Field(
        default="example.com", description="Ingress domain; model URLs are `<model>-<namespace>.<domain>`."
    )
    gateway_api: bool = Field(
        default=True,
        description="Route Standard-mode models with Gateway API HTTPRoutes (needed for weighted canaries).",
    )
    gateway_name: DnsLabel = Field(
        default="kserve-ingress-gateway", description="Gateway that routes inference."
    )
    gateway_namespace: DnsLabel = Field(default="kserve", description="Namespace of that Gateway.")
    gateway_class: DnsLabel = Field(default="envoy", description="GatewayClass of the inference Gateway.")
    url_scheme: Literal["http", "https"] = Field(
        default="https", description="Scheme of published model URLs."
    )


class StorageInitializerArgs(StrictModel):
    """Resources of KServe's storage-initializer, which downloads models before a server starts."""

    cpu: Quantity = Field(default="100m", description="CPU request of the storage initializer.")
    memory: Quantity = Field(default="256Mi", description="Memory request of the storage initializer.")
    cpu_limit: Quantity = Field(default="1", description="CPU limit of the storage initializer.")
    memory_limit: Quantity = Field(default="1Gi", description="Memory limit of the storage initializer.")


class ControlPlaneArgs(StrictModel):
    """KServe's controller and its dependencies."""

    namespace: DnsLabel = Field(default="kserve", description="Namespace of the KServe controller.")
    default_deployment_mode: DeploymentMode = Field(
        default="standard",
        description="Mode of models that name none. `standard` needs no Knative; `knative` scales to zero.",
    )
    network_layer: Literal["kourier", "istio"] = Field(
        default="kourier",
        description="Knative networking layer, installed only when a model uses Knative mode.",
    )
    controller_replicas: int | None = Field(
        default=None,
        ge=1,
        le=5,
        description="KServe controller replicas. Default: 1 in the dev tier, 2 in staging and prod (with a PDB).",
    )
    ingress: IngressArgs = Field(default_factory=IngressArgs, description="Inference ingress.")
    storage_initializer: StorageInitializerArgs = Field(
        default_factory=StorageInitializerArgs, description="Storage-initializer resources."
    )
    logger_url: str | None = Field(
        default=None,
        description="URL of an inference logger sink (CloudEvents); no request logging when unset.",
    )


def controller_replicas(args: ControlPlaneArgs, tier: str) -> int:
    """KServe controller replicas: the stack's, else 1 in dev and 2 elsewhere."""
    if args.controller_replicas is not None:
        return args.controller_replicas
    return 1 if tier == "dev" else 2


def charts(
    args: ControlPlaneArgs,
    versions: Versions,
    *,
    tier: str,
    knative: bool,
    keda: bool,
) -> list[Chart]:
    """The upstream releases of the control plane, in install waves.

    Wave 0: cert-manager (KServe's webhooks need its certificates). Wave 1: KServe's CRDs
    (and KEDA, the Knative operator). Wave 2: the KServe controller, configured from typed
    args. Custom resources of modelplane's own come after the release that installs their CRD.
    """
    replicas = controller_replicas(args, tier)
    ha = replicas > 1
    result = [
        Chart(
            release="cert-manager",
            namespace="cert-manager",
            repository="https://charts.jetstack.io",
            chart="cert-manager",
            version=versions.cert_manager,
            values={
                "crds": {"enabled": True, "keep": True},
                "replicaCount": 2 if ha else 1,
                "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
                "webhook": {
                    "replicaCount": 2 if ha else 1,
                    "podDisruptionBudget": {"enabled": ha, "minAvailable": 1},
                },
            },
            needed_by_groups=("cert-manager.io",),
            wave=0,
        ),
        Chart(
            release="kserve-crd",
            namespace=args.namespace,
            repository="oci://ghcr.io/kserve/charts",
            chart="kserve-crd",
            version=versions.kserve,
            needed_by_groups=("serving.kserve.io",),
            depends_on=("cert-manager",),
            wave=1,
        ),
        Chart(
            release="kserve",
            namespace=args.namespace,
            repository="oci://ghcr.io/kserve/charts",
            chart="kserve-resources",
            version=versions.kserve,
            values={
                "kserve": {
                    "controller": {
                        "deploymentMode": KSERVE_MODE_NAMES[args.default_deployment_mode],
                        "replicas": replicas,
                        "gateway": {
                            "domain": args.ingress.domain,
                            "urlScheme": args.ingress.url_scheme,
                            "ingressGateway": {
                                "enableGatewayApi": args.ingress.gateway_api,
                                "kserveGateway": f"{args.ingress.gateway_namespace}/{args.ingress.gateway_name}",
                                "className": args.ingress.gateway_class,
                            },
                        },
                    },
                    "storage": {
                        "resources": {
                            "requests": {
                                "cpu": args.storage_initializer.cpu,
                                "memory": args.storage_initializer.memory,
                            },
                            "limits": {
                                "cpu": args.storage_initializer.cpu_limit,
                                "memory": args.storage_initializer.memory_limit,
                            },
                        }
                    },
                    "servingruntime": {"enabled": False},
                }
            },
            needed_by_groups=("serving.kserve.io",),
            depends_on=("cert-manager", "kserve-crd"),
            wave=2,
        ),
    ]
    if knative:
        result.append(
            Chart(
                release="knative-operator",
                namespace="knative-operator",
                repository="https://knative.github.io/operator",
                chart="knative-operator",
                version=versions.knative,
                needed_by_groups=("operator.knative.dev",),
                wave=1,
            )
        )
    if keda:
        result.append(
            Chart(
                release="keda",
                namespace="keda",
                repository="https://kedacore.github.io/charts",
                chart="keda",
                version=versions.keda,
                values={"operator": {"replicaCount": 2 if ha else 1}},
                needed_by_groups=("keda.sh",),
                wave=1,
            )
        )
    return result


def contribute(args: ServingPlatformArgs, ctx: BuildContext) -> Contribution:
    """The control plane's part of a stack's render: its upstream charts."""
    from components.serving_platform import uses_keda

    return Contribution(
        charts=charts(
            args.control_plane,
            args.versions,
            tier=args.stack.tier,
            knative=ctx.uses_knative,
            keda=uses_keda(args, ctx),
        )
    )

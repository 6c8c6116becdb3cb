"""Serving runtimes a cluster already has, which models may name as they are.

A platform team may run KServe's own ClusterServingRuntimes (``kserve-sklearnserver``), a
vendor's, or a namespaced ServingRuntime of its own making. A stack declares each one once
(``externalRuntimes``: its name and kind, the formats and protocols it serves, its ports) and a
model names it in ``runtime`` like a catalog runtime. modelplane renders no object for it, but
checks a model against what it declares exactly as against the catalog (formats, protocols,
GPUs), and monitors it on the ports it declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import Field

from modelplane.base import StrictModel
from modelplane.runtimes import ExternalKind, FormatSpec, Protocol, RuntimeResources, RuntimeSpec
from modelplane.types import DnsLabel

_V1_V2: tuple[Protocol, ...] = ("v1", "v2")

KSERVE_DEFAULT_RESOURCES = RuntimeResources(cpu="1", memory="2Gi", cpu_limit="1", memory_limit="2Gi")
"""What KServe gives a model container that states none (inferenceservice-config ``inferenceService.resource``)."""


class ExternalRuntimeArgs(StrictModel):
    """A ServingRuntime or ClusterServingRuntime the cluster has, declared so models may use it."""

    name: DnsLabel = Field(description="Its name in the cluster (`kserve-sklearnserver`); what models name.")
    kind: ExternalKind = Field(
        default="ClusterServingRuntime",
        description="ClusterServingRuntime, or ServingRuntime (then in each model's namespace). "
        "Default: ClusterServingRuntime.",
    )
    formats: list[FormatSpec] = Field(min_length=1, description="Model formats it serves.")
    protocols: list[Protocol] = Field(
        default_factory=lambda: list(_V1_V2),
        description="Protocol versions it serves; empty for a server with its own API. Default: v1, v2.",
    )
    http_port: int = Field(default=8080, ge=1, le=65535, description="HTTP port. Default: 8080.")
    grpc_port: int = Field(default=8081, ge=1, le=65535, description="gRPC port. Default: 8081.")
    metrics_port: int = Field(default=8080, ge=1, le=65535, description="Prometheus port. Default: 8080.")
    metrics_path: str = Field(default="/metrics", description="Prometheus path. Default: /metrics.")
    gpu_capable: bool = Field(default=False, description="Whether it can use GPUs. Default: false.")

    def spec(self) -> RuntimeSpec:
        """The runtime as the rules, the render and monitoring see a catalog runtime."""
        return RuntimeSpec(
            name=self.name,
            description=f"the cluster's {self.kind} {self.name}",
            server_type="external",
            image=None,
            formats=list(self.formats),
            protocols=list(self.protocols),
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            metrics_port=self.metrics_port,
            metrics_path=self.metrics_path,
            readiness_path=None,
            liveness_path=None,
            resources=KSERVE_DEFAULT_RESOURCES,
            read_only_root_filesystem=False,
            run_as_user=1000,
            gpu_capable=self.gpu_capable,
            external=self.kind,
        )


def with_external(
    catalog: Mapping[str, RuntimeSpec], external: Sequence[ExternalRuntimeArgs]
) -> dict[str, RuntimeSpec]:
    """The catalog with the stack's external runtimes added (a catalog name is never replaced)."""
    merged = dict(catalog)
    for runtime in external:
        merged.setdefault(runtime.name, runtime.spec())
    return merged

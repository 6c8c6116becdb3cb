"""The model mesh: many small models sharing a few multi-model runtime pods.

Upstream ModelMesh Serving is archived (its repositories say so, and KServe's Helm chart
dropped it in 2025); modelplane keeps it a supported backend because nothing else packs
thousands of small models into a handful of pods.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.base import StrictModel
from components.types import DnsLabel, DnsSubdomain, Duration, Quantity


class EtcdArgs(StrictModel):
    """Where ModelMesh keeps its cluster state."""

    mode: Literal["quickstart", "statefulset", "external"] = Field(
        default="statefulset",
        description="`statefulset`: 3 members with volumes and TLS; `external`: by secret reference; "
        "`quickstart`: a single member, dev tier only.",
    )
    secret_name: DnsSubdomain = Field(
        default="model-serving-etcd",
        description="Secret holding `etcd_connection` (endpoints, credentials), referenced, never rendered.",
    )
    members: int = Field(default=3, ge=1, le=7, description="Members of the etcd StatefulSet (odd).")
    storage: Quantity = Field(default="10Gi", description="Volume size per etcd member.")
    snapshot_schedule: str = Field(default="0 */6 * * *", description="Cron schedule of etcd snapshots.")

    @model_validator(mode="after")
    def _odd_members(self) -> EtcdArgs:
        if self.mode == "statefulset" and self.members % 2 == 0:
            raise ValueError(f"members must be odd for an etcd quorum (got {self.members})")
        return self


class ModelMeshArgs(StrictModel):
    """ModelMesh Serving settings."""

    enabled: bool = Field(
        default=False, description="Install ModelMesh Serving; models in `modelmesh` mode need it."
    )
    namespace: DnsLabel = Field(
        default="modelmesh-serving", description="Namespace of the ModelMesh controller."
    )
    pods_per_runtime: int = Field(default=2, ge=1, le=100, description="Runtime pods per mesh runtime.")
    memory_buffer: Quantity = Field(
        default="128Mi", description="Runtime memory kept free of models (ModelMesh's `memBufferBytes`)."
    )
    model_load_timeout: Duration = Field(default="90s", description="How long one model load may take.")
    rest_proxy: bool = Field(default=True, description="Run the REST proxy so V2 REST works beside gRPC.")
    etcd: EtcdArgs = Field(default_factory=EtcdArgs, description="ModelMesh's etcd.")

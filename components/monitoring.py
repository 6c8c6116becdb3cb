"""Prometheus monitoring of every runtime, with the queries that also gate canaries."""

from __future__ import annotations

from pydantic import Field

from components.base import StrictModel
from components.types import DnsLabel, Duration


class MonitoringArgs(StrictModel):
    """Scraping, rules and alerts."""

    enabled: bool = Field(
        default=True, description="Emit ServiceMonitors/PodMonitors and rules for every model."
    )
    install_prometheus: bool = Field(
        default=True,
        description="Install kube-prometheus-stack; set false to use an existing Prometheus operator.",
    )
    namespace: DnsLabel = Field(default="monitoring", description="Namespace of Prometheus.")
    scrape_interval: Duration = Field(default="30s", description="Scrape interval of model metrics.")
    availability_objective: float = Field(
        default=99.9,
        gt=50,
        lt=100,
        description="Availability SLO per model, in percent, for burn-rate alerts.",
    )
    latency_objective_ms: int = Field(
        default=500, ge=1, le=600000, description="p99 latency objective per model, in milliseconds."
    )

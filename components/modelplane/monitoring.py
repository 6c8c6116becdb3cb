"""Prometheus monitoring of every model, with the queries that also gate canaries.

Prometheus comes from kube-prometheus-stack at the pinned version (or an existing Prometheus
operator). What modelplane authors is the scrape configuration, one PodMonitor per tenant
namespace that knows each runtime's metrics port and copies the model, version and runtime pod
labels onto every series, and per namespace the SLO recording rules and burn-rate alerts
(``modelplane.slo``), built from the same PromQL the rollout gates judge canaries with.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import Field

from modelplane.base import StrictModel
from modelplane.kube import LABEL_MODEL, LABEL_RUNTIME, LABEL_VERSION, Obj, labels
from modelplane.runtimes import RuntimeSpec
from modelplane.slo import SloModel, slo_rules
from modelplane.types import (
    DeploymentMode,
    DnsLabel,
    DnsSubdomain,
    Duration,
    Quantity,
    parse_quantity,
)
from modelplane.upstream import Chart, Versions


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
    storage: Quantity = Field(
        default="50Gi",
        description="Prometheus's persistent volume, one claim per replica, so gate and SLO history "
        "survive a restart; 85% of it is the size-based retention. Default: 50Gi.",
    )
    storage_class_name: DnsSubdomain | None = Field(
        default=None, description="StorageClass of Prometheus's volume. Default: the cluster's default class."
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days Prometheus keeps samples (the longer of this and the SLO windows matters for "
        "burn-rate alerts). Default: 15, 2 in dev.",
    )
    grafana_admin_secret: DnsSubdomain | None = Field(
        default=None,
        description="Secret in the monitoring namespace holding Grafana's admin credentials (keys "
        "`admin-user` and `admin-password`), by reference. Default: none, and Grafana's chart keeps a "
        "random password in a Secret of its own.",
    )
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


MODEL_LABELS: tuple[str, ...] = (LABEL_MODEL, LABEL_VERSION, LABEL_RUNTIME)
"""Pod labels copied onto every scraped series (as ``modelplane_dev_model`` and so on)."""

QUEUE_PROXY_PORT = "http-usermetric"
"""Knative's queue-proxy port that serves per-revision request metrics."""

MODELMESH_METRICS_PORT = "prometheus"


def retention_size(storage: str) -> str:
    """Prometheus's ``retentionSize`` for a volume: 85% of it, in MB (Prometheus's units are powers of 2).

    Time-based retention alone lets the volume fill up and Prometheus stop ingesting; the size
    limit drops the oldest blocks first, with room left for the WAL and compaction.
    """
    return f"{int(parse_quantity(storage) * Decimal('0.85')) // 2**20}MB"


def _volume_claim(args: MonitoringArgs) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": args.storage}},
    }
    if args.storage_class_name:
        spec["storageClassName"] = args.storage_class_name
    return spec


def _grafana(args: MonitoringArgs) -> dict[str, Any]:
    # Grafana's `helm test` Pod runs as root with no security context; nothing here runs
    # `helm test`, and its namespace should not have to admit it.
    values: dict[str, Any] = {"testFramework": {"enabled": False}}
    if args.grafana_admin_secret:
        # kube-prometheus-stack passes `grafana.admin` to the Grafana chart, which then renders no
        # admin Secret and reads both keys from this one (grafana chart values.yaml, `admin:`).
        values["admin"] = {"existingSecret": args.grafana_admin_secret}
    return values


def chart(
    args: MonitoringArgs, versions: Versions, *, tier: str, node_label_keys: Sequence[str] = ()
) -> Chart:
    """kube-prometheus-stack, configured to pick up modelplane's monitors and rules in every namespace.

    ``node_label_keys`` are node labels kube-state-metrics exports on ``kube_node_labels`` (the
    GPU pools' node labels, which the GPU rules map nodes to pools by).
    """
    ha = tier != "dev"
    selectors = {
        "podMonitorSelectorNilUsesHelmValues": False,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "probeSelectorNilUsesHelmValues": False,
    }
    return Chart(
        release="kube-prometheus-stack",
        namespace=args.namespace,
        repository="https://prometheus-community.github.io/helm-charts",
        chart="kube-prometheus-stack",
        version=versions.prometheus_stack,
        values={
            "prometheus": {
                "prometheusSpec": {
                    **selectors,
                    "replicas": 2 if ha else 1,
                    "retention": f"{args.retention_days or (15 if ha else 2)}d",
                    "retentionSize": retention_size(args.storage),
                    "storageSpec": {"volumeClaimTemplate": {"spec": _volume_claim(args)}},
                    "scrapeInterval": args.scrape_interval,
                    "enableAdminAPI": False,
                }
            },
            "alertmanager": {"alertmanagerSpec": {"replicas": 2 if ha else 1}},
            "grafana": _grafana(args),
            # kube_pod_labels with the model and version (replicas per model and version on the
            # dashboards), kube_node_labels with the GPU pools' node labels (pools of the GPU rules).
            "kube-state-metrics": {
                "metricLabelsAllowlist": [
                    f"pods=[{','.join(sorted((LABEL_MODEL, LABEL_VERSION)))}]",
                    *([f"nodes=[{','.join(node_label_keys)}]"] if node_label_keys else []),
                ]
            },
        },
        needed_by_groups=("monitoring.coreos.com",),
        crds=True,
        wave=0,
    )


def _pod_monitor(
    namespace: str, *, stack: str, interval: str, runtimes: list[RuntimeSpec], knative: bool
) -> Obj:
    endpoints: list[dict[str, Any]] = []
    for spec in runtimes:
        endpoints.append(
            {
                "portNumber": spec.metrics_port,
                "path": spec.metrics_path,
                "interval": interval,
                "relabelings": [
                    {
                        "action": "keep",
                        "sourceLabels": ["__meta_kubernetes_pod_label_modelplane_dev_runtime"],
                        "regex": spec.name,
                    }
                ],
            }
        )
    if knative:
        endpoints.append({"port": QUEUE_PROXY_PORT, "path": "/metrics", "interval": interval})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": "modelplane-models",
            "namespace": namespace,
            "labels": labels(stack, "monitoring"),
        },
        "spec": {
            "selector": {"matchExpressions": [{"key": LABEL_MODEL, "operator": "Exists"}]},
            "podTargetLabels": list(MODEL_LABELS),
            "podMetricsEndpoints": endpoints,
        },
    }


def _mesh_monitor(namespace: str, *, stack: str, interval: str) -> Obj:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": "modelplane-mesh",
            "namespace": namespace,
            "labels": labels(stack, "monitoring"),
        },
        "spec": {
            "selector": {"matchLabels": {"modelmesh-service": "modelmesh-serving"}},
            "endpoints": [{"port": MODELMESH_METRICS_PORT, "scheme": "http", "interval": interval}],
        },
    }


class ServedModel(NamedTuple):
    """One model as monitoring sees it: where it runs, how, on which runtime, and its own objectives."""

    namespace: str
    name: str
    mode: DeploymentMode
    runtime: RuntimeSpec
    availability: float | None = None
    """The model's availability objective, where it differs from ``MonitoringArgs``'s."""
    latency_ms: int | None = None
    """The model's p99 latency objective, where it differs from ``MonitoringArgs``'s."""


def objects(args: MonitoringArgs, *, stack: str, models: Sequence[ServedModel]) -> list[Obj]:
    """Per tenant namespace: a PodMonitor of its runtimes, a mesh ServiceMonitor, and its SLO rules."""
    if not args.enabled:
        return []
    by_namespace: dict[str, dict[str, Any]] = {}
    for model in models:
        entry = by_namespace.setdefault(
            model.namespace, {"runtimes": {}, "knative": False, "mesh": False, "models": []}
        )
        entry["models"].append(
            SloModel(
                model.name,
                model.mode,
                model.runtime.name,
                availability=args.availability_objective
                if model.availability is None
                else model.availability,
                latency_ms=args.latency_objective_ms if model.latency_ms is None else model.latency_ms,
            )
        )
        if model.mode == "modelmesh":
            entry["mesh"] = True
            continue
        entry["runtimes"][model.runtime.name] = model.runtime
        entry["knative"] |= model.mode == "knative"
    result: list[Obj] = []
    for namespace, entry in sorted(by_namespace.items()):
        runtimes = [entry["runtimes"][name] for name in sorted(entry["runtimes"])]
        if runtimes or entry["knative"]:
            result.append(
                _pod_monitor(
                    namespace,
                    stack=stack,
                    interval=args.scrape_interval,
                    runtimes=runtimes,
                    knative=entry["knative"],
                )
            )
        if entry["mesh"]:
            result.append(_mesh_monitor(namespace, stack=stack, interval=args.scrape_interval))
        result += slo_rules(
            namespace,
            entry["models"],
            availability=args.availability_objective,
            latency_ms=args.latency_objective_ms,
            stack=stack,
        )
    return result

"""GPU pool observability: DCGM's metrics per pool, and alerts for saturated, idle and failing GPUs.

The GPU operator runs NVIDIA's dcgm-exporter on every GPU node and, with the chart values
``gpu_operator.chart`` sets, a ServiceMonitor that scrapes it with the node's name as the
``node`` label. DCGM knows GPUs and nodes, not modelplane's pools, so the pools come from
kube-state-metrics: ``kube_node_labels`` carries the pool's node labels (``monitoring.chart``
allows them), and one recording rule per pool turns them into ``modelplane:node_gpu_pool:info``
(node, pool). Every pool figure joins on it. The rules grow with the pools, never with models.

Metric names are dcgm-exporter's default counters (NVIDIA/dcgm-exporter ``etc/default-counters.csv``,
read at tag 4.5.3-4.8.2, the newest tag available here; the gpu-operator chart v26.7.0 pins
image ``4.6.0-4.8.3-distroless``): ``DCGM_FI_DEV_GPU_UTIL`` (gauge, %, line 23),
``DCGM_FI_DEV_FB_USED``/``DCGM_FI_DEV_FB_FREE`` (gauges, MiB, lines 45-46),
``DCGM_FI_DEV_POWER_USAGE`` (gauge, W, line 14) and ``DCGM_FI_DEV_XID_ERRORS`` (gauge: the value
of the last XID error, line 29). dcgm-exporter labels a GPU in use with its pod's ``pod``,
``namespace`` and ``container`` (``internal/pkg/transformation/const.go:21-23``); the ServiceMonitor
honours them (``honorLabels: true``, ``gpu_operator.chart``), so a GPU a pod holds carries that
pod's namespace and a free GPU the exporter's own: the GPU operator's namespace.
"""

from __future__ import annotations

import re
from typing import Any

from modelplane.gpu_pool import GpuPoolArgs
from modelplane.kube import Obj, labels

RULE_NAME = "modelplane-gpu"
POOL_INFO = "modelplane:node_gpu_pool:info"
"""One series per pool node, labelled ``node`` and ``pool``, value 1."""

UTILIZATION = "modelplane:gpu_pool_utilization:avg"
MEMORY_USED = "modelplane:gpu_pool_memory_used_bytes:sum"
MEMORY_USED_RATIO = "modelplane:gpu_pool_memory_used:ratio"
POWER = "modelplane:gpu_pool_power_watts:sum"
GPUS = "modelplane:gpu_pool_gpus:count"
RESERVED = "modelplane:gpu_pool_gpus_reserved:count"
XID_GPUS = "modelplane:gpu_pool_xid_errors:count15m"

SATURATION_PERCENT = 90
"""Average utilisation of a pool's GPUs above which it is saturated (for ``SATURATION_FOR``)."""
SATURATION_FOR = "30m"
IDLE_PERCENT = 1
"""Average utilisation over ``IDLE_WINDOW`` below which a GPU held by a pod counts as idle."""
IDLE_WINDOW = "1h"
XID_WINDOW = "15m"

_JOIN = f"* on (node) group_left (pool) {POOL_INFO}"
_NEW_XID = f"(DCGM_FI_DEV_XID_ERRORS > 0 and changes(DCGM_FI_DEV_XID_ERRORS[{XID_WINDOW}]) > 0)"
"""GPUs whose last XID error changed within the window, valued by that XID."""


def ksm_label(key: str) -> str:
    """A node label as kube-state-metrics' ``kube_node_labels`` names it: ``label_`` + key, ``[^a-zA-Z0-9_]`` as ``_``.

    kube-state-metrics ``internal/store/utils.go`` (``SanitizeLabelName``, ``invalidLabelCharRE``).
    """
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)


def node_label_keys(pools: list[GpuPoolArgs]) -> list[str]:
    """The node label keys kube-state-metrics must export for the pools to be told apart."""
    return sorted({key for pool in pools for key in pool.selector})


def _pool_nodes(pool: GpuPoolArgs) -> str:
    """The nodes of one pool: ``kube_node_labels`` with the pool's node labels, as (node, pool)."""
    matchers = ",".join(f'{ksm_label(k)}="{v}"' for k, v in pool.selector.items())
    return (
        f'max by (node, pool) (label_replace(kube_node_labels{{{matchers}}}, "pool", "{pool.name}", "", ""))'
    )


def pool_info_rule(pools: list[GpuPoolArgs]) -> dict[str, Any]:
    """Every pool node as (node, pool): one rule, the pools' selections joined with ``or``."""
    return {
        "record": POOL_INFO,
        "expr": " or ".join(_pool_nodes(p) for p in sorted(pools, key=lambda p: p.name)),
    }


def _held(operator_namespace: str) -> str:
    """Matchers of a GPU a pod holds: its series carry the pod's namespace, not the exporter's."""
    return f'namespace!="{operator_namespace}"'


def recording_rules(pools: list[GpuPoolArgs], *, operator_namespace: str) -> list[dict[str, Any]]:
    """Per-pool utilisation, memory, power, GPU counts and XID errors, after each pool's nodes."""
    by_pool = "sum by (pool)"
    return [
        pool_info_rule(pools),
        {"record": UTILIZATION, "expr": f"avg by (pool) (DCGM_FI_DEV_GPU_UTIL {_JOIN})"},
        {"record": MEMORY_USED, "expr": f"{by_pool} (DCGM_FI_DEV_FB_USED {_JOIN}) * 1048576"},
        {
            "record": MEMORY_USED_RATIO,
            "expr": f"{by_pool} (DCGM_FI_DEV_FB_USED {_JOIN})"
            f" / ({by_pool} (DCGM_FI_DEV_FB_USED {_JOIN}) + {by_pool} (DCGM_FI_DEV_FB_FREE {_JOIN}))",
        },
        {"record": POWER, "expr": f"{by_pool} (DCGM_FI_DEV_POWER_USAGE {_JOIN})"},
        {"record": GPUS, "expr": f"count by (pool) (DCGM_FI_DEV_GPU_UTIL {_JOIN})"},
        {
            "record": RESERVED,
            "expr": f"count by (pool) (DCGM_FI_DEV_GPU_UTIL{{{_held(operator_namespace)}}} {_JOIN})",
        },
        {
            "record": XID_GPUS,
            "expr": f"count by (pool) ({_NEW_XID} {_JOIN})",
        },
    ]


def alerts(*, operator_namespace: str) -> list[dict[str, Any]]:
    """A saturated pool, a GPU held by a pod and idle, a GPU that reported an XID error."""
    gpu = "GPU {{ $labels.gpu }} ({{ $labels.modelName }}) on node {{ $labels.node }} in pool {{ $labels.pool }}"
    return [
        {
            "alert": "GpuPoolSaturated",
            "expr": f"{UTILIZATION} > {SATURATION_PERCENT}",
            "for": SATURATION_FOR,
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "GPU pool {{ $labels.pool }} is saturated",
                "description": "The GPUs of pool {{ $labels.pool }} have been"
                f" {{{{ $value | humanize }}}}% busy on average, above {SATURATION_PERCENT}%, for"
                f" {SATURATION_FOR}. Requests queue behind them: raise the pool's maxNodes, move models"
                " to another pool, or check `modelplane plan` for what the pool is asked to hold.",
            },
        },
        {
            "alert": "GpuReservedIdle",
            "expr": f"(avg_over_time(DCGM_FI_DEV_GPU_UTIL{{{_held(operator_namespace)}}}[{IDLE_WINDOW}])"
            f" < {IDLE_PERCENT}) {_JOIN}",
            "labels": {"severity": "info"},
            "annotations": {
                "summary": f"{gpu} is held by a pod but idle",
                "description": f"{gpu} is held by pod {{{{ $labels.namespace }}}}/"
                f"{{{{ $labels.pod }}}} and was {{{{ $value | humanize }}}}% busy on average over"
                f" the last {IDLE_WINDOW}. The model may need fewer replicas, scale to zero, or a shared"
                " (time-sliced or MIG) pool.",
            },
        },
        {
            "alert": "GpuXidError",
            "expr": f"{_NEW_XID} {_JOIN}",
            "labels": {"severity": "critical"},
            "annotations": {
                "summary": f"{gpu} reported XID error {{{{ $value }}}}",
                "description": f"{gpu} reported XID error {{{{ $value }}}} in the last {XID_WINDOW}"
                " (NVIDIA's XID catalogue says what it means; 48, 63, 64, 74, 79, 94 and 95 usually need"
                " the node drained and the GPU reset or replaced). Cordon the node if the error repeats.",
            },
        },
    ]


def objects(pools: list[GpuPoolArgs], *, namespace: str, operator_namespace: str, stack: str) -> list[Obj]:
    """The PrometheusRule ``modelplane-gpu`` of the pools (none without pools), in ``namespace``.

    ``operator_namespace`` is the GPU operator's: the namespace a GPU no pod holds is labelled with.
    """
    if not pools:
        return []
    return [
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": RULE_NAME, "namespace": namespace, "labels": labels(stack, "monitoring")},
            "spec": {
                "groups": [
                    {
                        "name": f"{RULE_NAME}.records",
                        "rules": recording_rules(pools, operator_namespace=operator_namespace),
                    },
                    {"name": f"{RULE_NAME}.alerts", "rules": alerts(operator_namespace=operator_namespace)},
                ]
            },
        }
    ]

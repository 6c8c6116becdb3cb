"""What the GPU pools of a stack emit: GPU operator configuration, NodePools, PriorityClasses.

The NVIDIA GPU operator is installed from its pinned chart, never re-authored. What is ours
is its configuration, computed from the pools: one ConfigMap of named device-plugin configs
(one per pool, picked by the node label ``nvidia.com/device-plugin.config=<pool>``), one
mig-parted ConfigMap with a MIG layout per MIG pool (picked by ``nvidia.com/mig.config``),
the chart values that point the operator at both, a Karpenter ``NodePool`` per Karpenter
pool, and a PriorityClass per pool.
"""

from __future__ import annotations

from typing import Any

import yaml

from modelplane.gpu_pool import (
    LABEL_DEVICE_PLUGIN_CONFIG,
    LABEL_MIG_CONFIG,
    MIG_DISABLED,
    GpuPoolArgs,
    MigSharing,
    TimeSlicingSharing,
)
from modelplane.kube import Obj, labels
from modelplane.upstream import Chart, Versions

NAMESPACE = "gpu-operator"
"""Namespace of the GPU operator and of its configuration."""
DEVICE_PLUGIN_CONFIGMAP = "modelplane-device-plugin-config"
MIG_PARTED_CONFIGMAP = "modelplane-mig-parted-config"
DCGM_SCRAPE_INTERVAL = "30s"
"""How often Prometheus scrapes dcgm-exporter (the chart's default is 15s; GPU gauges change slowly)."""
DEFAULT_DEVICE_PLUGIN_CONFIG = "default"
"""Device-plugin config of GPU nodes that belong to no pool: whole GPUs, MIG off."""

_OPERAND_TOLERATIONS: list[dict[str, str]] = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
]


def _dump(data: Any) -> str:
    text: str = yaml.safe_dump(data, sort_keys=True, default_flow_style=False)
    return text


def device_plugin_config(pool: GpuPoolArgs | None) -> dict[str, Any]:
    """One named device-plugin config (format ``version: v1``) for a pool, or the default one."""
    sharing = pool.sharing if pool is not None else None
    strategy = sharing.strategy if isinstance(sharing, MigSharing) else "none"
    config: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": strategy, "failOnInitError": True}}
    if isinstance(sharing, TimeSlicingSharing):
        config["sharing"] = {
            "timeSlicing": {
                "renameByDefault": sharing.rename_by_default,
                "failRequestsGreaterThanOne": sharing.fail_requests_greater_than_one,
                "resources": [{"name": "nvidia.com/gpu", "replicas": sharing.replicas}],
            }
        }
    return config


def mig_parted_config(pools: list[GpuPoolArgs]) -> dict[str, Any]:
    """The mig-parted file (``version: v1``, ``mig-configs``): MIG off, plus one layout per MIG pool."""
    configs: dict[str, Any] = {MIG_DISABLED: [{"devices": "all", "mig-enabled": False}]}
    for pool in pools:
        if isinstance(pool.sharing, MigSharing):
            configs[pool.mig_config_name] = [
                {
                    "devices": "all",
                    "mig-enabled": True,
                    "mig-devices": dict(sorted(pool.sharing.profiles.items())),
                }
            ]
    return {"version": "v1", "mig-configs": dict(sorted(configs.items()))}


def mig_strategy(pools: list[GpuPoolArgs]) -> str:
    """The cluster-wide MIG strategy: the MIG pools' (checked to agree), else ``none``."""
    strategies = sorted({p.sharing.strategy for p in pools if isinstance(p.sharing, MigSharing)})
    return strategies[0] if strategies else "none"


def _operand_tolerations(pools: list[GpuPoolArgs]) -> list[dict[str, str]]:
    """The operator's node agents must run on every pool node, whatever its taints."""
    result = list(_OPERAND_TOLERATIONS)
    for pool in pools:
        for taint in pool.taints:
            toleration = {"key": taint.key, "operator": "Exists", "effect": taint.effect}
            if toleration not in result:
                result.append(toleration)
    return result


def chart(pools: list[GpuPoolArgs], versions: Versions) -> Chart:
    """The GPU operator release, pointed at modelplane's device-plugin and mig-parted ConfigMaps."""
    tolerations = _operand_tolerations(pools)
    uses_mig = any(isinstance(p.sharing, MigSharing) for p in pools)
    values: dict[str, Any] = {
        "psa": {"enabled": True},
        "daemonsets": {"tolerations": tolerations, "priorityClassName": "system-node-critical"},
        # NFD's master, garbage collector and post-delete prune job set no seccomp profile; Helm
        # merges these maps into the chart's own security contexts (node-feature-discovery
        # 0.19.0 values.yaml master.securityContext, templates/post-delete-job.yaml:74).
        "node-feature-discovery": {
            "worker": {"tolerations": tolerations},
            "master": {
                "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            },
            "gc": {"podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
        },
        "devicePlugin": {
            "config": {
                "create": False,
                "name": DEVICE_PLUGIN_CONFIGMAP,
                "default": DEFAULT_DEVICE_PLUGIN_CONFIG,
            }
        },
        # dcgm-exporter labels each GPU's series with the pod, namespace and container using it
        # (NVIDIA/dcgm-exporter internal/pkg/transformation/const.go podAttribute "pod",
        # namespaceAttribute "namespace"). The operator's ServiceMonitor (chart values.yaml:326-331,
        # rendered by templates/clusterpolicy.yaml:565-566) defaults to honorLabels: false, under
        # which Prometheus renames those to exported_pod and exported_namespace because the
        # target has its own: then a GPU-utilisation query per model (scaling.py) matches nothing.
        # A GPU no pod holds keeps the exporter pod's own namespace (this one). The node's name
        # becomes `node`: DCGM's series name GPUs and nodes, the GPU rules map nodes to pools.
        "dcgmExporter": {
            "serviceMonitor": {
                "enabled": True,
                "interval": DCGM_SCRAPE_INTERVAL,
                "honorLabels": True,
                "relabelings": [
                    {
                        "action": "replace",
                        "sourceLabels": ["__meta_kubernetes_pod_node_name"],
                        "targetLabel": "node",
                    }
                ],
            }
        },
        "mig": {"strategy": mig_strategy(pools)},
        "migManager": {
            "enabled": uses_mig,
            "config": {"create": False, "name": MIG_PARTED_CONFIGMAP, "default": MIG_DISABLED},
        },
    }
    return Chart(
        release="gpu-operator",
        namespace=NAMESPACE,
        repository="https://helm.ngc.nvidia.com/nvidia",
        chart="gpu-operator",
        version=versions.gpu_operator,
        values=values,
        needed_by_groups=("nvidia.com",),
        wave=1,
    )


def _node_pool(pool: GpuPoolArgs, stack: str) -> Obj:
    """A Karpenter NodePool that launches the pool's nodes with its labels, taints and limits."""
    contract = pool.node_contract()
    karpenter = pool.karpenter
    requirements: list[dict[str, Any]] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(karpenter.capacity_types)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if karpenter.instance_types:
        requirements.append(
            {
                "key": "node.kubernetes.io/instance-type",
                "operator": "In",
                "values": list(karpenter.instance_types),
            }
        )
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": contract["labels"]},
            "spec": {
                "nodeClassRef": karpenter.node_class.model_dump(),
                "requirements": requirements,
                "taints": contract["taints"],
                "expireAfter": karpenter.expire_after,
            },
        },
    }
    limit = pool.max_nodes if pool.max_nodes is not None else pool.min_nodes
    if pool.karpenter_static:
        spec["replicas"] = pool.min_nodes
        spec["limits"] = {"nodes": str(limit)}
    else:
        spec["limits"] = {"nvidia.com/gpu": str(limit * pool.gpus_per_node), "nodes": str(limit)}
        spec["disruption"] = {
            "consolidationPolicy": "WhenEmpty",
            "consolidateAfter": karpenter.consolidate_after,
            "budgets": [{"nodes": "1"}],
        }
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": f"modelplane-{pool.name}", "labels": labels(stack, "gpu-pool")},
        "spec": spec,
    }


def _priority_class(pool: GpuPoolArgs, stack: str) -> Obj:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": pool.priority_class_name, "labels": labels(stack, "gpu-pool")},
        "value": pool.priority,
        "globalDefault": False,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": f"Model serving on GPU pool {pool.name} ({pool.product}).",
    }


def objects(pools: list[GpuPoolArgs], *, stack: str) -> list[Obj]:
    """The GPU operator's namespace and configuration, NodePools and PriorityClasses of the pools."""
    if not pools:
        return []
    common = labels(stack, "gpu-pool")
    # The operator's node agents (driver, toolkit, device plugin, MIG manager) need host access,
    # so its namespace is "privileged" by necessity; every other namespace stays "restricted".
    ns_labels = dict(common) | {
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
        "pod-security.kubernetes.io/audit": "privileged",
    }
    device_configs = {DEFAULT_DEVICE_PLUGIN_CONFIG: _dump(device_plugin_config(None))}
    for pool in pools:
        device_configs[pool.device_plugin_config_name] = _dump(device_plugin_config(pool))
    result: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": dict(sorted(ns_labels.items()))},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": DEVICE_PLUGIN_CONFIGMAP, "namespace": NAMESPACE, "labels": common},
            "data": dict(sorted(device_configs.items())),
        },
    ]
    if any(isinstance(p.sharing, MigSharing) for p in pools):
        result.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": MIG_PARTED_CONFIGMAP, "namespace": NAMESPACE, "labels": common},
                "data": {"config.yaml": _dump(mig_parted_config(pools))},
            }
        )
    for pool in pools:
        result.append(_priority_class(pool, stack))
        if pool.provisioner == "karpenter":
            result.append(_node_pool(pool, stack))
    return result


__all__ = [
    "DEVICE_PLUGIN_CONFIGMAP",
    "LABEL_DEVICE_PLUGIN_CONFIG",
    "LABEL_MIG_CONFIG",
    "MIG_PARTED_CONFIGMAP",
    "NAMESPACE",
    "chart",
    "device_plugin_config",
    "mig_parted_config",
    "objects",
]

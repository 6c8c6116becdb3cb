"""GPU pool rules: DCGM's series per pool, and the saturation, idle and XID alerts, run by promtool.

The input series are labelled as Prometheus scrapes them through the GPU operator's ServiceMonitor
with modelplane's relabeling (``node``) and as kube-state-metrics exports node labels; promtool
evaluates the rendered rules on them and checks what is recorded and which alerts fire.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane import gpu_rules
from modelplane.build import build
from modelplane.gpu_pool import GpuPoolArgs
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack import load_stack
from tests.conftest import EXAMPLE_STACKS

POOLS = [
    GpuPoolArgs.model_validate({"name": "h100", "product": "NVIDIA-H100-80GB-HBM3", "gpusPerNode": 2}),
    GpuPoolArgs.model_validate(
        {
            "name": "l4",
            "product": "NVIDIA-L4",
            "gpusPerNode": 1,
            "nodeLabels": {"example.com/pool": "l4-spot"},
        }
    ),
]


def _rule() -> dict[str, Any]:
    (rule,) = gpu_rules.objects(
        POOLS, namespace="monitoring", operator_namespace="gpu-operator", stack="test"
    )
    return rule


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package `prometheus`; `make system-deps`)")
    return promtool


def test_pools_are_told_apart_by_their_node_labels() -> None:
    assert gpu_rules.node_label_keys(POOLS) == ["example.com/pool", "modelplane.dev/gpu-pool"]
    info = gpu_rules.pool_info_rule(POOLS)["expr"]
    assert 'kube_node_labels{label_modelplane_dev_gpu_pool="h100"}' in info
    assert 'kube_node_labels{label_example_com_pool="l4-spot"}' in info


def test_the_rules_do_not_grow_with_the_models(example_stack: ServingPlatformArgs) -> None:
    found = [o for o in build(example_stack).objects if o["metadata"]["name"] == gpu_rules.RULE_NAME]
    assert len(found) == (1 if example_stack.gpu_pools else 0)


def test_promtool_check_rules_passes_with_lint(tmp_path: Path) -> None:
    promtool = _promtool()
    files = []
    for path in EXAMPLE_STACKS:
        for rule in build(load_stack(path)).objects:
            if rule["metadata"]["name"] == gpu_rules.RULE_NAME:
                files.append(tmp_path / f"{path.stem}.yaml")
                files[-1].write_text(yaml.safe_dump(rule["spec"]))
    assert len(files) >= 2  # staging and prod have GPU pools
    result = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


NODES = [
    {"series": 'kube_node_labels{node="gpu-a",label_modelplane_dev_gpu_pool="h100"}', "values": "1x120"},
    {"series": 'kube_node_labels{node="gpu-b",label_example_com_pool="l4-spot"}', "values": "1x120"},
    {"series": 'kube_node_labels{node="cpu-1"}', "values": "1x120"},
]
"""Two GPU nodes, one per pool (the second picked by a custom node label), and a CPU node."""


def _gpu(node: str, gpu: str, pod: str = "") -> str:
    # honorLabels: the holding pod's namespace and pod, else the exporter pod's own.
    where = (
        f'namespace="team",pod="{pod}"'
        if pod
        else f'namespace="gpu-operator",pod="nvidia-dcgm-exporter-{node}"'
    )
    return (
        f'node="{node}",gpu="{gpu}",UUID="GPU-{node}-{gpu}",modelName="NVIDIA H100 80GB HBM3",'
        f'Hostname="{node}",{where}'
    )


def _series(
    util: dict[tuple[str, str, str], str], *, xid: dict[tuple[str, str], str] | None = None
) -> list[dict[str, str]]:
    """DCGM gauges per GPU: utilisation as given, 40 GiB of 80 used, 300 W; XID 0 unless given."""
    series = list(NODES)
    xid = xid or {}
    for (node, gpu, pod), values in util.items():
        series += [
            {"series": f"DCGM_FI_DEV_GPU_UTIL{{{_gpu(node, gpu, pod)}}}", "values": values},
            {"series": f"DCGM_FI_DEV_FB_USED{{{_gpu(node, gpu, pod)}}}", "values": "40960x120"},
            {"series": f"DCGM_FI_DEV_FB_FREE{{{_gpu(node, gpu, pod)}}}", "values": "40960x120"},
            {"series": f"DCGM_FI_DEV_POWER_USAGE{{{_gpu(node, gpu, pod)}}}", "values": "300x120"},
            {
                "series": f"DCGM_FI_DEV_XID_ERRORS{{{_gpu(node, gpu, pod)}}}",
                "values": xid.get((node, gpu), "0x120"),
            },
        ]
    return series


def _promtool_test(
    tmp_path: Path,
    series: list[dict[str, str]],
    alerts: list[dict[str, Any]],
    exprs: list[dict[str, Any]] | None = None,
) -> None:
    promtool = _promtool()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rule()["spec"]))
    test: dict[str, Any] = {"interval": "1m", "input_series": series, "alert_rule_test": alerts}
    if exprs:
        test["promql_expr_test"] = exprs
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [test]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


BUSY = {("gpu-a", "0", "m-1"): "95x120", ("gpu-a", "1", "m-2"): "97x120", ("gpu-b", "0", "m-3"): "50x120"}
"""The h100 pool's two GPUs at 95% and 97%, the l4 pool's one at 50%; each held by a pod."""


def test_pool_figures_are_recorded_per_pool(tmp_path: Path) -> None:
    def at_10m(record: str, h100: float, l4: float) -> dict[str, Any]:
        return {
            "expr": record,
            "eval_time": "10m",
            "exp_samples": [
                {"labels": f'{record}{{pool="h100"}}', "value": h100},
                {"labels": f'{record}{{pool="l4"}}', "value": l4},
            ],
        }

    _promtool_test(
        tmp_path,
        _series(BUSY),
        [],
        [
            at_10m(gpu_rules.UTILIZATION, 96, 50),
            at_10m(gpu_rules.MEMORY_USED, 2 * 40960 * 1048576, 40960 * 1048576),
            at_10m(gpu_rules.MEMORY_USED_RATIO, 0.5, 0.5),
            at_10m(gpu_rules.POWER, 600, 300),
            at_10m(gpu_rules.GPUS, 2, 1),
            at_10m(gpu_rules.RESERVED, 2, 1),
        ],
    )


def test_a_saturated_pool_raises_an_alert_after_its_for(tmp_path: Path) -> None:
    fired = {
        "exp_labels": {"severity": "warning", "pool": "h100"},
        "exp_annotations": {
            "summary": "GPU pool h100 is saturated",
            "description": "The GPUs of pool h100 have been 96% busy on average, above 90%, for 30m."
            " Requests queue behind them: raise the pool's maxNodes, move models to another pool, or"
            " check `modelplane plan` for what the pool is asked to hold.",
        },
    }
    _promtool_test(
        tmp_path,
        _series(BUSY),
        [
            {"eval_time": "20m", "alertname": "GpuPoolSaturated", "exp_alerts": []},
            {"eval_time": "40m", "alertname": "GpuPoolSaturated", "exp_alerts": [fired]},
        ],
    )


def test_a_busy_pool_below_the_threshold_is_not_saturated(tmp_path: Path) -> None:
    util = {key: "80x120" for key in BUSY}
    _promtool_test(
        tmp_path, _series(util), [{"eval_time": "60m", "alertname": "GpuPoolSaturated", "exp_alerts": []}]
    )


def test_a_gpu_held_by_a_pod_and_idle_for_an_hour_raises_an_alert(tmp_path: Path) -> None:
    util = dict(BUSY) | {("gpu-b", "0", "m-3"): "0x120"}
    fired = {
        "exp_labels": {
            "severity": "info",
            "pool": "l4",
            "node": "gpu-b",
            "gpu": "0",
            "UUID": "GPU-gpu-b-0",
            "modelName": "NVIDIA H100 80GB HBM3",
            "Hostname": "gpu-b",
            "namespace": "team",
            "pod": "m-3",
        },
        "exp_annotations": {
            "summary": "GPU 0 (NVIDIA H100 80GB HBM3) on node gpu-b in pool l4 is held by a pod but idle",
            "description": "GPU 0 (NVIDIA H100 80GB HBM3) on node gpu-b in pool l4 is held by pod team/m-3 and"
            " was 0% busy on average over the last 1h. The model may need fewer replicas, scale to zero, or a"
            " shared (time-sliced or MIG) pool.",
        },
    }
    _promtool_test(
        tmp_path,
        _series(util),
        [
            {"eval_time": "90m", "alertname": "GpuReservedIdle", "exp_alerts": [fired]},
        ],
    )


def test_an_idle_gpu_no_pod_holds_is_free_not_idle(tmp_path: Path) -> None:
    util = dict(BUSY) | {("gpu-b", "0", ""): "0x120"}
    del util[("gpu-b", "0", "m-3")]
    _promtool_test(
        tmp_path, _series(util), [{"eval_time": "90m", "alertname": "GpuReservedIdle", "exp_alerts": []}]
    )


def test_a_new_xid_error_raises_a_critical_alert_with_its_code(tmp_path: Path) -> None:
    xid = {("gpu-a", "1"): "0x30 79x89"}
    _promtool_test(
        tmp_path,
        _series(BUSY, xid=xid),
        [
            {"eval_time": "20m", "alertname": "GpuXidError", "exp_alerts": []},
            {
                "eval_time": "40m",
                "alertname": "GpuXidError",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "critical",
                            "pool": "h100",
                            "node": "gpu-a",
                            "gpu": "1",
                            "UUID": "GPU-gpu-a-1",
                            "modelName": "NVIDIA H100 80GB HBM3",
                            "Hostname": "gpu-a",
                            "namespace": "team",
                            "pod": "m-2",
                        },
                        "exp_annotations": {
                            "summary": "GPU 1 (NVIDIA H100 80GB HBM3) on node gpu-a in pool h100 reported XID error 79",
                            "description": "GPU 1 (NVIDIA H100 80GB HBM3) on node gpu-a in pool h100 reported XID"
                            " error 79 in the last 15m (NVIDIA's XID catalogue says what it means; 48, 63, 64, 74,"
                            " 79, 94 and 95 usually need the node drained and the GPU reset or replaced). Cordon"
                            " the node if the error repeats.",
                        },
                    }
                ],
            },
            # The same last XID an hour later is no new error.
            {"eval_time": "90m", "alertname": "GpuXidError", "exp_alerts": []},
        ],
        [
            {
                "expr": gpu_rules.XID_GPUS,
                "eval_time": "40m",
                "exp_samples": [{"labels": f'{gpu_rules.XID_GPUS}{{pool="h100"}}', "value": 1}],
            }
        ],
    )

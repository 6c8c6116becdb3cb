"""Pod Security for everything that runs, judged by Kubernetes' own admission code.

Every pod template the upstream charts render with modelplane's values, and every pod
modelplane authors (runtimes, model pods as KServe merges them, etcd and its snapshots), goes
through ``k8s.io/pod-security-admission``'s evaluator (``tools/psa``) at the stacks' Kubernetes
version. modelplane's own pods must meet "restricted"; a chart's must too unless no chart value
can make it (``security.NOT_RESTRICTED``, each with its reason). The README's Security table is
generated from the same verdicts.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelplane import control_plane
from modelplane.kube import Obj
from tests import pss
from tests.upstream import helm, psa, security
from tests.upstream.conftest import STACK_CASES, stack

Render = Callable[[str, str], helm.Rendered]
KUBERNETES = stack(next(iter(STACK_CASES))).versions.kubernetes


@pytest.fixture(scope="module")
def chart_verdicts(render_release: Render, psa_binary: Path) -> dict[tuple[str, str, str], psa.Verdict]:
    workloads = list(security.chart_workloads(render_release))
    verdicts = psa.evaluate(
        psa_binary,
        [(str(i), psa.pod_metadata(obj), spec) for i, (_, obj, spec) in enumerate(workloads)],
        kubernetes=KUBERNETES,
    )
    return {
        (release.chart, obj["kind"], obj["metadata"]["name"]): verdict
        for (release, obj, _), verdict in zip(workloads, verdicts, strict=True)
    }


def test_every_stack_pins_the_kubernetes_version_the_evaluator_is_checked_at() -> None:
    assert {stack(case).versions.kubernetes for case in STACK_CASES} == {KUBERNETES}


def test_chart_workloads_meet_restricted_unless_no_chart_value_can(
    chart_verdicts: dict[tuple[str, str, str], psa.Verdict],
) -> None:
    failing = {key: v.restricted for key, v in chart_verdicts.items() if not v.allowed("restricted")}
    assert {k: v for k, v in failing.items() if k not in security.NOT_RESTRICTED} == {}
    # An exception for a workload that now meets restricted (or no longer exists) is stale.
    assert sorted(set(security.NOT_RESTRICTED) - set(failing)) == []


def test_chart_workloads_that_miss_baseline_are_the_listed_ones(
    chart_verdicts: dict[tuple[str, str, str], psa.Verdict],
) -> None:
    below_baseline = {key for key, v in chart_verdicts.items() if not v.allowed("baseline")}
    assert below_baseline == {
        ("kube-prometheus-stack", "DaemonSet", "kube-prometheus-stack-prometheus-node-exporter"),
        ("gpu-operator", "DaemonSet", "gpu-operator-node-feature-discovery-worker"),
    }


def test_every_chart_workload_is_checked(chart_verdicts: dict[tuple[str, str, str], psa.Verdict]) -> None:
    kinds = {kind for _, kind, _ in chart_verdicts}
    assert {"Deployment", "DaemonSet", "Job"} <= kinds
    assert len(chart_verdicts) >= 25


@pytest.fixture(scope="module")
def own_verdicts(psa_binary: Path) -> list[tuple[tuple[str, Obj, Obj], psa.Verdict]]:
    pods = list(security.own_pods())
    return list(zip(pods, psa.evaluate(psa_binary, pods, kubernetes=KUBERNETES), strict=True))


def test_modelplane_pods_meet_restricted(
    own_verdicts: list[tuple[tuple[str, Obj, Obj], psa.Verdict]],
) -> None:
    assert [(pod[0], v.restricted) for pod, v in own_verdicts if v.restricted] == []
    components = {
        pod[0].rsplit(" ", 1)[-1] for pod, _ in own_verdicts if pod[0].startswith("InferenceService")
    }
    assert {"predictor", "transformer"} <= components
    kinds = {pod[0].split(" ", 1)[0] for pod, _ in own_verdicts}
    assert {"ClusterServingRuntime", "ServingRuntime", "StatefulSet", "CronJob", "InferenceService"} <= kinds


def _compliant_pod() -> Obj:
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {
                "name": "app",
                "image": "app:1",
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def _set(pod: Obj, path: str, value: Any) -> Obj:
    pod = copy.deepcopy(pod)
    target: Any = pod
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    if value is None:
        del target[last]
    else:
        target[last] = value
    return pod


BREAKS: list[tuple[str, Any, str]] = [
    ("hostNetwork", True, "baseline"),
    ("hostPID", True, "baseline"),
    ("hostIPC", True, "baseline"),
    ("containers.0.securityContext.privileged", True, "baseline"),
    ("containers.0.securityContext.capabilities.add", ["SYS_ADMIN"], "baseline"),
    ("containers.0.securityContext.capabilities.add", ["CHOWN"], "restricted"),
    ("containers.0.securityContext.allowPrivilegeEscalation", None, "restricted"),
    ("containers.0.securityContext.capabilities.drop", ["NET_RAW"], "restricted"),
    ("securityContext.runAsNonRoot", None, "restricted"),
    ("containers.0.securityContext.runAsNonRoot", False, "restricted"),
    ("securityContext.runAsUser", 0, "restricted"),
    ("securityContext.seccompProfile", None, "restricted"),
    ("securityContext.seccompProfile", {"type": "Unconfined"}, "baseline"),
    ("volumes", [{"name": "host", "hostPath": {"path": "/"}}], "baseline"),
    ("volumes", [{"name": "nfs", "nfs": {"server": "x", "path": "/"}}], "restricted"),
    ("containers.0.ports", [{"containerPort": 80, "hostPort": 80}], "baseline"),
    ("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}], "baseline"),
    ("containers.0.securityContext.procMount", "Unmasked", "baseline"),
    ("securityContext.seLinuxOptions", {"type": "spc_t"}, "baseline"),
    ("containers.0.securityContext.windowsOptions", {"hostProcess": True}, "baseline"),
]
"""One change per rule of the Pod Security Standards, and the lowest level it breaks."""


def test_the_evaluator_refuses_each_rule_at_its_level(psa_binary: Path) -> None:
    pods = [("compliant", {}, _compliant_pod())] + [
        (f"{path}={value!r}", {}, _set(_compliant_pod(), path, value)) for path, value, _ in BREAKS
    ]
    verdicts = psa.evaluate(psa_binary, pods, kubernetes=KUBERNETES)
    assert verdicts[0].allowed("baseline") and verdicts[0].allowed("restricted")
    upstream = {v.id: (v.allowed("baseline"), v.allowed("restricted")) for v in verdicts[1:]}
    expected = {f"{path}={value!r}": (level == "restricted", False) for path, value, level in BREAKS}
    assert upstream == expected


def test_restricted_admits_an_image_volume_and_refuses_a_modelcar(psa_binary: Path) -> None:
    # oci+native://: KServe v0.20.0 adds an image volume and a read-only mount (pkg/utils/storage.go:
    # 641-693), which restricted admits (pod-security-admission policy/check_restrictedVolumes.go).
    native = _set(
        _compliant_pod(),
        "volumes",
        [{"name": "model", "image": {"reference": "m:1", "pullPolicy": "IfNotPresent"}}],
    )
    # oci://: a sidecar and an init container with at most runAsUser from uidModelcar
    # (pkg/utils/storage.go:385-441), and a shared process namespace.
    modelcar = copy.deepcopy(_compliant_pod())
    modelcar["shareProcessNamespace"] = True
    modelcar["containers"].append(
        {
            "name": "modelcar",
            "image": "m:1",
            "args": ["sh", "-c", "sleep infinity"],
            "securityContext": {"runAsUser": 1010},
        }
    )
    modelcar["initContainers"] = [{"name": "modelcar-init", "image": "m:1", "args": ["sh", "-c", "true"]}]
    native_verdict, modelcar_verdict = psa.evaluate(
        psa_binary, [("native", {}, native), ("modelcar", {}, modelcar)], kubernetes=KUBERNETES
    )
    assert native_verdict.allowed("restricted")
    assert modelcar_verdict.allowed("baseline")
    assert [v.split(":", 1)[0] for v in modelcar_verdict.restricted] == [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
    ]


def test_model_pods_carry_the_storage_initializer_kserve_injects(
    own_verdicts: list[tuple[tuple[str, Obj, Obj], psa.Verdict]], psa_binary: Path
) -> None:
    # Prod's image-tagger reads a storage-config entry, whose source URI only the hardened
    # ClusterStorageContainer serves (control_plane.STORAGE_SPEC_PREFIX); judged above with it.
    (tagger,) = [pod for pod, _ in own_verdicts if pod[0].endswith("/image-tagger predictor")]
    (initializer,) = tagger[2]["initContainers"]
    assert initializer["name"] == "storage-initializer"
    assert initializer["args"][0].startswith(control_plane.STORAGE_SPEC_PREFIX)
    assert initializer["securityContext"]["allowPrivilegeEscalation"] is False
    # Without that prefix KServe injects its bare container, which restricted refuses (the real
    # control plane says the same: tests/cluster/test_platform.py).
    bare = copy.deepcopy(tagger[2])
    bare["initContainers"] = [pss.storage_initializer(initializer["args"][0], [])]
    (verdict,) = psa.evaluate(psa_binary, [("bare", {}, bare)], kubernetes=KUBERNETES)
    assert [v.split(":", 1)[0] for v in verdict.restricted] == [
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
    ]


def test_the_evaluator_refuses_a_field_pods_do_not_have(psa_binary: Path) -> None:
    result = subprocess.run(
        [str(psa_binary), "-version", f"v{KUBERNETES}"],
        input=json.dumps([{"id": "typo", "spec": {"containers": [], "hostNetwrok": True}}]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert 'unknown field "hostNetwrok"' in result.stderr


def test_the_readme_security_table_is_current(
    render_release: Render, psa_binary: Path, render_kustomize: security.RenderKustomize
) -> None:
    current = security.readme_table()
    assert current is not None, f"README.md has no table between {security.START!r} and {security.END!r}"
    assert current == security.table(security.rows(render_release, psa_binary, render_kustomize)), (
        "README.md's Pod Security table is out of date; run: python -m tests.upstream.security"
    )

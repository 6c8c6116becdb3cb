"""A multi-node model's worker pods land where its head does, hardened the same way.

KServe builds the worker pods from the runtime's worker spec and the predictor's ``workerSpec``
alone (v0.20.0 components/predictor.go:593-603); ``tests.pss.worker_pod`` builds them the same
way, and Pod Security of both pods is judged by upstream's evaluator in ``tests/upstream``.
"""

from __future__ import annotations

from typing import Any

from modelplane.build import build
from modelplane.stack import load_stack
from tests import pss
from tests.conftest import STACKS

PLACEMENT = ("nodeSelector", "tolerations", "priorityClassName")


def _llama() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = build(load_stack(STACKS / "prod.yaml")).objects
    runtimes = [o for o in objects if o["kind"] in ("ServingRuntime", "ClusterServingRuntime")]
    isvc = next(
        o for o in objects if o["kind"] == "InferenceService" and o["metadata"]["name"] == "llama-70b"
    )
    return isvc, runtimes


def test_worker_pods_run_on_the_heads_gpu_pool() -> None:
    isvc, runtimes = _llama()
    pods = pss.inference_service_pods(isvc, runtimes)
    head, worker = pods["predictor"], pods["worker"]
    assert {k: worker.get(k) for k in PLACEMENT} == {k: head.get(k) for k in PLACEMENT}
    assert worker["nodeSelector"] == {"modelplane.dev/gpu-pool": "h100"}


def test_worker_pods_get_the_pod_security_context_and_shared_memory_of_the_head() -> None:
    isvc, runtimes = _llama()
    pods = pss.inference_service_pods(isvc, runtimes)
    head, worker = pods["predictor"], pods["worker"]
    assert worker["securityContext"] == head["securityContext"]
    devshm = next(v for v in worker["volumes"] if v["name"] == "devshm")
    assert devshm == next(v for v in head["volumes"] if v["name"] == "devshm")
    assert devshm["emptyDir"]["sizeLimit"] == "16Gi"


def test_worker_containers_carry_the_workers_environment_and_gpus() -> None:
    isvc, runtimes = _llama()
    (container,) = pss.inference_service_pods(isvc, runtimes)["worker"]["containers"]
    assert container["name"] == "worker-container"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    env = {e["name"]: e for e in container["env"]}
    assert env["NCCL_DEBUG"] == {"name": "NCCL_DEBUG", "value": "WARN"}
    assert "POD_NAMESPACE" in env  # the runtime's own, kept by the merge

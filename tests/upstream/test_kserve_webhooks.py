"""Every custom resource modelplane renders is admitted by KServe's own webhooks.

The InferenceServices, InferenceGraphs, LLMInferenceServices and serving runtimes of every
example stack (and of its variants) go through KServe v0.20.0's validating webhooks
(``tools/kserve-webhook``), the code a cluster runs on create, so a setting KServe refuses for a
mode, a runtime priority clash or a field KServe's types do not have fails here.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.upstream import kserve
from tests.upstream.conftest import STACK_CASES, platform

KINDS = {
    "InferenceService",
    "InferenceGraph",
    "LLMInferenceService",
    "ServingRuntime",
    "ClusterServingRuntime",
}


@pytest.mark.parametrize("case", sorted(STACK_CASES))
def test_kserve_admits_every_object_of_the_stack(case: str, kserve_webhook: Path) -> None:
    objects = [o for o in platform(case).objects if o["kind"] in KINDS]
    verdicts = kserve.admit(kserve_webhook, objects)
    assert [str(v) for v in verdicts if not v.allowed] == []
    assert [v.kind for v in verdicts if not v.checked] == []
    assert [f"{v}: {v.warnings}" for v in verdicts if v.warnings] == []


def test_the_webhook_refuses_what_kserve_refuses(kserve_webhook: Path) -> None:
    # The check must be able to fail: a Knative-mode predictor with a deployment strategy is
    # refused by KServe (inference_service_validation.go:645-648), and a field KServe's types
    # do not have is refused by the strict decoding.
    isvc = next(o for o in platform("dev").objects if o["kind"] == "InferenceService")
    strategy = copy.deepcopy(isvc)
    strategy["spec"]["predictor"]["deploymentStrategy"] = {"type": "Recreate"}
    unknown = copy.deepcopy(isvc)
    unknown["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    messages = kserve.refused(kserve_webhook, [strategy, unknown])
    assert len(messages) == 2
    assert "deploymentStrategy is only supported for raw deployment mode" in messages[0]
    assert 'unknown field "spec.predictor.model.storageURI"' in messages[1]

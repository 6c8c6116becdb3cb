"""The vLLM series modelplane's queries read are the ones KServe's own LLM tooling reads.

Scaling intents and rollout gates on LLM services and vLLM-runtime models query vLLM's own
Prometheus series. vLLM itself cannot run here (it needs its CUDA or CPU build and a model), so
the names are checked against what the pinned KServe release reads from the same servers: the
Grafana dashboards of its llm-d sample (docs/samples/llmisvc/e2e-gpt-oss/grafana/) and its
LLMInferenceService end-to-end fixtures. The latency histograms are not among them; their names
are cited from vLLM's source (vllm/v1/metrics/loggers.py, PrometheusStatLogger:
``vllm:time_to_first_token_seconds``, ``vllm:e2e_request_latency_seconds``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelplane.promql import llm_queries, llm_selector
from tests.upstream import samples

SERIES = re.compile(r"vllm:[a-z_0-9]+")
HISTOGRAMS_FROM_VLLM_SOURCE = frozenset(
    {"vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket"}
)
"""Series no KServe file reads; vllm/v1/metrics/loggers.py defines them (histograms get ``_bucket``)."""


def _kserve_reads() -> set[str]:
    try:
        module = samples.kserve_module()
    except samples.ModuleMissingError as missing:
        pytest.skip(f"KServe's Go module is needed to read its LLM dashboards: {missing}")
    files = [
        *sorted((module / "docs" / "samples" / "llmisvc" / "e2e-gpt-oss" / "grafana").glob("*.json")),
        module / "test" / "e2e" / "llmisvc" / "fixtures.py",
    ]
    found: set[str] = set()
    for path in files:
        found |= set(SERIES.findall(Path(path).read_text(encoding="utf-8")))
    return found


def test_every_vllm_series_modelplane_queries_is_one_kserve_reads_or_vllm_defines() -> None:
    ours = {
        name
        for query in llm_queries(llm_selector("team", "chat"), "1m").values()
        for name in SERIES.findall(query)
    }
    assert ours - HISTOGRAMS_FROM_VLLM_SOURCE <= _kserve_reads()
    # The scaling metrics are all read by KServe's own tooling, not only cited.
    assert {
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:generation_tokens_total",
        "vllm:kv_cache_usage_perc",
    } <= ours & _kserve_reads()


def test_the_check_would_catch_a_renamed_series() -> None:
    # vLLM 0.9 renamed gpu_cache_usage_perc to kv_cache_usage_perc; the old name is not read.
    assert "vllm:gpu_cache_usage_perc" not in _kserve_reads()

"""The catalog's real model servers answer the V2 protocol and export what the gates query.

Each server runs with exactly the command, args, env and ports of the ServingRuntime and
InferenceService modelplane renders (see ``harness.py``), serving a model the test trained.
"""

from __future__ import annotations

import math
import re
import urllib.request

import numpy as np
import pytest

from modelplane.promql import model_queries
from modelplane.scaling import preset_metrics, preset_query
from tests.servers.conftest import Served
from tests.servers.harness import get_json


def _rest_checks(served: Served) -> None:
    server, name = served.server, served.name
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{name}/ready"):
        status, body = get_json(server.url(path))
        assert status == 200, f"GET {path}: {status} {body}"
    status, meta = get_json(server.url(f"/v2/models/{name}"))
    assert status == 200 and meta["name"] == name, meta
    status, answer = get_json(server.url(f"/v2/models/{name}/infer"), body=served.sample["request"])
    assert status == 200, answer
    assert answer["model_name"] == name
    output = answer["outputs"][0]
    assert output["shape"][0] == 4
    assert math.prod(output["shape"]) == len(output["data"])
    assert output["data"] == pytest.approx(served.sample["expected"], rel=1e-4, abs=1e-5)


def test_mlserver_serves_v2_over_rest(mlserver: Served) -> None:
    _rest_checks(mlserver)


def test_kserve_server_serves_v2_over_rest(kserve_server: Served) -> None:
    _rest_checks(kserve_server)


def test_a_wrong_model_name_is_not_ready(mlserver: Served) -> None:
    status, _ = get_json(mlserver.server.url("/v2/models/no-such-model/ready"))
    assert status in (400, 404)


def test_mlserver_serves_v2_over_grpc_on_the_h2c_port(mlserver: Served) -> None:
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")
    assert "grpc-v2" in mlserver.runtime.protocols
    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{mlserver.grpc_port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(mlserver.name)
        meta = client.get_model_metadata(mlserver.name, as_json=True)
        assert meta["name"] == mlserver.name
        tensor = mlserver.sample["request"]["inputs"][0]
        item = grpcclient.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        item.set_data_from_numpy(np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"]))
        result = client.infer(mlserver.name, [item])
        output = result.get_response(as_json=True)["outputs"][0]
        values = result.as_numpy(output["name"]).flatten().tolist()
        assert values == pytest.approx(mlserver.sample["expected"], rel=1e-4, abs=1e-5)
    finally:
        client.close()


# --- metrics --------------------------------------------------------------------------------

_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_QUERY_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _exposition(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8")
    series = []
    for line in text.splitlines():
        match = _SERIES.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match.group(2) or ""))
            series.append((match.group(1), labels, float(match.group(3))))
    return series


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, value in matchers:
        have = labels.get(label, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


_SCRAPE_LABELS = frozenset({"namespace", "pod"})
"""Labels the scrape adds (the PodMonitor), not the server: a query's matchers on them are not checked here."""


def _queried_series(runtime: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every metric (and the label matchers of the runtime itself) the Standard-mode gates and KEDA query.

    GPU utilisation comes from dcgm-exporter (or Triton), not from these servers.
    """
    queries = [q for q in model_queries("standard", runtime, [], "5m").values() if isinstance(q, str)]
    for metric in preset_metrics(runtime):
        template = preset_query(runtime, metric)
        if template is not None and metric != "gpu-utilization":
            queries.append(template.format(namespace="ns", pods="p"))
    wanted = []
    for query in queries:
        for metric, matchers in _QUERY_METRIC.findall(query):
            own = [m for m in _MATCHER.findall(matchers) if m[0] not in _SCRAPE_LABELS]
            wanted.append((metric, own))
    return wanted


def _metrics_checks(served: Served) -> None:
    # Traffic first, so the counters and histograms the gates read have samples: good requests,
    # and one the model cannot take (three features where it was trained on four).
    infer = served.server.url(f"/v2/models/{served.name}/infer")
    for _ in range(3):
        status, _ = get_json(infer, body=served.sample["request"])
        assert status == 200
    bad = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [0.1, 0.2, 0.3]}]}
    status, _ = get_json(infer, body=bad)
    assert status >= 400
    rendered_annotations = served.container.runtime
    url = f"http://127.0.0.1:{served.server.metrics}{rendered_annotations.metrics_path}"
    series = _exposition(url)
    wanted = _queried_series(served.runtime.name)
    assert wanted, f"no Standard-mode gate is measurable for {served.runtime.name}"
    missing = []
    for metric, matchers in wanted:
        found = [v for name, labels, v in series if name == metric and _matches(labels, matchers)]
        if not any(v > 0 for v in found):
            names = sorted({n for n, _, _ in series if n.split("_")[0] == metric.split("_")[0]})
            missing.append(f"{metric}{matchers}: not served with a sample (similar: {names[:12]})")
    assert not missing, "\n".join(missing)


def test_mlserver_metrics_endpoint_serves_what_the_gates_query(mlserver: Served) -> None:
    _metrics_checks(mlserver)


def test_mlserver_serves_metrics_on_its_metrics_port_only(mlserver: Served) -> None:
    # Upstream's kserve-mlserver annotates prometheus.kserve.io/port 8080, the HTTP port; MLServer
    # 1.7.1 serves /metrics on MLSERVER_METRICS_PORT (8082) alone, which the catalog scrapes.
    status, _ = get_json(mlserver.server.url("/metrics"))
    assert status == 404
    assert mlserver.runtime.metrics_port == 8082
    assert mlserver.container.env["MLSERVER_METRICS_PORT"] == "8082"


def test_kserve_metrics_endpoint_serves_what_the_gates_query(kserve_server: Served) -> None:
    _metrics_checks(kserve_server)

"""The ports modelplane declares are the ports KServe's own model server binds.

Servers built on KServe's Python SDK take their ports from ``kserve.model_server.parser``
(``--http_port``, ``--grpc_port``; kserve 0.20.0 kserve/model_server.py:52-63, read at
model_server.py:222-223). This parses the arguments each container gets, exactly as KServe
runs it, with that real parser from the ``kserve`` venv and its port defaults removed, so a port
counts only when the arguments pass it (as upstream's runtimes do): the catalog runtimes built on the SDK
(sklearn, xgboost, lightgbm, huggingface, whose parser has it as parent), and a
transformer, after the controller has appended its own defaults.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from modelplane.model import ModelArgs
from modelplane.model import objects as model_objects
from modelplane.runtimes import catalog_dir, load_catalog, render_runtime
from tests.servers.harness import fill_placeholders, server_python
from tests.test_model import kserve_transformer_args

CATALOG = load_catalog(catalog_dir())
SDK_RUNTIMES = {
    "sklearn": ("sklearn", "1"),
    "xgboost": ("xgboost", "2"),
    "lightgbm": ("lightgbm", "4"),
    "huggingface": ("huggingface", "1"),
}
# ``custom`` is left out on purpose: its image need not be built on the SDK, so the runtime
# passes no flags (runtimes/custom.yaml) and the SDK's own defaults are its declared ports.

_PARSE = (
    "import json, sys, kserve.model_server as m; "
    # No port from the parser's defaults (8080, 8081): a port counts only when the args pass it.
    "m.parser.set_defaults(http_port=None, grpc_port=None); "
    "a, _ = m.parser.parse_known_args(sys.argv[1:]); "
    "print(json.dumps({'http_port': a.http_port, 'grpc_port': a.grpc_port}))"
)


def _parsed(args: list[str]) -> dict[str, int | None]:
    python = server_python("kserve") / "bin" / "python"
    result = subprocess.run(
        [str(python), "-c", _PARSE, *args], capture_output=True, text=True, check=True, timeout=120
    )
    parsed: dict[str, int | None] = json.loads(result.stdout)
    return parsed


def _model(runtime: str, **extra: Any) -> ModelArgs:
    fmt = SDK_RUNTIMES[runtime]
    data: dict[str, Any] = {
        "name": "risk",
        "tenant": "servers",
        "runtime": runtime,
        "format": {"name": fmt[0], "version": fmt[1]},
        "storage": {"uri": "s3://models/risk"},
        "version": "v1",
        **extra,
    }
    if runtime == "custom":
        data["image"] = "ghcr.io/example/risk-server:1.0.0"
    return ModelArgs.model_validate(data)


@pytest.mark.parametrize("runtime", sorted(SDK_RUNTIMES))
def test_the_runtime_passes_the_ports_it_declares(runtime: str) -> None:
    spec = CATALOG[runtime]
    model = _model(runtime)
    rendered = render_runtime(spec, name=f"modelplane-{runtime}", labels={}, image=model.image)
    isvc = next(
        o
        for o in model_objects(model, stack="t", namespace="servers", mode="standard", runtime=spec)
        if o["kind"] == "InferenceService"
    )
    # The model container: the runtime's args, then the InferenceService's (MergeRuntimeContainers).
    args = [
        fill_placeholders(a, isvc["metadata"])
        for a in rendered["spec"]["containers"][0]["args"]
        + isvc["spec"]["predictor"]["model"].get("args", [])
    ]
    assert _parsed(args) == {"http_port": spec.http_port, "grpc_port": spec.grpc_port}


@pytest.mark.parametrize("port", [8080, 9000])
def test_a_transformer_binds_the_port_its_container_declares(port: int) -> None:
    model = _model("sklearn", transformer={"image": "ghcr.io/example/tok:1.0.0", "port": port})
    isvc = next(
        o
        for o in model_objects(
            model, stack="t", namespace="servers", mode="standard", runtime=CATALOG["sklearn"]
        )
        if o["kind"] == "InferenceService"
    )
    container = isvc["spec"]["transformer"]["containers"][0]
    args = kserve_transformer_args(container, isvc="risk", namespace="servers")
    assert _parsed(args)["http_port"] == container["ports"][0]["containerPort"] == port

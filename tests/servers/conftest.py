"""Fixtures that start the catalog's real model servers (see ``harness.py``)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelplane.model import ModelArgs
from modelplane.runtimes import RuntimeSpec
from tests.servers.harness import HERE, MODEL_DIR, Container, Running, predictor_container, run, server_python


@dataclass
class Served:
    """A real server serving one model, built from modelplane's render of it."""

    name: str
    runtime: RuntimeSpec
    container: Container
    server: Running
    sample: dict[str, Any]
    """The V2 request and the predictions the framework made for it (``train.py``)."""

    @property
    def grpc_port(self) -> int:
        """The loopback port behind the model's h2c container port (its gRPC endpoint)."""
        ports = self.container.isvc["spec"]["predictor"]["model"]["ports"]
        assert [p["name"] for p in ports] == ["h2c"]
        return self.server.ports[ports[0]["containerPort"]]


def _model(name: str, runtime: str, fmt: str, version: str, transport: str) -> ModelArgs:
    return ModelArgs.model_validate(
        {
            "name": name,
            "tenant": "servers",
            "runtime": runtime,
            "format": {"name": fmt, "version": version},
            "storage": {"uri": f"s3://models/{name}"},
            "version": "v1",
            "protocol": {"version": "v2", "transport": transport},
        }
    )


def _train(python: Path, fmt: str, model_dir: Path) -> dict[str, Any]:
    subprocess.run([str(python), str(HERE / "train.py"), fmt, str(model_dir)], check=True, timeout=300)
    sample: dict[str, Any] = json.loads((model_dir / "sample.json").read_text(encoding="utf-8"))
    return sample


MLSERVER_FORMATS = [("sklearn", "1"), ("xgboost", "2"), ("lightgbm", "4")]
KSERVE_RUNTIMES = ["sklearn", "xgboost", "lightgbm"]


@pytest.fixture(scope="session", params=MLSERVER_FORMATS, ids=[f for f, _ in MLSERVER_FORMATS])
def mlserver(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """MLServer 1.7.1 serving a model of one format, as the `mlserver` runtime renders it."""
    fmt, version = request.param
    venv = server_python("mlserver")
    work = tmp_path_factory.mktemp(f"mlserver-{fmt}")
    model_dir = work / "models"
    sample = _train(venv / "bin" / "python", fmt, model_dir)
    name = f"fraud-{fmt}"
    container = predictor_container(_model(name, "mlserver", fmt, version, "grpc"))
    # The image's command: `mlserver start $MLSERVER_MODELS_DIR`, with MLSERVER_MODELS_DIR=/mnt/models
    # (SeldonIO/MLServer 1.7.1 Dockerfile, ENV at line 43 and CMD at lines 132-135).
    entry = [str(venv / "bin" / "mlserver"), "start", container.env.get("MLSERVER_MODELS_DIR", MODEL_DIR)]
    with run(entry, container, model_dir, work, ready_path=f"/v2/models/{name}/ready") as server:
        yield Served(name, container.runtime, container, server, sample)


@pytest.fixture(scope="session", params=KSERVE_RUNTIMES)
def kserve_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """KServe's model server (kserve 0.20.0) with the exact args of a KServe runtime."""
    runtime: str = request.param
    venv = server_python("kserve")
    work = tmp_path_factory.mktemp(f"kserve-{runtime}")
    model_dir = work / "models"
    sample = _train(venv / "bin" / "python", "linear", model_dir)
    name = f"risk-{runtime}"
    fmt = {"sklearn": ("sklearn", "1"), "xgboost": ("xgboost", "2"), "lightgbm": ("lightgbm", "4")}[runtime]
    container = predictor_container(_model(name, runtime, *fmt, "http"))
    # Stands in for the image's `python -m <server>` (python/sklearn.Dockerfile:68 at v0.20.0).
    entry = [str(venv / "bin" / "python"), str(HERE / "kserve_custom_server.py")]
    with run(entry, container, model_dir, work, ready_path=f"/v2/models/{name}/ready") as server:
        yield Served(name, container.runtime, container, server, sample)

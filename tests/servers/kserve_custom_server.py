"""A model server built on the KServe SDK, as a ``custom`` image (or KServe's own servers) is.

KServe's sklearnserver, xgbserver and lgbserver are published only inside KServe's images, not
on PyPI; each is ``python -m <server>`` over the ``kserve`` package: the same argument parser
(``parents=[kserve.model_server.parser]`` plus ``--model_dir``), the same ``ModelServer`` with
its REST and gRPC V2 endpoints and ``/metrics``. This stands in for that entrypoint with a model
of its own (linear weights from ``model.json``), so the tests run the real ``kserve`` server with
the runtime's exact arguments.
"""

from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

import kserve
import numpy as np
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse


class LinearModel(kserve.Model):  # type: ignore[misc]
    """Predicts ``rows @ weights``."""

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.weights: np.ndarray | None = None

    def load(self) -> bool:
        data = json.loads((self.model_dir / "model.json").read_text(encoding="utf-8"))
        self.weights = np.asarray(data["weights"], dtype=np.float32)
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> Any:
        assert self.weights is not None
        rows = payload.inputs[0].as_numpy()
        result = (rows @ self.weights).astype(np.float32)
        output = InferOutput(name="output-0", shape=list(result.shape), datatype="FP32")
        output.set_data_from_numpy(result, binary_data=False)
        return InferResponse(
            model_name=self.name, infer_outputs=[output], response_id=payload.id or str(uuid.uuid4())
        )


def loopback_only() -> None:
    """Bind 127.0.0.1 only, as every server in the tests does.

    KServe hard-codes its listeners (kserve 0.20.0 protocol/rest/server.py:94 ``host="0.0.0.0"``,
    protocol/grpc/server.py:68 ``[::]:<port>``); only the address changes here, not the ports.
    """
    import grpc.aio._server  # noqa: PLC0415 (runs inside the server venv)
    import uvicorn  # noqa: PLC0415 (runs inside the server venv)

    config_init = uvicorn.Config.__init__

    def config(self: Any, *args: Any, **kwargs: Any) -> None:
        config_init(self, *args, **(kwargs | {"host": "127.0.0.1"}))

    add_port = grpc.aio._server.Server.add_insecure_port

    def add_insecure_port(self: Any, address: str) -> int:
        return add_port(self, address.replace("[::]", "127.0.0.1"))

    uvicorn.Config.__init__ = config  # type: ignore[method-assign]
    grpc.aio._server.Server.add_insecure_port = add_insecure_port  # type: ignore[method-assign]


def main() -> None:
    loopback_only()
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True, help="directory holding model.json")
    args, _ = parser.parse_known_args()
    model = LinearModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()

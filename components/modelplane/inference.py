"""The Open Inference Protocol (V2) request a model can carry as its sample.

A stack may give each model a sample inference request (``models[].sampleRequest``); ``modelplane
probe`` and a rollout policy's probe send it to the model. The schema is the V2 JSON body of
``POST /v2/models/{name}/infer`` (kserve/open-inference-protocol, ``rest_predict_v2``), checked
before anything is sent: every tensor's data must fill its shape.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, model_validator

from modelplane.base import StrictModel

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
"""The tensor datatypes of the V2 protocol."""


class TensorArgs(StrictModel):
    """One input tensor of a sample request, in the V2 JSON form."""

    name: str = Field(min_length=1, description="Input name as the model's metadata lists it.")
    shape: list[int] = Field(min_length=1, description="Tensor shape, e.g. `[1, 4]`.")
    datatype: Datatype = Field(description="V2 datatype (`FP32`, `INT64`, `BYTES`, ...).")
    data: list[Any] = Field(description="Values in row-major order (nested lists are flattened).")
    parameters: dict[str, Any] | None = Field(
        default=None, description="V2 tensor parameters, sent as given."
    )

    @model_validator(mode="after")
    def _size_matches_shape(self) -> TensorArgs:
        if any(d < 0 for d in self.shape):
            raise ValueError(f"input {self.name!r}: shape {self.shape} has a negative dimension")
        wanted = math.prod(self.shape)
        have = len(flatten(self.data))
        if wanted != have:
            raise ValueError(
                f"input {self.name!r}: shape {self.shape} holds {wanted} values, data has {have}"
            )
        return self


class RequestedOutput(StrictModel):
    """An output a sample request asks for."""

    name: str = Field(min_length=1, description="Output name as the model's metadata lists it.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="V2 output parameters, sent as given."
    )


class SampleRequest(StrictModel):
    """A V2 inference request a probe sends: the body of ``POST /v2/models/{name}/infer``."""

    id: str | None = Field(default=None, description="Request id, echoed by the server.")
    parameters: dict[str, Any] | None = Field(
        default=None, description="V2 request parameters, sent as given."
    )
    inputs: list[TensorArgs] = Field(min_length=1, description="Input tensors.")
    outputs: list[RequestedOutput] = Field(
        default_factory=list, description="Outputs to ask for. Default: every output the model has."
    )

    @property
    def output_names(self) -> list[str]:
        """Names of the outputs asked for."""
        return [o.name for o in self.outputs]

    def body(self) -> dict[str, Any]:
        """The REST request body."""
        body: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        if not self.outputs:
            body.pop("outputs")
        return body


def flatten(data: list[Any]) -> list[Any]:
    """Nested lists of tensor values as one flat list, in row-major order."""
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(flatten(item))
        else:
            flat.append(item)
    return flat

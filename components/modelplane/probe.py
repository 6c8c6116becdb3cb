"""``modelplane probe``: the Open Inference Protocol (V2) checks against a deployed model.

A rollout gate on Prometheus judges a candidate by the traffic it served; a probe asks the
candidate itself, before it gets any traffic, whether it answers at all: server live, server
ready, model ready, model metadata, and one inference on a sample request. The same checks run
as ``modelplane probe URL`` and, when a rollout policy sets ``probe``, before each traffic step
of ``modelplane rollout advance`` (a failed probe holds the rollout).

The URL's scheme picks the transport: ``http://`` and ``https://`` use REST (the standard
library; nothing to install), ``grpc://`` and ``grpcs://`` use the V2 gRPC service through
``tritonclient``, an optional extra (``pip install 'modelplane[grpc]'``).

Paths and messages are the V2 protocol's (kserve/open-inference-protocol, ``rest_predict_v2``
and ``grpc_predict_v2.proto``): ``GET /v2/health/live``, ``GET /v2/health/ready``,
``GET /v2/models/{name}[/versions/{v}]/ready``, ``GET /v2/models/{name}[/versions/{v}]``,
``POST /v2/models/{name}[/versions/{v}]/infer``; ``ServerLive``, ``ServerReady``,
``ModelReady``, ``ModelMetadata``, ``ModelInfer``.
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from modelplane.errors import PlatformError
from modelplane.inference import SampleRequest, flatten
from modelplane.stack import load_stack

Status = Literal["pass", "fail", "skip"]

GRPC_EXTRA_HINT = "gRPC probes need tritonclient: pip install 'modelplane[grpc]'"


class ProbeError(PlatformError):
    """A probe could not be set up (bad URL, bad sample request, missing gRPC client)."""


@dataclass(frozen=True)
class Check:
    """One V2 check and what it found."""

    name: str
    status: Status
    detail: str
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "elapsedMs": round(self.elapsed_ms, 1),
        }


@dataclass(frozen=True)
class ProbeReport:
    """Every check of one probe, in the order they ran."""

    url: str
    model: str
    version: str | None
    transport: Literal["rest", "grpc"]
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Whether no check failed (skipped checks do not fail a probe)."""
        return all(c.status != "fail" for c in self.checks)

    def summary(self) -> str:
        """One line: healthy or which checks failed."""
        failed = [c.name for c in self.checks if c.status == "fail"]
        if failed:
            return f"failing: {', '.join(failed)}"
        return "healthy"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``modelplane probe --output json``)."""
        return {
            "url": self.url,
            "model": self.model,
            "version": self.version,
            "transport": self.transport,
            "healthy": self.healthy,
            "checks": [c.as_dict() for c in self.checks],
        }

    def text(self) -> str:
        """The terminal form: one line per check, then the verdict."""
        target = self.model + (f" version {self.version}" if self.version else "")
        lines = [f"probe {target} at {self.url} ({self.transport})"]
        for check in self.checks:
            lines.append(f"  {check.status:<4} {check.name:<14} {check.detail}")
        lines.append(f"{self.model}: {self.summary()}")
        return "\n".join(lines)


def transport_of(url: str) -> Literal["rest", "grpc"]:
    """REST for http(s)://, gRPC for grpc(s)://.

    Raises:
        ProbeError: Any other URL.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme in ("http", "https"):
        return "rest"
    if scheme in ("grpc", "grpcs"):
        return "grpc"
    raise ProbeError(f"url: {url!r} must start with http://, https://, grpc:// or grpcs://")


def probe(
    url: str,
    model: str,
    *,
    version: str | None = None,
    sample: SampleRequest | None = None,
    timeout: float = 10.0,
) -> ProbeReport:
    """Run the V2 checks against a model server (or its gateway) at ``url``.

    Raises:
        ProbeError: The URL is not one a probe can use, or gRPC is asked for without tritonclient.
    """
    transport = transport_of(url)
    if not urllib.parse.urlsplit(url).hostname:
        raise ProbeError(f"url: {url!r} has no host")
    if transport == "rest":
        checks = _RestProbe(url, model, version, timeout).run(sample)
    else:
        checks = _GrpcProbe(url, model, version, timeout).run(sample)
    return ProbeReport(url=url, model=model, version=version, transport=transport, checks=checks)


def _timed(name: str, func: Any) -> Check:
    started = time.perf_counter()
    try:
        status, detail = func()
    except _CheckFailedError as err:
        status, detail = "fail", str(err)
    return Check(name, status, detail, (time.perf_counter() - started) * 1000)


class _CheckFailedError(Exception):
    """A check's failure, with the reason as its message."""


def _check_outputs(outputs: Any, sample: SampleRequest) -> str:
    """Validate the ``outputs`` of an inference response; a description of them when valid."""
    if not isinstance(outputs, list) or not outputs:
        raise _CheckFailedError("the response has no outputs")
    described = []
    for output in outputs:
        if not isinstance(output, dict) or not {"name", "shape", "datatype"} <= set(output):
            raise _CheckFailedError(f"output is missing name, shape or datatype: {str(output)[:200]}")
        if "data" in output:
            have = len(flatten(output["data"]))
            wanted = math.prod(output["shape"])
            if have != wanted:
                raise _CheckFailedError(
                    f"output {output['name']!r}: shape {output['shape']} holds {wanted} values, data has {have}"
                )
        described.append(f"{output['name']} {output['datatype']}{output['shape']}")
    if sample.output_names:
        missing = sorted(set(sample.output_names) - {o["name"] for o in outputs})
        if missing:
            raise _CheckFailedError(f"outputs asked for but not returned: {', '.join(missing)}")
    return "outputs " + ", ".join(described)


class _RestProbe:
    def __init__(self, url: str, model: str, version: str | None, timeout: float) -> None:
        self.base = url.rstrip("/")
        self.model_path = "/v2/models/" + urllib.parse.quote(model, safe="")
        if version:
            self.model_path += "/versions/" + urllib.parse.quote(version, safe="")
        self.model = model
        self.timeout = timeout

    def _call(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise _CheckFailedError(f"cannot reach {self.base}: {getattr(err, 'reason', err)}") from None
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", errors="replace")[:200]

    def _expect_200(self, path: str) -> tuple[Status, str]:
        status, body = self._call(path)
        if status != 200:
            raise _CheckFailedError(f"GET {path}: HTTP {status} {_brief(body)}")
        return "pass", f"GET {path}: 200"

    def _metadata(self) -> tuple[Status, str]:
        status, body = self._call(self.model_path)
        if status != 200:
            raise _CheckFailedError(f"GET {self.model_path}: HTTP {status} {_brief(body)}")
        if not isinstance(body, dict) or body.get("name") != self.model:
            raise _CheckFailedError(
                f"GET {self.model_path}: metadata names {_brief(body)}, not {self.model!r}"
            )
        detail = f"name {body['name']}"
        if body.get("platform"):
            detail += f", platform {body['platform']}"
        if isinstance(body.get("inputs"), list):
            detail += f", {len(body['inputs'])} input(s)"
        return "pass", detail

    def _infer(self, sample: SampleRequest | None) -> tuple[Status, str]:
        if sample is None:
            return "skip", "no sample request (set the model's sampleRequest or pass --request)"
        path = self.model_path + "/infer"
        status, body = self._call(path, sample.body())
        if status != 200:
            raise _CheckFailedError(f"POST {path}: HTTP {status} {_brief(body)}")
        if not isinstance(body, dict):
            raise _CheckFailedError(f"POST {path}: the answer is not a V2 response: {_brief(body)}")
        return "pass", f"POST {path}: 200, " + _check_outputs(body.get("outputs"), sample)

    def run(self, sample: SampleRequest | None) -> list[Check]:
        return [
            _timed("server-live", lambda: self._expect_200("/v2/health/live")),
            _timed("server-ready", lambda: self._expect_200("/v2/health/ready")),
            _timed("model-ready", lambda: self._expect_200(self.model_path + "/ready")),
            _timed("model-metadata", self._metadata),
            _timed("infer", lambda: self._infer(sample)),
        ]


def _brief(body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])[:200]
    return str(body)[:200]


class _GrpcProbe:
    def __init__(self, url: str, model: str, version: str | None, timeout: float) -> None:
        try:
            import tritonclient.grpc as grpcclient  # noqa: PLC0415 (an optional extra)
        except ImportError:
            raise ProbeError(GRPC_EXTRA_HINT) from None
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "grpcs" else 80)
        self.client = grpcclient.InferenceServerClient(
            url=f"{parts.hostname}:{port}", ssl=parts.scheme == "grpcs"
        )
        self.grpc = grpcclient
        self.model = model
        self.version = version or ""
        self.timeout = timeout

    def _rpc(self, name: str, call: Any) -> Any:
        from tritonclient.utils import InferenceServerException  # noqa: PLC0415 (an optional extra)

        try:
            return call()
        except InferenceServerException as err:
            raise _CheckFailedError(f"{name}: {err.message() or err.status()}") from None

    def _bool(self, name: str, call: Any) -> tuple[Status, str]:
        if not self._rpc(name, call):
            raise _CheckFailedError(f"{name}: false")
        return "pass", f"{name}: true"

    def _metadata(self) -> tuple[Status, str]:
        meta = self._rpc(
            "ModelMetadata",
            lambda: self.client.get_model_metadata(
                self.model, self.version, as_json=True, client_timeout=self.timeout
            ),
        )
        if meta.get("name") != self.model:
            raise _CheckFailedError(f"ModelMetadata names {meta.get('name')!r}, not {self.model!r}")
        detail = f"name {meta['name']}"
        if meta.get("platform"):
            detail += f", platform {meta['platform']}"
        return "pass", detail + f", {len(meta.get('inputs', []))} input(s)"

    def _infer(self, sample: SampleRequest | None) -> tuple[Status, str]:
        if sample is None:
            return "skip", "no sample request (set the model's sampleRequest or pass --request)"
        import numpy as np  # noqa: PLC0415 (comes with the optional gRPC extra)

        inputs = []
        for tensor in sample.inputs:
            item = self.grpc.InferInput(tensor.name, tensor.shape, tensor.datatype)
            dtype = object if tensor.datatype == "BYTES" else _NUMPY[tensor.datatype]
            item.set_data_from_numpy(np.asarray(flatten(tensor.data), dtype=dtype).reshape(tensor.shape))
            inputs.append(item)
        outputs = [self.grpc.InferRequestedOutput(name) for name in sample.output_names] or None
        result = self._rpc(
            "ModelInfer",
            lambda: self.client.infer(
                self.model, inputs, model_version=self.version, outputs=outputs, client_timeout=self.timeout
            ),
        )
        response = result.get_response(as_json=True)
        described = []
        for output in response.get("outputs", []):
            array = result.as_numpy(output["name"])
            shape = [int(d) for d in output.get("shape", [])]
            if array is None or list(array.shape) != shape:
                raise _CheckFailedError(f"ModelInfer: output {output['name']!r} does not hold shape {shape}")
            described.append(f"{output['name']} {output['datatype']}{shape}")
        if not described:
            raise _CheckFailedError("ModelInfer: the response has no outputs")
        missing = sorted(set(sample.output_names) - {o["name"] for o in response.get("outputs", [])})
        if missing:
            raise _CheckFailedError(f"ModelInfer: outputs asked for but not returned: {', '.join(missing)}")
        return "pass", "ModelInfer: outputs " + ", ".join(described)

    def run(self, sample: SampleRequest | None) -> list[Check]:
        t = self.timeout
        try:
            return [
                _timed(
                    "server-live",
                    lambda: self._bool("ServerLive", lambda: self.client.is_server_live(client_timeout=t)),
                ),
                _timed(
                    "server-ready",
                    lambda: self._bool("ServerReady", lambda: self.client.is_server_ready(client_timeout=t)),
                ),
                _timed(
                    "model-ready",
                    lambda: self._bool(
                        "ModelReady",
                        lambda: self.client.is_model_ready(self.model, self.version, client_timeout=t),
                    ),
                ),
                _timed("model-metadata", self._metadata),
                _timed("infer", lambda: self._infer(sample)),
            ]
        finally:
            self.client.close()


_NUMPY: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}


def load_sample(path: str) -> SampleRequest:
    """A sample request from a JSON or YAML file (a V2 request body).

    Raises:
        ProbeError: The file cannot be read or is not a valid request; the message names the file
            and the field path.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ProbeError(f"{path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ProbeError(f"{path}: not JSON or YAML: {err}") from None
    try:
        return SampleRequest.model_validate(data)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(request)"
            problems.append(f"{path}: {where}: {error['msg']}")
        raise ProbeError("\n".join(problems)) from None


# --- command line --------------------------------------------------------------------------

EXIT_HEALTHY = 0
EXIT_INPUT = 2
EXIT_FAILING = 3


def _stack_model(path: str, ref: str) -> Any:
    """The stack entry a ``--model`` names (``name`` or ``namespace/name``)."""
    stack = load_stack(path)
    tenants = {t.name: t.namespace_name for t in stack.tenants}
    matches = [m for m in stack.models if ref in (m.name, f"{tenants[m.tenant]}/{m.name}")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        keys = ", ".join(sorted(f"{tenants[m.tenant]}/{m.name}" for m in matches))
        raise ProbeError(f"{path}: model {ref!r} is in several namespaces: {keys}; name it as namespace/name")
    raise ProbeError(f"{path}: no model {ref!r} in the stack")


def cmd_probe(ns: Any) -> int:
    """Check a deployed model over the V2 protocol: live, ready, model ready, metadata, one inference.

    Exit 0 when every check passes (an inference with no sample request is skipped), 3 when one
    fails, 2 for bad input.
    """
    try:
        sample = None
        model = ns.model
        if ns.stack:
            entry = _stack_model(ns.stack, ns.model)
            model, sample = entry.name, entry.sample_request
        if ns.request:
            sample = load_sample(ns.request)
        report = probe(ns.url, model, version=ns.model_version, sample=sample, timeout=ns.timeout)
    except ProbeError as err:
        files = tuple(f"{path}:" for path in (ns.stack, ns.request) if path)
        for line in str(err).splitlines():
            print(line if files and line.startswith(files) else f"modelplane probe: {line}", file=sys.stderr)
        return EXIT_INPUT
    if ns.output == "json":
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        print(report.text())
    return EXIT_HEALTHY if report.healthy else EXIT_FAILING


def add_probe_parser(sub: Any) -> None:
    """Add ``modelplane probe URL --model NAME ...`` to the top-level subcommands."""
    p = sub.add_parser("probe", help="V2 checks against a deployed model", description=cmd_probe.__doc__)
    p.add_argument(
        "url",
        metavar="URL",
        help="the model's endpoint: http(s)://host[:port] for REST, grpc(s)://host:port for gRPC",
    )
    p.add_argument(
        "--model", required=True, metavar="NAME", help="model name (with --stack: name or namespace/name)"
    )
    p.add_argument("--model-version", metavar="V", help="model version, for servers that serve several")
    p.add_argument("--stack", metavar="FILE", help="take the sample request from this stack's model entry")
    p.add_argument("--request", metavar="FILE", help="sample V2 inference request (JSON or YAML)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="seconds per check (default 10)")
    p.add_argument("--output", choices=("text", "json"), default="text", help="report format (default text)")
    p.set_defaults(func=cmd_probe)

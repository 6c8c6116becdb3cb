"""Run a catalog runtime's real server on loopback exactly as its rendered ServingRuntime says.

The container KServe runs for a model is the runtime's container merged with the model's
InferenceService, with KServe's per-server defaults applied and the ``{{...}}`` placeholders
filled from the InferenceService's metadata. This module rebuilds that container from
modelplane's own render (``render_runtime`` and ``model.objects``), then runs it as a process:
the image's entrypoint from the server's venv (see ``scripts/server_venvs.py``), container paths
under ``/mnt/models`` moved to a temporary directory, and every port the catalog declares moved
to a free loopback port through the same flag or variable the runtime passes it in. A declared
port that appears in no flag or variable fails the test: the catalog would be stating a port
the server is never told.

The server runs under ``watchdog.py``, which ends its whole process group when the test process
is gone or its deadline passes, so nothing outlives a killed test run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from modelplane.model import ModelArgs
from modelplane.model import objects as model_objects
from modelplane.runtimes import RuntimeSpec, catalog_dir, load_catalog, render_runtime

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODEL_DIR = "/mnt/models"
"""Where KServe's storage initializer puts the model (constants.DefaultModelLocalMountPath)."""
DEADLINE_SECONDS = 600
"""The longest a server may live, whatever happens to the test run."""

_PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)(?:\.(\w+))?\s*\}\}")


def _server_venvs() -> Any:
    spec = importlib.util.spec_from_file_location("server_venvs", ROOT / "scripts" / "server_venvs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("server_venvs", module)
    spec.loader.exec_module(module)
    return module


def server_python(server: str) -> Path:
    """The venv of a server, or a skip saying how to create it."""
    venvs = _server_venvs()
    wanted = next(s for s in venvs.SERVERS if s.name == server)
    path = venvs.venv_path(wanted)
    if not venvs.ready(wanted):
        pytest.skip(
            f"{server} {wanted.version} is not installed at {path}: run `make server-venvs` "
            "(make test does; it needs the package index)"
        )
    return Path(path)


def kserve_defaults(isvc: dict[str, Any], server_type: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and env KServe v0.20.0's controller adds for a server type before it renders the pod.

    pkg/apis/serving/v1beta1/inference_service_defaults.go:412-470 (SetMlServerDefaults,
    SetTorchServeDefaults), called from pkg/controller/v1beta1/inferenceservice/components/
    predictor.go:368 with the runtime's ``serving.kserve.io/server-type`` annotation.
    """
    model = isvc["spec"]["predictor"]["model"]
    labels: dict[str, str] = {}
    env: dict[str, str] = {}
    if server_type == "mlserver":
        env = {"MLSERVER_MODEL_NAME": isvc["metadata"]["name"], "MLSERVER_MODEL_URI": MODEL_DIR}
        labels["modelClass"] = {
            "xgboost": "mlserver_xgboost.XGBoostModel",
            "lightgbm": "mlserver_lightgbm.LightGBMModel",
            "mlflow": "mlserver_mlflow.MLflowRuntime",
        }.get(model["modelFormat"]["name"], "mlserver_sklearn.SKLearnModel")
    elif server_type == "torchserve":
        protocol = model.get("protocolVersion", "v1")
        labels["serviceEnvelope"] = "kservev2" if protocol in ("v2", "grpc-v2") else "kserve"
        env["PROTOCOL_VERSION"] = protocol
    return labels, env


def fill_placeholders(text: str, metadata: dict[str, Any]) -> str:
    """KServe's ReplacePlaceholders: a Go template over the InferenceService's ObjectMeta."""

    def value(match: re.Match[str]) -> str:
        top, key = match.group(1), match.group(2)
        if key is None and top in ("Name", "Namespace"):
            return str(metadata[top.lower()])
        if key is not None and top in ("Labels", "Annotations"):
            found = metadata.get(top.lower(), {}).get(key)
            if found is None:
                # Go's template prints a missing map key as "<no value>": the server gets that.
                return "<no value>"
            return str(found)
        raise AssertionError(f"placeholder {match.group(0)} is not one KServe fills")

    return _PLACEHOLDER.sub(value, text)


@dataclass
class Container:
    """The predictor container of a model as KServe would run it."""

    runtime: RuntimeSpec
    isvc: dict[str, Any]
    args: list[str]
    env: dict[str, str]


def predictor_container(model: ModelArgs, *, mode: str = "standard") -> Container:
    """Build the model's predictor container from modelplane's render, as KServe merges it."""
    runtime = load_catalog(catalog_dir())[model.runtime]
    rendered = render_runtime(runtime, name=f"modelplane-{runtime.name}", labels={})
    objs = model_objects(model, stack="test", namespace="servers", mode=mode, runtime=runtime)  # type: ignore[arg-type]
    isvc = next(o for o in objs if o["kind"] == "InferenceService")
    container = rendered["spec"]["containers"][0]
    spec = isvc["spec"]["predictor"]["model"]
    server_type = rendered["metadata"]["annotations"]["serving.kserve.io/server-type"]
    labels, default_env = kserve_defaults(isvc, server_type)
    metadata = isvc["metadata"] | {"labels": isvc["metadata"]["labels"] | labels}
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    # The InferenceService's own env and args come after the runtime's (MergeRuntimeContainers).
    env |= {e["name"]: e["value"] for e in spec.get("env", [])}
    env |= {k: v for k, v in default_env.items() if k not in env}
    args = list(container.get("args", [])) + list(spec.get("args", []))
    args = [fill_placeholders(a, metadata) for a in args]
    env = {k: fill_placeholders(v, metadata) for k, v in env.items()}
    return Container(runtime=runtime, isvc=isvc, args=args, env=env)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    """A server started by ``run``: its ports as the catalog names them, and its log."""

    http: int
    grpc: int
    metrics: int
    log: Path
    process: subprocess.Popen[bytes]
    ports: dict[int, int] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        """A REST URL on the server's HTTP port."""
        return f"http://127.0.0.1:{self.http}{path}"

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def remap_ports(container: Container) -> tuple[list[str], dict[str, str], dict[int, int]]:
    """Args and env with every declared port replaced by a free one, where the runtime passes it."""
    spec = container.runtime
    declared = sorted({spec.http_port, spec.grpc_port, spec.metrics_port})
    mapping = {port: free_port() for port in declared}
    args, env = list(container.args), dict(container.env)
    for port, new in mapping.items():
        found = False
        pattern = re.compile(rf"^(--[\w-]+=){port}$")
        for i, arg in enumerate(args):
            if pattern.match(arg):
                args[i] = pattern.sub(rf"\g<1>{new}", arg)
                found = True
        for key, value in env.items():
            if value == str(port):
                env[key] = str(new)
                found = True
        if not found:
            raise AssertionError(
                f"runtime {spec.name!r} declares port {port} but passes it to the server in no flag or "
                "variable; the server would bind its own default"
            )
    return args, env, mapping


def map_paths(values: list[str], env: dict[str, str], model_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Container paths under /mnt/models moved to the test's model directory."""

    def moved(text: str) -> str:
        return text.replace(MODEL_DIR, str(model_dir))

    return [moved(v) for v in values], {k: moved(v) for k, v in env.items()}


LOOPBACK_ENV: dict[str, dict[str, str]] = {"mlserver": {"MLSERVER_HOST": "127.0.0.1"}}
"""The one setting added to a rendered container: bind loopback only (MLServer's default host is
0.0.0.0, mlserver/settings.py). KServe's listeners are moved in ``kserve_custom_server.py``."""


def wait_ready(running: Running, path: str, *, timeout: float = 180.0) -> None:
    """Poll a REST path until it answers 200; fail with the server's log when it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            pytest.fail(f"server exited with {running.process.returncode}:\n{running.log_tail()}")
        try:
            with urllib.request.urlopen(running.url(path), timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"server not ready on {path} after {timeout:.0f} s:\n{running.log_tail()}")


@contextmanager
def run(
    entrypoint: list[str], container: Container, model_dir: Path, workdir: Path, *, ready_path: str
) -> Iterator[Running]:
    """Start the server (``entrypoint`` + the container's args) and stop its process group after."""
    args, env, mapping = remap_ports(container)
    args, env = map_paths(args, env, model_dir)
    entry = [e.replace(MODEL_DIR, str(model_dir)) for e in entrypoint]
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    log = workdir / "server.log"
    command = [
        sys.executable,
        str(HERE / "watchdog.py"),
        str(os.getpid()),
        str(DEADLINE_SECONDS),
        "--",
        *entry,
        *args,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=base_env | env | LOOPBACK_ENV.get(container.runtime.server_type, {}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    spec = container.runtime
    running = Running(
        http=mapping[spec.http_port],
        grpc=mapping[spec.grpc_port],
        metrics=mapping[spec.metrics_port],
        log=log,
        process=process,
        ports=mapping,
    )
    try:
        wait_ready(running, "/v2/health/live")
        wait_ready(running, ready_path, timeout=60)
        yield running
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the server's whole process group: TERM, then KILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def get_json(url: str, *, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET (or POST ``body``) and return the status and the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw)
        except ValueError:
            return err.code, raw.decode(errors="replace")

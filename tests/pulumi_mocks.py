"""Recording Pulumi mocks: run components and the real program without an engine.

Pulumi's mock runtime (``pulumi.runtime.set_mocks``) answers every registration in
process. ``RecordingMonitor`` wraps its monitor to keep what the engine would have been
told for each resource: type token, name, parent, inputs, ``dependsOn`` URNs and the
``protect`` / ``retainOnDelete`` options, which ``MockResourceArgs`` alone does not carry.
``run_program`` executes ``platform/__main__.py`` exactly as ``pulumi up`` would (as
``__main__`` with the stack name set) and waits for every registration to finish.
"""

from __future__ import annotations

import runpy
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "platform" / "__main__.py"
PROJECT = "modelplane"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Registration:
    """One resource as the engine would have seen it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    dependencies: tuple[str, ...]
    protect: bool | None
    retain_on_delete: bool | None


def _optional_bool(request: Any, name: str) -> bool | None:
    """A proto3 ``optional bool``: None when the program did not set it."""
    return bool(getattr(request, name)) if request.HasField(name) else None


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs as outputs (so ``.apply`` sees what the program passed)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, recording every ``RegisterResourceRequest`` it answers."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.outputs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        _ensure_event_loop()
        record = Registration(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent,
            custom=bool(request.custom),
            inputs=rpc.deserialize_properties(request.object) if request.type != STACK_TYPE else {},
            dependencies=tuple(request.dependencies),
            protect=_optional_bool(request, "protect"),
            retain_on_delete=_optional_bool(request, "retainOnDelete"),
        )
        with self._lock:
            self.registrations.append(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        _ensure_event_loop()
        outputs = rpc.deserialize_properties(request.outputs)
        with self._lock:
            self.outputs[request.urn] = outputs
        return super().RegisterResourceOutputs(request)


@dataclass
class Recording:
    """Everything one program run registered."""

    registrations: list[Registration]
    outputs: dict[str, dict[str, Any]]
    exports: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_urn = {r.urn: r for r in self.registrations}

    def of_type(self, token: str) -> list[Registration]:
        """Registrations with that type token."""
        return [r for r in self.registrations if r.type == token]

    def one(self, token: str) -> Registration:
        """The single registration with that type token."""
        found = self.of_type(token)
        assert len(found) == 1, f"expected one {token}, found {[r.name for r in found]}"
        return found[0]

    def custom(self) -> list[Registration]:
        """Custom resources only (what a provider creates; no components)."""
        return [r for r in self.registrations if r.custom]

    def parent_of(self, registration: Registration) -> Registration | None:
        """The registration of a resource's parent (None under the stack)."""
        return self.by_urn.get(registration.parent)

    def ancestry(self, registration: Registration) -> list[str]:
        """Type tokens from a resource's parent up to the stack."""
        chain: list[str] = []
        current = self.by_urn.get(registration.parent)
        while current is not None:
            chain.append(current.type)
            current = self.by_urn.get(current.parent)
        return chain

    def __iter__(self) -> Iterator[Registration]:
        return iter(self.registrations)


def _start(stack: str, config: dict[str, str] | None) -> RecordingMonitor:
    """Fresh mock runtime for one run: no root resource, no config, no pending RPCs left over."""
    pulumi_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config or {}))
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    return monitor


def _stack_exports() -> dict[str, Any]:
    """The program's ``pulumi.export`` values, resolved.

    ``set_mocks`` finishes its root stack at once, so exports never reach the monitor as
    stack outputs; they are read from the stack resource instead.
    """
    root = pulumi_settings.get_root_resource()
    outputs: dict[str, Any] = getattr(root, "outputs", {})
    return {name: _sync_await(pulumi.Output.from_input(value).future()) for name, value in outputs.items()}


def run(
    func: Callable[[], object], *, stack: str = "test", config: dict[str, str] | None = None
) -> Recording:
    """Run ``func`` as a Pulumi program under recording mocks and wait for every registration.

    Exceptions the program raises (``pulumi.RunError`` among them) propagate unchanged.
    """
    monitor = _start(stack, config)
    try:
        _sync_await(run_pulumi_func(lambda: _discard(func())))
        exports = _stack_exports()
    finally:
        pulumi.runtime.set_all_config({})
    return Recording(list(monitor.registrations), dict(monitor.outputs), exports)


def _discard(_: object) -> None:
    """Drop a program's return value (``run_pulumi_func`` would await an awaitable one)."""


def run_program(stack: str, *, stack_file: Path | None = None) -> Recording:
    """Run the real ``platform/__main__.py`` for a Pulumi stack, as ``pulumi up -s <stack>`` would."""
    config = {"modelplane:stackFile": str(stack_file)} if stack_file is not None else None
    return run(lambda: runpy.run_path(str(PROGRAM), run_name="__main__"), stack=stack, config=config)


class ResourceRecorder(pulumi.runtime.Mocks):
    """The plainest recording mock: every registration's ``MockResourceArgs``, in order.

    For component tests run with ``@pulumi.runtime.test`` that only need type tokens, names
    and inputs (the program tests use ``RecordingMocks``, which also sees options).
    """

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        return {}


def install_recorder() -> ResourceRecorder:
    """A fresh ``ResourceRecorder`` set as Pulumi's mocks."""
    mocks = ResourceRecorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks

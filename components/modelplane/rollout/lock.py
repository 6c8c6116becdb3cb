"""The lock file ``stacks/<stack>.lock.yaml``: the deployed-state record of a stack.

The stack file says what is wanted; the lock says what is live. Only modelplane writes it, and
it is committed like any other file, so Git shows which version of each model serves and at what
traffic share (what KServe keeps only in controller status; kserve#2649). Per model it holds the
stable version with the spec and digest that define it, and during a rollout the candidate, the
plan it follows, where it stands and the events so far.

A lock is read strictly: a file that does not parse, does not match the schema, or whose digests
do not match their specs is a ``LockError`` naming the problem, never silently reset, because a
reset would restart every rollout. A missing lock means nothing is deployed yet. Writes are
atomic (a temporary file renamed over the old one), so a crash never leaves half a lock.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from modelplane.base import Problem, StrictModel, format_path
from modelplane.errors import LockError
from modelplane.rollout.policy import ShadowArgs, Strategy
from modelplane.rollout.version import canonical_json, digest_of
from modelplane.types import DeploymentMode, FieldPath

LOCK_SCHEMA_VERSION = 1
"""The lock schema this modelplane reads and writes."""

HISTORY_LIMIT = 20
"""Events kept per model; Git history holds the rest."""

TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"

Phase = Literal["shadow", "canary", "ab", "loading"]
"""Where a rollout stands: mirroring only, staged canary steps, a fixed A/B split, or (ModelMesh)
loading the candidate beside the stable model."""

State = Literal["progressing", "paused", "rolled-back"]
"""A rollout's state. Promotion ends a rollout: the candidate becomes the stable version."""

EventKind = Literal[
    "deployed",
    "replaced",
    "started",
    "restarted",
    "advanced",
    "held",
    "paused",
    "resumed",
    "promoted",
    "rolled-back",
    "aborted",
    "inconclusive",
]


class VersionRecord(StrictModel):
    """One version of a model as deployed: its label, spec, digest and DNS-safe name."""

    version: str = Field(description="The model's version label.")
    name: str = Field(
        pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="DNS-safe name: `predictor.name` in Standard mode, the side object's suffix in ModelMesh mode.",
    )
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="sha256 of the spec's canonical JSON.")
    spec: dict[str, Any] = Field(
        description="The version-defining fields (see `modelplane.rollout.version`)."
    )


class HistoryEvent(StrictModel):
    """Something that happened to a model's deployment."""

    at: str = Field(pattern=TIMESTAMP_PATTERN, description="UTC time, `YYYY-MM-DDTHH:MM:SSZ`.")
    event: EventKind = Field(description="What happened.")
    version: str = Field(description="The version the event concerns.")
    traffic_percent: int = Field(ge=0, le=100, description="The candidate's traffic share after the event.")
    detail: str = Field(default="", description="Why, or what the gates said.")


class RolloutRecord(StrictModel):
    """A rollout under way (or rolled back and held) and the plan it follows.

    The shape of the traffic (strategy, steps, shadow, A/B split) is frozen when the rollout
    starts, so a policy edit cannot move a running canary to a step it never had; the gates and
    the step interval are read from the stack each time, so a gate can be fixed in a reviewed
    change without restarting the rollout.
    """

    candidate: VersionRecord = Field(description="The version being rolled out.")
    strategy: Strategy = Field(description="`canary` or `ab` (a `direct` change never persists a rollout).")
    phase: Phase = Field(description="Where the rollout stands.")
    steps: list[int] = Field(description="The canary traffic steps, frozen when the rollout started.")
    step: int = Field(default=0, ge=0, description="Index into `steps` of the current canary step.")
    state: State = Field(default="progressing", description="progressing, paused or rolled-back.")
    started_at: str = Field(pattern=TIMESTAMP_PATTERN, description="When the rollout started.")
    since: str = Field(pattern=TIMESTAMP_PATTERN, description="When the current step or phase began.")
    shadow: ShadowArgs | None = Field(default=None, description="The shadow phase, when the plan has one.")
    ab_split: int | None = Field(
        default=None, ge=0, le=100, description="The candidate's share in an A/B test."
    )
    failures: int | None = Field(
        default=None,
        ge=1,
        description="Consecutive failed evaluations at the current step (absent: none); the policy's "
        "`failureLimit` rolls the rollout back when they reach it.",
    )


class ModelRecord(StrictModel):
    """The deployed state of one model."""

    mode: DeploymentMode = Field(description="The deployment mode it is served in.")
    stable: VersionRecord = Field(description="The version that serves (all traffic when no rollout).")
    rollout: RolloutRecord | None = Field(default=None, description="The rollout under way, if any.")
    history: list[HistoryEvent] = Field(default_factory=list, description="Recent events, oldest first.")


class Lock(StrictModel):
    """The whole deployed-state record of a stack."""

    schema_version: int = Field(description="Lock schema version; this modelplane reads 1.")
    stack: str = Field(description="The stack this lock belongs to.")
    models: dict[str, ModelRecord] = Field(
        default_factory=dict, description="Per model, keyed `<namespace>/<name>`."
    )

    @field_validator("schema_version")
    @classmethod
    def _supported(cls, value: int) -> int:
        if value != LOCK_SCHEMA_VERSION:
            raise ValueError(
                f"unsupported lock schemaVersion {value}; this modelplane reads {LOCK_SCHEMA_VERSION} "
                "(upgrade modelplane to read a newer lock)"
            )
        return value


def empty_lock(stack: str) -> Lock:
    """The lock of a stack with nothing deployed yet."""
    return Lock(schema_version=LOCK_SCHEMA_VERSION, stack=stack)


def lock_path(stack_file: str | Path) -> Path:
    """Where the lock of a stack file lives: beside it, ``<stem>.lock.yaml``."""
    path = Path(stack_file)
    return path.with_name(f"{path.stem}.lock.yaml")


def load_lock(stack_file: str | Path, *, stack: str) -> Lock:
    """The lock beside a stack file, or an empty one when nothing is deployed yet.

    Raises:
        LockError: the lock is unreadable, corrupt, invalid or for another stack.
    """
    return read_lock(lock_path(stack_file), stack=stack) or empty_lock(stack)


def _semantic_problems(lock: Lock) -> list[Problem]:
    """Problems the schema cannot see: keys, digests against specs, step bounds."""
    problems: list[Problem] = []
    for key, record in lock.models.items():
        where: FieldPath = ("models", key)
        parts = key.split("/")
        if len(parts) != 2 or not all(parts):
            problems.append(Problem(where, "a model key is `<namespace>/<name>`"))
        versions: list[tuple[FieldPath, VersionRecord]] = [(("stable",), record.stable)]
        if record.rollout is not None:
            versions.append((("rollout", "candidate"), record.rollout.candidate))
        for label, version in versions:
            if digest_of(version.spec) != version.digest:
                problems.append(
                    Problem(
                        (*where, *label, "digest"),
                        "does not match the sha256 of its spec (was the lock edited by hand?)",
                    )
                )
            if version.spec.get("version") != version.version:
                problems.append(
                    Problem(
                        (*where, *label, "version"),
                        f"differs from spec.version {version.spec.get('version')!r}",
                    )
                )
        rollout = record.rollout
        if rollout is None:
            continue
        if rollout.phase == "canary" and not rollout.step < len(rollout.steps):
            problems.append(
                Problem((*where, "rollout", "step"), f"is past the last of {len(rollout.steps)} steps")
            )
        if rollout.phase == "ab" and rollout.ab_split is None:
            problems.append(Problem((*where, "rollout", "abSplit"), "an A/B rollout needs its split"))
        if rollout.phase == "shadow" and rollout.shadow is None:
            problems.append(
                Problem((*where, "rollout", "shadow"), "a rollout in its shadow phase needs its shadow plan")
            )
        if rollout.phase == "loading" and record.mode != "modelmesh":
            problems.append(
                Problem(
                    (*where, "rollout", "phase"), f"`loading` is for modelmesh mode (mode is {record.mode})"
                )
            )
    return problems


def parse_lock(data: Any, source: str, *, stack: str | None = None) -> Lock:
    """Validate already-parsed lock data; ``source`` names it in errors.

    Raises:
        LockError: the data is not a valid lock (or belongs to another stack).
    """
    if not isinstance(data, dict):
        raise LockError(f"{source}: <root>: a lock file is a mapping with schemaVersion, stack and models")
    try:
        lock = Lock.model_validate(data)
    except ValidationError as err:
        lines = []
        for error in err.errors(include_url=False):
            msg = error["msg"].removeprefix("Value error, ")
            lines.append(f"{source}: {format_path(tuple(error['loc']))}: {msg}")
        raise LockError("\n".join(lines)) from None
    problems = _semantic_problems(lock)
    if stack is not None and lock.stack != stack:
        problems.insert(0, Problem(("stack",), f"the lock is for stack {lock.stack!r}, not {stack!r}"))
    if problems:
        raise LockError("\n".join(f"{source}: {problem}" for problem in problems))
    return lock


def read_lock(path: str | Path, *, stack: str | None = None) -> Lock | None:
    """Read a lock file; None when it does not exist (nothing deployed yet).

    Raises:
        LockError: the file is unreadable, corrupt, invalid or for another stack.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LockError(f"{path}: <root>: cannot read: {err.strerror}") from None
    return lock_from_bytes(raw, str(path), stack=stack)


MAX_LOCK_BYTES = 128 * 1024 * 1024
"""Largest lock accepted: a lock takes about 730 bytes per model (the stable spec and its digest, a
deployed event), so 100,000 models (about 73 MB) fit with room for rollouts and history."""

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LockLoader(_Loader):  # type: ignore[misc,valid-type]
    """Safe YAML loader for locks: no aliases, no duplicate keys.

    modelplane never writes aliases, and they are how a small file expands into a huge one.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            raise yaml.constructor.ConstructorError(
                None, None, "aliases are not allowed in a lock file", node.start_mark
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be scalars", key_node.start_mark
                )
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r} (first at line {seen[key_node.value] + 1})",
                    key_node.start_mark,
                )
            seen[key_node.value] = key_node.start_mark.line
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _read_yaml(raw: bytes, source: str) -> Any:
    if len(raw) > MAX_LOCK_BYTES:
        raise LockError(
            f"{source}: <root>: file is {len(raw):,} bytes; locks are limited to {MAX_LOCK_BYTES:,}"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LockError(f"{source}: <root>: not UTF-8 text (invalid byte at offset {err.start})") from None
    try:
        documents = list(yaml.load_all(text, Loader=_LockLoader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<root>"
        raise LockError(
            f"{source}: {where}: YAML error: {err.problem or err.context or 'invalid YAML'}"
        ) from None
    except yaml.YAMLError as err:
        raise LockError(f"{source}: <root>: YAML error: {err}") from None
    if len(documents) > 1:
        raise LockError(f"{source}: <root>: a lock file holds one YAML document (found {len(documents)})")
    return documents[0] if documents else None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _read(raw: bytes, source: str) -> Any:
    """The data of a lock.

    modelplane writes JSON after a comment header (valid YAML, and fast to read at any size);
    a lock someone rewrote as block YAML goes through the safe YAML reader instead.
    """
    if len(raw) > MAX_LOCK_BYTES:
        raise LockError(
            f"{source}: <root>: file is {len(raw):,} bytes; locks are limited to {MAX_LOCK_BYTES:,}"
        )
    body = raw.lstrip()
    while body.startswith(b"#"):
        body = body.partition(b"\n")[2].lstrip()
    if body.startswith(b"{"):
        try:
            return json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
        except UnicodeDecodeError as err:
            raise LockError(
                f"{source}: <root>: not UTF-8 text (invalid byte at offset {err.start})"
            ) from None
        except json.JSONDecodeError as err:
            line = raw[: len(raw) - len(body)].count(b"\n") + err.lineno
            raise LockError(f"{source}: line {line}, column {err.colno}: JSON error: {err.msg}") from None
        except ValueError as err:
            raise LockError(f"{source}: <root>: {err}") from None
    return _read_yaml(raw, source)


def lock_from_bytes(raw: bytes, source: str, *, stack: str | None = None) -> Lock:
    """Parse and validate a lock from its bytes (a file, or ``git show`` output)."""
    data = _read(raw, source)
    if data is None:
        raise LockError(f"{source}: <root>: the lock file is empty; delete it if nothing is deployed")
    return parse_lock(data, source, stack=stack)


def _sorted_data(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_data(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_data(v) for v in value]
    return value


HEADER = (
    "# The deployed state of stack {stack}, written by modelplane (`modelplane rollout ...`).\n"
    "# Commit it; do not edit it by hand: digests are checked against specs.\n"
    "# The body is JSON, which is YAML too: it reads in well under a second even at 20,000 models.\n"
)


def dump_lock(lock: Lock) -> str:
    """The lock as text, the same bytes for the same lock.

    A fixed key order, models sorted by key, one value per line so Git diffs read well.
    """
    data = lock.model_dump(by_alias=True, exclude_none=True)
    data["models"] = {key: data["models"][key] for key in sorted(data["models"])}
    for record in data["models"].values():
        record["stable"]["spec"] = _sorted_data(record["stable"]["spec"])
        for event in record["history"]:
            if not event["detail"]:
                del event["detail"]
        if "rollout" in record:
            record["rollout"]["candidate"]["spec"] = _sorted_data(record["rollout"]["candidate"]["spec"])
    return HEADER.format(stack=lock.stack) + json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_lock(lock: Lock, path: str | Path) -> None:
    """Write a lock atomically: a temporary file in the same directory, then a rename.

    Raises:
        LockError: the file cannot be written (the old lock is then left untouched).
    """
    path = Path(path)
    text = dump_lock(lock)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise LockError(f"{path}: cannot write: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise LockError(f"{path}: cannot write: {err.strerror}") from None


def same_lock(a: Lock, b: Lock) -> bool:
    """Whether two locks record the same state (compared as canonical JSON)."""
    return canonical_json(a.model_dump(by_alias=True)) == canonical_json(b.model_dump(by_alias=True))

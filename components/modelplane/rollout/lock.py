"""The lock file ``stacks/<stack>.lock.yaml``: the deployed-state record of a stack.

The stack file says what is wanted; the lock says what is live. Only modelplane writes it, and
it is committed like any other file, so Git shows which version of each model serves and at what
traffic share (what KServe keeps only in controller status; kserve#2649). Per model it holds the
stable version with the spec and digest that define it, and during a rollout the candidate, the
plan it follows, where it stands and the events so far.

A lock is read strictly, as untrusted input (``modelplane.rollout.lockfile`` reads the bytes):
a file that does not parse, does not match the schema, holds a value out of range (a step past
100, traffic that does not add up, a phase its mode cannot have), a spec that is not a valid
version of a model, a digest that does not match its spec, or a credential, is a ``LockError``
naming every problem, never silently reset, because a reset would restart every rollout. A
missing lock means nothing is deployed yet.

Locks are versioned (``schemaVersion``). A lock of an older version is migrated when read and
written in the current version by the next command that writes it; ``MIGRATIONS`` holds one
step per version, so a new format is one more step. A lock of a newer version is refused with
its version named: an older modelplane must never rewrite what it cannot read.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import Field, ValidationError

from modelplane import credentials
from modelplane.base import Problem, StrictModel, format_path
from modelplane.errors import LockError
from modelplane.model import ModelArgs
from modelplane.rollout import lockfile
from modelplane.rollout.lockfile import MAX_LOCK_BYTES, MAX_LOCK_DEPTH
from modelplane.rollout.policy import ShadowArgs, Strategy
from modelplane.rollout.version import canonical_json, digest_of, version_spec, with_spec
from modelplane.stack_yaml import problem_line
from modelplane.types import DeploymentMode, FieldPath

__all__ = [
    "HISTORY_LIMIT",
    "LOCK_SCHEMA_VERSION",
    "MAX_LOCK_BYTES",
    "MAX_LOCK_DEPTH",
    "MIGRATIONS",
    "EventKind",
    "HistoryEvent",
    "Lock",
    "ModelRecord",
    "RolloutRecord",
    "VersionRecord",
    "dump_lock",
    "empty_lock",
    "exclusive",
    "load_lock",
    "lock_from_bytes",
    "lock_path",
    "parse_lock",
    "read_lock",
    "same_lock",
    "write_lock",
]

LOCK_SCHEMA_VERSION: Final = 2
"""The lock schema this modelplane writes. Version 2 added ``rollout.failures`` and the
``inconclusive`` history event (written as version 1 for a while, so such a lock failed in an
older modelplane as a schema error instead of being refused by its version)."""

HISTORY_LIMIT = 20
"""Events kept per model; Git history holds the rest."""

MAX_FAILURES = 10_000
"""Most consecutive failed evaluations a rollout can count (a policy's ``failureLimit`` is at most 100)."""

TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"

_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

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

    version: str = Field(max_length=63, description="The model's version label.")
    name: str = Field(
        pattern=_NAME,
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
    version: str = Field(max_length=63, description="The version the event concerns.")
    traffic_percent: int = Field(ge=0, le=100, description="The candidate's traffic share after the event.")
    detail: str = Field(default="", max_length=20_000, description="Why, or what the gates said.")


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
    steps: list[int] = Field(
        max_length=100,
        description="The canary traffic steps, frozen when the rollout started: 1 to 100, strictly "
        "increasing, ending at 100 (empty for an A/B test).",
    )
    step: int = Field(default=0, ge=0, lt=100, description="Index into `steps` of the current canary step.")
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
        le=MAX_FAILURES,
        description="Consecutive failed evaluations at the current step (absent: none); the policy's "
        "`failureLimit` rolls the rollout back when they reach it.",
    )


class ModelRecord(StrictModel):
    """The deployed state of one model."""

    mode: DeploymentMode = Field(description="The deployment mode it is served in.")
    stable: VersionRecord = Field(description="The version that serves (all traffic when no rollout).")
    rollout: RolloutRecord | None = Field(default=None, description="The rollout under way, if any.")
    history: list[HistoryEvent] = Field(
        default_factory=list, max_length=HISTORY_LIMIT, description="Recent events, oldest first."
    )


class Lock(StrictModel):
    """The whole deployed-state record of a stack."""

    schema_version: Literal[2] = Field(
        description="Lock schema version: 2. Older versions are migrated when read (`MIGRATIONS`)."
    )
    stack: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=40,
        description="The stack this lock belongs to.",
    )
    models: dict[str, ModelRecord] = Field(
        default_factory=dict, description="Per model, keyed `<namespace>/<name>`."
    )


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


# --- versions ------------------------------------------------------------------------------


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 to 2: the format is the same, less the gates the first format froze in a rollout.

    The first locks froze a rollout's gates (``rollout.gates``); gates have been read from the
    stack ever since, so a gate can be fixed without restarting a rollout, and they are dropped.
    """
    models = data.get("models")
    if isinstance(models, dict):
        for record in models.values():
            rollout = record.get("rollout") if isinstance(record, dict) else None
            if isinstance(rollout, dict):
                rollout.pop("gates", None)
    return {**data, "schemaVersion": 2}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1}
"""One step per older schema version, each to the next: ``MIGRATIONS[v](data)`` is version v+1."""


def migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    """The lock data of any version this modelplane knows, in the current version.

    Raises:
        LockError: the version is missing, newer than this modelplane, or one it never wrote.
    """
    version = data.get("schemaVersion")
    if isinstance(version, bool) or not isinstance(version, int):
        raise lockfile.refuse(
            source,
            ("schemaVersion",),
            f"must be the lock's schema version, a whole number (this modelplane writes {LOCK_SCHEMA_VERSION})",
        )
    if version > LOCK_SCHEMA_VERSION:
        raise lockfile.refuse(
            source,
            ("schemaVersion",),
            f"the lock is schema version {version}, newer than this modelplane reads (up to "
            f"{LOCK_SCHEMA_VERSION}): upgrade modelplane; it never rewrites a lock it cannot read",
        )
    if version < LOCK_SCHEMA_VERSION and version not in MIGRATIONS:
        known = ", ".join(str(v) for v in [*sorted(MIGRATIONS), LOCK_SCHEMA_VERSION])
        raise lockfile.refuse(
            source, ("schemaVersion",), f"unknown lock schema version {version} (modelplane wrote {known})"
        )
    while version < LOCK_SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    return data


# --- validation ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _real_time(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def _key_problems(key: str, where: FieldPath) -> list[Problem]:
    namespace, slash, name = key.partition("/")
    if (
        not slash
        or not re.fullmatch(_NAMESPACE, namespace)
        or not re.fullmatch(_NAME, name)
        or len(namespace) > 63
        or len(name) > 63
    ):
        return [Problem(where, "a model key is `<namespace>/<name>`, both DNS labels")]
    return []


def _spec_problems(version: VersionRecord, where: FieldPath) -> list[Problem]:
    """A spec is a valid version of a model (as the stack would write it) and matches its digest."""
    spec = version.spec
    problems: list[Problem] = []
    if digest_of(spec) != version.digest:
        problems.append(
            Problem(
                (*where, "digest"), "does not match the sha256 of its spec (was the lock edited by hand?)"
            )
        )
    if spec.get("version") != version.version:
        problems.append(Problem((*where, "version"), "differs from spec.version"))
    base: dict[str, Any] = {
        "name": "lock-check",
        "tenant": "lock-check",
        "runtime": spec.get("runtime"),
        "format": spec.get("format"),
        "version": spec.get("version"),
    }
    # The fields a model entry needs before ``with_spec`` can lay the rest of the spec over it.
    location = dict(spec["storage"]) if isinstance(spec.get("storage"), dict) else {}
    if "storageUri" in spec:
        location["uri"] = spec["storageUri"]
    if location:
        base["storage"] = location
    for key in ("image", "runtimeVersion"):
        if key in spec:
            base[key] = spec[key]
    try:
        model = with_spec(ModelArgs.model_validate(base, strict=True), spec)
    except (ValidationError, KeyError, TypeError, ValueError) as err:
        fields = ""
        if isinstance(err, ValidationError):
            fields = ", ".join(sorted({format_path(tuple(e["loc"])) for e in err.errors(include_url=False)}))
        problems.append(
            Problem(
                (*where, "spec"), "is not a valid version of a model" + (f" ({fields})" if fields else "")
            )
        )
        return problems
    if version_spec(model) != spec:
        problems.append(
            Problem(
                (*where, "spec"),
                "is not a version spec as modelplane writes it (fields added or defaults written)",
            )
        )
    return problems


def _rollout_problems(record: ModelRecord, where: FieldPath) -> list[Problem]:
    """A rollout's plan and position are ones modelplane could have written."""
    rollout = record.rollout
    if rollout is None:
        return []
    at: FieldPath = (*where, "rollout")
    problems: list[Problem] = []

    def add(field: str, message: str) -> None:
        problems.append(Problem((*at, field), message))

    if rollout.strategy == "direct":
        add("strategy", "a `direct` change replaces the stable version at once and never persists a rollout")
    steps = rollout.steps
    if rollout.strategy == "canary":
        if not steps:
            add("steps", "a canary has steps")
        elif any(not 1 <= s <= 100 for s in steps):
            add("steps", "each step is a traffic share from 1 to 100")
        elif any(b <= a for a, b in itertools.pairwise(steps)):
            add("steps", "steps must be strictly increasing")
        elif steps[-1] != 100:
            add("steps", "the last step must be 100 (reaching it is promotion)")
    elif steps:
        add("steps", f"only a canary has steps (strategy is {rollout.strategy})")
    allowed: dict[str, tuple[str, ...]] = {"canary": ("shadow", "canary", "loading"), "ab": ("ab", "loading")}
    if rollout.phase not in allowed.get(rollout.strategy, (rollout.phase,)):
        add("phase", f"a {rollout.strategy} rollout is never in phase {rollout.phase}")
    if (rollout.phase == "loading") != (record.mode == "modelmesh"):
        add(
            "phase",
            "a modelmesh rollout loads the candidate beside the stable model (phase loading), and only it does",
        )
    if rollout.phase == "canary" and steps and not rollout.step < len(steps) - 1:
        add("step", f"is past the last step before promotion ({len(steps) - 1} of {len(steps)} steps)")
    if rollout.phase != "canary" and rollout.step != 0:
        add("step", f"only a canary phase moves through steps (phase is {rollout.phase})")
    if rollout.phase == "ab" and rollout.ab_split is None:
        add("abSplit", "an A/B rollout needs its split")
    if rollout.strategy != "ab" and rollout.ab_split is not None:
        add("abSplit", "only an A/B rollout has a split")
    if rollout.phase == "shadow" and rollout.shadow is None:
        add("shadow", "a rollout in its shadow phase needs its shadow plan")
    if rollout.state == "rolled-back" and rollout.failures is not None:
        add("failures", "a rolled-back rollout counts no failures")
    for field, value in (("startedAt", rollout.started_at), ("since", rollout.since)):
        if not _real_time(value):
            add(field, "is not a real UTC time")
    if _real_time(rollout.started_at) and _real_time(rollout.since) and rollout.since < rollout.started_at:
        add("since", "is before startedAt")
    if rollout.candidate.name == record.stable.name:
        problems.append(
            Problem((*at, "candidate", "name"), "is the stable version's name; the two run side by side")
        )
    return problems


def _semantic_problems(lock: Lock) -> list[Problem]:
    """Problems the schema cannot see: keys, digests and specs, rollout plans, times."""
    problems: list[Problem] = []
    for key, record in lock.models.items():
        where: FieldPath = ("models", key)
        problems += _key_problems(key, where)
        problems += _spec_problems(record.stable, (*where, "stable"))
        if record.rollout is not None:
            problems += _spec_problems(record.rollout.candidate, (*where, "rollout", "candidate"))
        problems += _rollout_problems(record, where)
        for i, event in enumerate(record.history):
            if not _real_time(event.at):
                problems.append(Problem((*where, "history", i, "at"), "is not a real UTC time"))
    return problems


def _credential_problems(data: Any) -> list[Problem]:
    return [
        Problem(path, f"looks like {kind}; a lock never carries credentials (the stack references them)")
        for path, kind in credentials.scan(data)
    ]


def parse_lock(data: Any, source: str, *, stack: str | None = None) -> Lock:
    """Validate already-parsed lock data of any known version; ``source`` names it in errors.

    Raises:
        LockError: the data is not a valid lock (or belongs to another stack); every problem, one line each.
    """
    if not isinstance(data, dict):
        raise lockfile.refuse(
            source, "<root>", "a lock file is a mapping with schemaVersion, stack and models"
        )
    shape = lockfile.plain_data_problems(data, source)
    if shape:
        raise LockError(shape)
    found = _credential_problems(data)
    if found:
        raise LockError([problem_line(source, p.path, p.message) for p in found])
    data = migrate(data, source)
    try:
        lock = Lock.model_validate(data, strict=True)
    except ValidationError as err:
        lines = []
        for error in err.errors(include_url=False):
            msg = error["msg"].removeprefix("Value error, ")
            lines.append(problem_line(source, tuple(error["loc"]), msg[:1].lower() + msg[1:]))
        raise LockError(list(dict.fromkeys(lines))) from None
    problems = _semantic_problems(lock)
    if stack is not None and lock.stack != stack:
        problems.insert(0, Problem(("stack",), f"the lock is for stack {lock.stack!r}, not {stack!r}"))
    if problems:
        raise LockError([problem_line(source, p.path, p.message) for p in problems])
    return lock


def read_lock(path: str | Path, *, stack: str | None = None) -> Lock | None:
    """Read a lock file; None when it does not exist (nothing deployed yet).

    Raises:
        LockError: the file is not a regular file, unreadable, corrupt, invalid or for another stack.
    """
    raw = lockfile.read_bytes(Path(path))
    if raw is None:
        return None
    return lock_from_bytes(raw, str(path), stack=stack)


def lock_from_bytes(raw: bytes, source: str, *, stack: str | None = None) -> Lock:
    """Parse and validate a lock from its bytes (a file, or ``git show`` output)."""
    data = lockfile.parse_bytes(raw, source)
    if data is None:
        raise lockfile.refuse(source, "<root>", "the lock file is empty; delete it if nothing is deployed")
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
    """Write a lock atomically, keeping the file's mode (see ``modelplane.rollout.lockfile``).

    Call it under ``exclusive(path)`` when the lock was read first (a read-modify-write).

    Raises:
        LockError: the file cannot be written (the old lock is then left untouched).
    """
    lockfile.write_text(Path(path), dump_lock(lock))


@contextmanager
def exclusive(path: str | Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the lock file's advisory lock around a read-modify-write (``lockfile.exclusive``).

    Raises:
        LockError: another command held it longer than the wait.
    """
    with lockfile.exclusive(path, wait=wait):
        yield


def same_lock(a: Lock, b: Lock) -> bool:
    """Whether two locks record the same state (compared as canonical JSON)."""
    return canonical_json(a.model_dump(by_alias=True)) == canonical_json(b.model_dump(by_alias=True))

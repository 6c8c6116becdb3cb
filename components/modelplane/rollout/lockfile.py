"""The lock file on disk: read safely, written atomically, changed by one command at a time.

A lock is committed with the stack, so a pull request can change it like any other file: it is
read as untrusted input. Only a regular file is read (a FIFO would block forever, a device or a
symlink to ``/dev/zero`` would never end, a symlink could show another file's content in an
error), never more than ``MAX_LOCK_BYTES``, and its nesting is bounded before a parser sees it.
The data must be plain JSON data (mappings with string keys, lists, strings, numbers, booleans,
null): YAML dates, sets and tags, NaN and lone surrogates are refused with the path where they
sit, because the lock is hashed and written back as JSON.

Writes go to a temporary file in the same directory, renamed over the old lock, with the old
file's mode kept; a crash leaves the old lock whole and at worst a ``.<name>.*.tmp`` file, which
the next write removes (the project's ``.gitignore`` ignores it meanwhile).

Every read-modify-write of a lock holds ``exclusive(path)``: an advisory ``flock`` on the lock's
directory (the lock file itself is replaced on every write, so it cannot carry the lock). A
second command waits up to ``MODELPLANE_LOCK_WAIT`` seconds and then fails with a clear message;
it never overwrites what the first one wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from modelplane.errors import LockError
from modelplane.stack_yaml import nesting_bound, problem_line
from modelplane.types import FieldPath

MAX_LOCK_BYTES = 128 * 1024 * 1024
"""Largest lock accepted: about 450 bytes per model, so room for well over 100,000 models."""

MAX_LOCK_DEPTH = 64
"""Deepest nesting accepted. modelplane writes locks 8 levels deep; a bound well above, and far
below where a parser's recursion could fail."""

WAIT_ENV = "MODELPLANE_LOCK_WAIT"
"""Environment variable: seconds a command waits for another one changing the same lock."""

DEFAULT_WAIT = 30.0
"""Seconds a command waits by default: longer than any rollout command takes on a large stack."""

_TEMP_SUFFIX = ".tmp"


def _problem(source: str, where: FieldPath | str, message: str) -> str:
    return problem_line(source, where, message)


def refuse(source: str, where: FieldPath | str, message: str) -> LockError:
    """A ``LockError`` of one problem, as one line: ``FILE: path: message``."""
    return LockError([_problem(source, where, message)])


# --- reading -----------------------------------------------------------------------------


def read_bytes(path: Path, *, limit: int = MAX_LOCK_BYTES) -> bytes | None:
    """The bytes of a lock file, or None when there is none.

    Raises:
        LockError: the path is not a regular file (a symlink, FIFO, device or directory), cannot
            be read, or is larger than ``limit`` bytes (default ``MAX_LOCK_BYTES``).
    """
    source = str(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        raise refuse(source, "<root>", f"cannot read: {err.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise refuse(source, "<root>", "is a symbolic link; a lock is a regular file that modelplane writes")
    if not stat.S_ISREG(info.st_mode):
        raise refuse(source, "<root>", f"is not a regular file ({_file_type(info.st_mode)})")
    try:
        # O_NOFOLLOW and O_NONBLOCK: the path cannot turn into a symlink or a FIFO under us.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as err:
        raise refuse(source, "<root>", f"cannot read: {err.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        opened = os.fstat(handle.fileno())
        if not stat.S_ISREG(opened.st_mode):
            raise refuse(source, "<root>", f"is not a regular file ({_file_type(opened.st_mode)})")
        if opened.st_size > limit:
            raise _too_large(source, f"{opened.st_size:,} bytes", limit)
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise _too_large(source, f"more than {limit:,} bytes", limit)
    return raw


def _too_large(source: str, size: str, limit: int = MAX_LOCK_BYTES) -> LockError:
    return refuse(source, "<root>", f"file is {size}; locks are limited to {limit:,}")


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


class _LockLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML loader for locks: no aliases (how a small file expands into a huge one), no duplicate keys."""

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


def _read_yaml(text: str, source: str) -> Any:
    try:
        documents = list(yaml.load_all(text, Loader=_LockLoader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<root>"
        raise refuse(source, where, f"YAML error: {err.problem or err.context or 'invalid YAML'}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as err:
        raise refuse(source, "<root>", f"YAML error: {type(err).__name__}") from None
    if len(documents) > 1:
        raise refuse(source, "<root>", f"a lock file holds one YAML document (found {len(documents)})")
    return documents[0] if documents else None


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fast = dict(pairs)
    if len(fast) == len(pairs):
        return fast  # no key twice: the dict built in C
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {json.dumps(key, ensure_ascii=False)}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a lock can hold")


def parse_bytes(raw: bytes, source: str, *, limit: int = MAX_LOCK_BYTES) -> Any:
    """The plain data of a lock's bytes (None for an empty document).

    modelplane writes JSON after a comment header (valid YAML, and fast to read at any size); a
    lock someone rewrote as block YAML goes through the safe YAML reader instead.

    Raises:
        LockError: too large, not UTF-8, nested too deeply, or not one JSON or YAML document.
    """
    if len(raw) > limit:
        raise _too_large(source, f"{len(raw):,} bytes", limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise refuse(source, "<root>", f"not UTF-8 text (invalid byte at offset {err.start})") from None
    if nesting_bound(text) > MAX_LOCK_DEPTH:
        raise refuse(source, "<root>", f"nested deeper than {MAX_LOCK_DEPTH} levels")
    body = text.lstrip()
    while body.startswith("#"):
        body = body.partition("\n")[2].lstrip()
    if body.startswith("{"):
        try:
            return json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except json.JSONDecodeError as err:
            line = text[: len(text) - len(body)].count("\n") + err.lineno
            raise refuse(source, f"line {line}, column {err.colno}", f"JSON error: {err.msg}") from None
        except (ValueError, RecursionError) as err:
            raise refuse(source, "<root>", str(err) or type(err).__name__) from None
    return _read_yaml(text, source)


def plain_data_problems(data: Any, source: str) -> list[str]:
    """Where ``data`` holds something that is not plain JSON data, one line each.

    A lock is hashed and written back as JSON, so a YAML date, set or binary value, a key that
    is not a string, a NaN or an infinity, or a string that is not valid Unicode (a lone
    surrogate) would fail later, far from its cause.
    """
    problems: list[str] = []
    pending: list[tuple[FieldPath, Any]] = [((), data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    problems.append(
                        _problem(source, where, f"keys must be strings (got {type(key).__name__})")
                    )
                    continue
                if not _unicode(key):
                    problems.append(_problem(source, where, "a key is not valid Unicode (a lone surrogate)"))
                    continue
                pending.append(((*where, key), child))
        elif isinstance(value, list):
            pending.extend(((*where, i), child) for i, child in enumerate(value))
        elif isinstance(value, str):
            if not _unicode(value):
                problems.append(_problem(source, where, "not valid Unicode (a lone surrogate)"))
        elif isinstance(value, float):
            if not math.isfinite(value):
                problems.append(_problem(source, where, "must be a finite number"))
        elif value is not None and not isinstance(value, (bool, int)):
            problems.append(
                _problem(
                    source,
                    where,
                    f"a YAML {type(value).__name__} is not allowed; a lock holds plain JSON data",
                )
            )
    return sorted(problems)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _unicode(text: str) -> bool:
    return _SURROGATE.search(text) is None


# --- writing -----------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stale_temporaries(path: Path) -> list[Path]:
    return list(path.parent.glob(f".{_glob_escape(path.name)}.*{_TEMP_SUFFIX}"))


def _glob_escape(name: str) -> str:
    """``name`` with the characters glob patterns treat specially escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, keeping the old file's mode (a new one gets 0666 & ~umask).

    Call it under ``exclusive(path)``: temporary files another crashed write left behind are
    removed first, which is safe only when no other writer runs.

    Raises:
        LockError: the file cannot be written (the old lock is then left untouched).
    """
    for stale in _stale_temporaries(path):
        stale.unlink(missing_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as err:
        raise refuse(str(path), "<root>", f"cannot write: {err.strerror}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    except OSError as err:
        raise refuse(str(path), "<root>", f"cannot write: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise refuse(str(path), "<root>", f"cannot write: {err.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- one writer at a time ------------------------------------------------------------------


def wait_seconds() -> float:
    """How long a command waits for the lock: ``$MODELPLANE_LOCK_WAIT``, else ``DEFAULT_WAIT``.

    Raises:
        LockError: the variable is not a number of seconds from 0 to 3600.
    """
    text = os.environ.get(WAIT_ENV)
    if text is None or text == "":
        return DEFAULT_WAIT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise LockError([f"{WAIT_ENV}: must be a number of seconds from 0 to 3600"])
    return value


@contextlib.contextmanager
def exclusive(path: str | Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the advisory lock of a lock file for a read-modify-write (see the module docstring).

    Raises:
        LockError: another command held it for ``wait`` seconds (default ``wait_seconds()``), or
            the lock's directory cannot be opened.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    wait = wait_seconds() if wait is None else wait
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        raise refuse(str(path), "<root>", f"cannot lock its directory: {err.strerror}") from None
    try:
        deadline = time.monotonic() + wait
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise refuse(
                        str(path),
                        "<root>",
                        f"another modelplane command is changing this lock (waited {wait:g}s); run this "
                        f"one again once it has finished ({WAIT_ENV} sets how long to wait)",
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.2)
        yield
    finally:
        os.close(fd)

"""Stack files composed of several files: ``include:``, merged in a fixed order, origins kept.

Environments share most of their settings. A stack file may name other files under ``include``
(a path or a list of paths, relative to the including file); they are merged first, in the
order given (each with its own includes before it), and the including file last, on top:

- **mappings** merge key by key, recursively;
- **lists of named items** merge item by item: ``models`` by tenant and name, ``tenants`` and
  ``gpuPools`` by name; an item whose key is already there merges into it (recursively), a new
  one is appended, so items keep the order in which they first appear;
- **everything else** (a value, any other list such as ``rollout.steps`` or ``gates``) is
  replaced by the later file's.

Nothing can be removed by a later file: settings only some environments have belong in a file
only those environments include.

Each file is read by ``modelplane.stack_yaml`` with its own caps (size, nesting, aliases), one
after another, and dropped once merged; at most ``MAX_INCLUDED_FILES`` files, ``MAX_INCLUDE_DEPTH``
levels deep, each once, all inside the directory of the stack file named on the command line
(no absolute paths, no ``..`` out of it). A problem is reported against the file that set the
value, at its path in that file and its line (``FILE:LINE: path: message``); lines are found
only when there is a problem, by reading that file's YAML again, so merging many files costs
nothing for origins.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from modelplane.errors import StackError
from modelplane.stack_yaml import MAX_STACK_BYTES, problem_line, read_yaml
from modelplane.types import FieldPath

INCLUDE_KEY = "include"
MAX_INCLUDED_FILES = 1000
MAX_INCLUDE_DEPTH = 8

KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "models": ("tenant", "name"),
    "tenants": ("name",),
    "gpuPools": ("name",),
}
"""Top-level lists whose items merge by key, and the fields of the key."""

Reader = Callable[[str], tuple[bytes | None, str]]
"""Reads a file by its POSIX path: (its bytes or None when absent, its name in error messages)."""


@dataclass(frozen=True)
class Origin:
    """Where a value of a composed stack came from: the file, its path there, and its line."""

    source: str
    path: FieldPath
    line: int | None


@dataclass
class Composed:
    """A stack's data merged from its files, and what is needed to say where a value came from."""

    data: Any
    sources: list[str] = field(default_factory=list)
    """Every file's name in error messages, in merge order (the stack file last)."""
    paths: list[str] = field(default_factory=list)
    """Every file's POSIX path, in merge order."""
    _parts: list[Any] = field(default_factory=list)
    _raw: list[bytes] = field(default_factory=list)
    _items: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)
    """(section, merged index) -> (file index, index in that file) of each file that set the item."""

    @property
    def included(self) -> bool:
        """Whether the stack is made of more than its own file."""
        return len(self.sources) > 1

    def origin(self, path: FieldPath) -> Origin:
        """The file that set the value at ``path`` of the merged data (or the nearest thing that exists)."""
        best: tuple[int, int, FieldPath] | None = None  # (depth found, file index, path in the file)
        for index, local in self._candidates(path):
            depth = _existing_depth(self._parts[index], local)
            if best is None or depth > best[0]:
                best = (depth, index, local)
            if depth == len(local):
                break
        if best is None:
            return Origin(self.sources[-1], path, None)
        depth, index, local = best
        return Origin(self.sources[index], local, _line(self._raw[index], local[:depth]))

    def _candidates(self, path: FieldPath) -> list[tuple[int, FieldPath]]:
        """(file index, the path in that file) for every file that may hold ``path``, latest first."""
        if len(path) >= 2 and path[0] in KEYED_LISTS and isinstance(path[1], int):
            setters = self._items.get((str(path[0]), path[1]), [])
            return [(f, (path[0], j, *path[2:])) for f, j in reversed(setters)]
        return [(f, path) for f in reversed(range(len(self._parts)))]


def _existing_depth(data: Any, path: FieldPath) -> int:
    node = data
    for depth, part in enumerate(path):
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not found:
            return depth
        node = node[part]
    return len(path)


def _line(raw: bytes, path: FieldPath) -> int | None:
    """The line of ``path`` in a file already read once (so it parses), or None."""
    try:
        node = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError):  # pragma: no cover - the file was read once already
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)]
            if not match:
                return line
            key, node = match[-1]
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _key(section: str, item: Any) -> tuple[Any, ...] | None:
    fields = KEYED_LISTS[section]
    if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
        return None
    return tuple(item[f] for f in fields)


def _merge(base: Any, top: Any) -> Any:
    if isinstance(base, dict) and isinstance(top, dict):
        merged = dict(base)
        for key, value in top.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return top


class _Composer:
    def __init__(self, root: str, read: Reader) -> None:
        self.root = posixpath.dirname(root)
        self.read = read
        self.result = Composed(data={})
        self.seen: dict[str, str] = {}
        self.positions: dict[str, dict[tuple[Any, ...], int]] = {}

    def refuse(self, source: str, where: str, message: str) -> StackError:
        return StackError([problem_line(source, where, message)])

    def add(self, path: str, *, by: str | None, chain: tuple[str, ...]) -> None:
        raw, source = self.read(path)
        if raw is None:
            if by is None:
                raise self.refuse(source, "<root>", "no such file")
            raise self.refuse(by, INCLUDE_KEY, f"no such file: {path}")
        if len(raw) > MAX_STACK_BYTES:
            read_yaml(raw, source)  # reports the cap with its usual message
        data = _read_shared(raw, source)
        includes: list[str] = []
        if isinstance(data, dict) and INCLUDE_KEY in data:
            includes = self.includes(data[INCLUDE_KEY], source, path)
            data = {key: value for key, value in data.items() if key != INCLUDE_KEY}
        if len(chain) > MAX_INCLUDE_DEPTH:
            raise self.refuse(source, INCLUDE_KEY, f"includes nest deeper than {MAX_INCLUDE_DEPTH} levels")
        for included in includes:
            if included in chain or included == path:
                cycle = " -> ".join([*chain, path, included])
                raise self.refuse(source, INCLUDE_KEY, f"includes itself: {cycle}")
            if included in self.seen:
                raise self.refuse(
                    source, INCLUDE_KEY, f"{included} is included twice (first by {self.seen[included]})"
                )
            self.seen[included] = source
            if len(self.seen) >= MAX_INCLUDED_FILES:
                raise self.refuse(
                    source, INCLUDE_KEY, f"a stack is made of at most {MAX_INCLUDED_FILES} files"
                )
            self.add(included, by=source, chain=(*chain, path))
        if by is None and not includes:
            # A stack made of one file is its own data: nothing to merge, nothing to keep.
            self.result = Composed(data=data, sources=[source], paths=[path])
            return
        self.merge(data, source, path, raw)

    def includes(self, value: Any, source: str, path: str) -> list[str]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) and i for i in items):
            raise self.refuse(source, INCLUDE_KEY, "must be a file name or a list of file names")
        resolved = []
        for item in items:
            if posixpath.isabs(item):
                raise self.refuse(
                    source, INCLUDE_KEY, f"{item!r} must be relative to the file that includes it"
                )
            joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), item))
            inside = self.root in ("", ".") and not joined.startswith("../") and joined != ".."
            inside = inside or joined.startswith(self.root.rstrip("/") + "/")
            if not inside:
                raise self.refuse(
                    source,
                    INCLUDE_KEY,
                    f"{item!r} is outside {self.root or '.'}/, the stack file's directory",
                )
            resolved.append(joined)
        return resolved

    def merge(self, data: Any, source: str, path: str, raw: bytes) -> None:
        result = self.result
        index = len(result.sources)
        result.sources.append(source)
        result.paths.append(path)
        result._parts.append(data)
        result._raw.append(raw)
        if not isinstance(data, dict):
            if index == 0 or data is not None:
                result.data = data
            return
        if not isinstance(result.data, dict):
            result.data = {}
        merged = dict(result.data)
        for key, value in data.items():
            if key in KEYED_LISTS and isinstance(value, list):
                base = merged.get(key)
                if not isinstance(base, list):
                    base = []
                    self.positions[key] = {}
                merged[key] = self.merge_items(key, base, value, index)
            else:
                merged[key] = _merge(merged[key], value) if key in merged else value
        result.data = merged

    def merge_items(self, section: str, base: list[Any], items: list[Any], index: int) -> list[Any]:
        """Items of a keyed list merged into ``base`` (modified in place and returned).

        An item merges into one an earlier file set; two items with one key in the same file are
        both kept, so validation reports the duplicate.
        """
        positions = self.positions.setdefault(section, {})
        fresh: dict[tuple[Any, ...], int] = {}
        for j, item in enumerate(items):
            key = _key(section, item)
            if key is not None and key in positions and key not in fresh:
                at = positions[key]
                base[at] = _merge(base[at], item)
                fresh[key] = at
            else:
                at = len(base)
                base.append(item)
                if key is not None:
                    fresh.setdefault(key, at)
            self.result._items.setdefault((section, at), []).append((index, j))
        for key, at in fresh.items():
            positions.setdefault(key, at)
        return base


_SHARED_FILES = 64
_shared: dict[bytes, Any] = {}


def _read_shared(raw: bytes, source: str) -> Any:
    """A file's data, read once per content: the same bytes give the same (never modified) data.

    A preview reads a stack twice, at the base and at the head, and a big catalog's model files
    are mostly the same on both sides; each is read and checked once. Only data that read without
    a problem is kept (problems name the file that has them), for the last ``_SHARED_FILES`` files.
    """
    if raw in _shared:
        return _shared[raw]
    data = read_yaml(raw, source)
    if len(_shared) >= _SHARED_FILES:
        del _shared[next(iter(_shared))]
    _shared[raw] = data
    return data


def compose(path: str, read: Reader) -> Composed:
    """The stack at ``path`` with everything it includes merged in (see the module docstring).

    Raises:
        StackError: a file cannot be read or parsed, or an include is refused.
    """
    composer = _Composer(path, read)
    composer.add(path, by=None, chain=())
    return composer.result

"""Loading stack files: safe YAML, validation, defaults, and every problem reported at once.

A stack file is untrusted input that a pull request can change, so it is read as plain data
only (no language tags), capped in size and nesting, refused when aliases would expand it
past a sane size (the "billion laughs"), and refused when a mapping repeats a key (YAML would
silently keep the last). Validation problems come back together in one ``StackError``, one
line each and in file order: ``FILE: field.path: message (got VALUE)``. Paths are written as
in the file: camelCase keys, ``[i]`` for list items, ``["key"]`` for keys that are not plain
names (label keys, MIG profiles). Problems of the text itself, before there is a path, name
``line L, column C`` (or ``<root>``) instead.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from components.base import Problem, ProblemError
from components.errors import StackError
from components.serving_platform import CrossFieldError, ServingPlatformArgs

FieldPath = tuple[str | int, ...]

MAX_STACK_BYTES = 4 * 1024 * 1024
"""Largest stack file accepted. Even a 20,000-model catalog stays well under this."""

MAX_EXPANDED_NODES = 2_000_000
"""Largest number of YAML nodes after alias expansion; a billion-laughs file exceeds it at once."""

MAX_DEPTH = 200
"""Deepest nesting accepted. A real stack file nests fewer than 10 levels."""

# libyaml's composer recurses on the C stack and crashes the interpreter (SIGSEGV) somewhere
# past 20,000 levels of nesting. Text whose nesting could exceed this bound is parsed with
# the pure-Python loader instead, whose recursion is caught as a RecursionError.
_FAST_LOADER_MAX_NESTING = 1000
_FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)

_VALUE_WIDTH = 80
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_FLOW_BRACKET = re.compile(r"[\[\]{}]")
_INDENT = re.compile(r"^ +", re.MULTILINE)
_COMPACT_ENTRIES = re.compile(r"(?:[-?] +)+")
_DOCUMENT_MARKER = re.compile(r"^---(?:[ \t]|$)", re.MULTILINE)
_YAML_TAG = "tag:yaml.org,2002:"
_DATA_TAGS = frozenset(
    _YAML_TAG + t for t in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
_MERGE_TAG = _YAML_TAG + "merge"
_SCALAR_FAILURES = (ValueError, KeyError, TypeError, AttributeError, OverflowError, yaml.YAMLError)


def format_path(path: FieldPath) -> str:
    """Write a field path as the stack file spells it: ``models[2].labels["app.kubernetes.io/part-of"]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False, default=str)}]"
    return out or "<root>"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 3] + "..."
    return text


def _line(source: str, path: FieldPath | str, message: str, value: Any = None, show: bool = False) -> str:
    where = path if isinstance(path, str) else format_path(path)
    got = f" (got {_show(value)})" if show else ""
    # One problem, one line, whatever the file smuggles into a message.
    return f"{source}: {where}: {message}{got}".replace("\r", "\\r").replace("\n", "\\n")


# --- reading YAML -------------------------------------------------------------------------


class _RefusedError(Exception):
    """The document cannot be accepted at all; no point looking further."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


def _nesting_bound(text: str) -> int:
    """An upper bound of the document's nesting depth, found without parsing it.

    Each level of nesting takes an unclosed flow bracket, one more column of indentation,
    or a compact ``- ``/``? `` entry on the same line (which may open one mapping more).
    """
    depth = deepest = 0
    for match in _FLOW_BRACKET.finditer(text):
        depth = depth + 1 if match.group() in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    indent = max((len(m.group()) for m in _INDENT.finditer(text)), default=0)
    compact = max((len(m.group()) for m in _COMPACT_ENTRIES.finditer(text)), default=0)
    return deepest + indent + compact + 1


class _DocumentCheck:
    """Walks a composed YAML document before it becomes data.

    Collects language tags, values their tag cannot read, duplicate keys and non-scalar keys
    (all of them, with their paths), and stops at once when the document nests too deeply,
    refers to itself or expands past ``MAX_EXPANDED_NODES`` through aliases.
    """

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.sizes: dict[int, int] = {}
        self.open: set[int] = set()
        self.problems: list[tuple[FieldPath, str]] = []

    def size(self, node: yaml.Node, path: FieldPath, depth: int) -> int:
        """Nodes below and including ``node`` once aliases are expanded."""
        ident = id(node)
        if ident in self.sizes:
            return self.sizes[ident]
        if ident in self.open:
            raise _RefusedError(
                path, "a YAML alias refers to a collection that contains it; stack files cannot be recursive"
            )
        if depth > MAX_DEPTH:
            raise _RefusedError(path, f"nested deeper than {MAX_DEPTH} levels")
        total = 1
        if node.tag not in _DATA_TAGS:
            self.problems.append(
                (
                    path,
                    f"YAML tag {_short_tag(node.tag)!r} is not allowed; stack files hold plain data "
                    "(mappings, lists, strings, numbers, booleans)",
                )
            )
        elif isinstance(node, yaml.ScalarNode):
            try:
                self.loader.construct_object(node)
            except _SCALAR_FAILURES:
                self.problems.append((path, f"{node.value!r} is not a valid {_short_tag(node.tag)}"))
        else:
            self.open.add(ident)
            for child_path, child in self._children(node, path, depth):
                total += self.size(child, child_path, depth + 1)
                if total > MAX_EXPANDED_NODES:
                    raise _RefusedError(
                        (),
                        f"the document expands to more than {MAX_EXPANDED_NODES:,} YAML nodes once aliases "
                        "are resolved (an alias bomb?); a stack file needs far fewer",
                    )
            self.open.discard(ident)
        self.sizes[ident] = total
        return total

    def _children(self, node: yaml.Node, path: FieldPath, depth: int) -> list[tuple[FieldPath, yaml.Node]]:
        if isinstance(node, yaml.SequenceNode):
            return [((*path, i), child) for i, child in enumerate(node.value)]
        children: list[tuple[FieldPath, yaml.Node]] = []
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # `<<: *defaults` merges keys into this mapping; later keys may override them.
                children.append((path, value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _DATA_TAGS:
                self.problems.append(
                    (path, f"mapping keys must be plain names (line {key_node.start_mark.line + 1})")
                )
                continue
            try:
                key = self.loader.construct_object(key_node)
            except _SCALAR_FAILURES:
                key = key_node.value
            child_path = (*path, key if isinstance(key, str) else json.dumps(key, default=str))
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.problems.append(
                    (child_path, f"duplicate key (first at line {first_line[key]}, again at line {line})")
                )
            else:
                first_line[key] = line
            children.append((child_path, value_node))
        return children


def _text_position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _yaml_error_line(source: str, text: str, err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.reader.ReaderError):
        return _line(
            source,
            _text_position(text, err.position),
            f"YAML error: character U+{err.character:04X} is not allowed in YAML text",
        )
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<root>"
        problem = err.problem or err.context or "invalid YAML"
        if mark is not None and text[mark.index : mark.index + 1] == "\t":
            problem = "a tab character; YAML indents with spaces only"
        return _line(source, where, f"YAML error: {problem}")
    return _line(source, "<root>", f"YAML error: {err}")


def read_yaml(text_or_bytes: bytes, source: str) -> Any:
    """Parse one YAML document as plain data, safely (size, encoding, nesting, tags, keys, aliases).

    Raises:
        StackError: the text is not one acceptable YAML document; ``problems`` lists why.
    """
    if len(text_or_bytes) > MAX_STACK_BYTES:
        raise StackError(
            [
                _line(
                    source,
                    "<root>",
                    f"file is {len(text_or_bytes):,} bytes; stack files are limited to {MAX_STACK_BYTES:,}",
                )
            ]
        )
    try:
        text = text_or_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        where = _text_position(text_or_bytes[: err.start].decode("utf-8"), err.start)
        byte = text_or_bytes[err.start]
        raise StackError(
            [_line(source, where, f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")]
        ) from None
    fast = _FAST_LOADER is not None and _nesting_bound(text) <= _FAST_LOADER_MAX_NESTING
    loader = (_FAST_LOADER or yaml.SafeLoader)(text) if fast else yaml.SafeLoader(text)
    try:
        return _read_document(loader, text, source)
    finally:
        loader.dispose()


def _read_document(loader: yaml.SafeLoader, text: str, source: str) -> Any:
    try:
        node = loader.get_node() if loader.check_node() else None
        if node is not None and loader.check_node():
            marker = _DOCUMENT_MARKER.search(text, node.end_mark.index)
            line = text.count("\n", 0, marker.start()) + 1 if marker else node.end_mark.line + 1
            raise StackError(
                [
                    _line(
                        source,
                        "<root>",
                        f"a stack file holds one YAML document; another starts at line {line}",
                    )
                ]
            )
    except RecursionError:
        raise StackError([_line(source, "<root>", f"nested deeper than {MAX_DEPTH} levels")]) from None
    except yaml.YAMLError as err:
        raise StackError([_yaml_error_line(source, text, err)]) from None
    if node is None:
        return None
    check = _DocumentCheck(loader)
    try:
        check.size(node, (), 0)
    except _RefusedError as err:
        raise StackError([_line(source, err.path, err.message)]) from None
    if check.problems:
        raise StackError([_line(source, path, message) for path, message in check.problems])
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise StackError([_yaml_error_line(source, text, err)]) from None


# --- validation messages ------------------------------------------------------------------

_TYPE_WORDS: dict[str, str] = {
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "string_type": "a string",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def _alternatives(annotation: Any) -> list[Any]:
    """What an annotation allows, without ``Annotated`` wrappers and ``None``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _alternatives(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _alternatives(arg)]
    return [] if annotation is type(None) else [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """A model's field annotations by YAML key."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _literals(model: type[BaseModel], key: str) -> tuple[Any, ...]:
    annotation = _fields(model).get(key)
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _locate(loc: tuple[str | int, ...]) -> tuple[FieldPath, list[Any], list[Any]]:
    """Translate a pydantic error location into the file's path.

    Returns the path (union tags dropped, since they are not in the file), what may sit at
    the path, and what may hold its last key (for "did you mean").
    """
    path: list[str | int] = []
    options: list[Any] = [ServingPlatformArgs]
    holders: list[Any] = []
    for part in loc:
        if part == "[key]":
            continue
        flat = [t for option in options for t in _alternatives(option)]
        models = [t for t in flat if _is_model(t)]
        with_field = [m for m in models if isinstance(part, str) and part in _fields(m)]
        if with_field and isinstance(part, str):
            holders, options = flat, [_fields(m)[part] for m in with_field]
            path.append(part)
            continue
        if len(models) > 1 and isinstance(part, str):
            tagged = [m for m in models if any(part in _literals(m, key) for key in _fields(m))]
            if tagged:
                options = tagged
                continue
        containers = [t for t in flat if typing.get_origin(t) in (list, tuple, dict)]
        if containers:
            holders = flat
            options = [typing.get_args(t)[-1 if typing.get_origin(t) is dict else 0] for t in containers]
            path.append(part)
            continue
        if not models and len(flat) > 1 and isinstance(part, str):
            continue  # a member of a union of plain types ("str", "int"), not a key
        holders, options = flat, []
        path.append(part)
    return tuple(path), options, holders


def _did_you_mean(key: str | int, holders: list[Any]) -> tuple[str, str | None]:
    known = sorted({alias for m in holders if _is_model(m) for alias in _fields(m)})
    # Compare without case, so `TIER` and `minreplicas` find their key too.
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(str(key).lower(), sorted(by_lower), n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {by_lower[close[0]]!r}?", by_lower[close[0]]
    if known:
        return f"unknown field (allowed: {', '.join(known)})", None
    return "unknown field", None


def _tag_choices(options: list[Any], discriminator: str) -> str:
    models = [t for option in options for t in _alternatives(option) if _is_model(t)]
    return ", ".join(repr(v) for m in models for v in _literals(m, discriminator))


def _generic(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    for prefix in ("Input should ", "String should ", "List should ", "Dictionary should "):
        if msg.startswith(prefix):
            msg = "must " + msg[len(prefix) :]
    return msg[:1].lower() + msg[1:]


def _explain(error: Any) -> list[tuple[FieldPath, str, Any, bool]]:
    """(path, message, value, whether to show the value) for one pydantic error."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    scalar = not isinstance(value, (dict, list))
    path, options, holders = _locate(tuple(error["loc"]))
    cause = ctx.get("error")
    if isinstance(cause, (ProblemError, CrossFieldError)):
        problems: list[Problem] = cause.problems
        return [((*path, *p.path), p.message, p.value, p.value is not None) for p in problems]
    if kind == "missing":
        return [(path, "required field is missing", None, False)]
    if kind == "extra_forbidden":
        return [(path, _did_you_mean(path[-1], holders)[0], value, scalar)]
    if kind == "invalid_key":
        return [(path[:-1], "keys must be strings", value, True)]
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        choices = _tag_choices(options, discriminator)
        if kind == "union_tag_not_found":
            return [((*path, discriminator), f"required field is missing; one of {choices}", None, False)]
        return [((*path, discriminator), f"must be one of {choices}", ctx.get("tag"), True)]
    if kind in _TYPE_WORDS:
        message = f"must be {_TYPE_WORDS[kind]}"
        if kind == "string_type" and isinstance(value, (int, float)):
            message += f'; quote it: "{json.dumps(value)}"'
        elif value is None and kind in ("list_type", "tuple_type"):
            message += "; an empty value is null in YAML, write [] for an empty list"
        elif value is None and kind in ("dict_type", "model_type", "model_attributes_type"):
            message += "; an empty value is null in YAML, write {} for an empty mapping"
        return [(path, message, value, True)]
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        bound = ctx[key]
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return [(path, f"must be {words} {bound}", value, True)]
    if kind == "string_too_short" and ctx.get("min_length") == 1:
        return [(path, "must not be empty", value, True)]
    if kind == "literal_error":
        return [(path, f"must be {ctx['expected']}", value, True)]
    # A model validator names the values it compares; a field validator is shown what it got.
    model_level = any(_is_model(t) for option in options for t in _alternatives(option))
    return [(path, _generic(error["msg"]), value, scalar or not model_level)]


def _position(data: Any, path: FieldPath) -> tuple[int, ...]:
    """Where a path sits in the file: mappings keep the file's key order; absent keys sort last."""
    key: list[int] = []
    node = data
    for part in path:
        if isinstance(node, dict):
            if part not in node:
                key.append(len(node))
                break
            key.append(list(node).index(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key.append(part)
            node = node[part]
        else:
            break
    return tuple(key)


def _validation_lines(data: Any, source: str, err: ValidationError) -> list[str]:
    found = [item for error in err.errors(include_url=False) for item in _explain(error)]
    # A misspelt required key shows up twice: as unknown and as missing. Report the typo only.
    suggested = set()
    for error in err.errors(include_url=False):
        if error["type"] == "extra_forbidden":
            path, _, holders = _locate(tuple(error["loc"]))
            guess = _did_you_mean(path[-1], holders)[1]
            if guess is not None:
                suggested.add((*path[:-1], guess))
    kept = [item for item in found if not (item[1] == "required field is missing" and item[0] in suggested)]
    kept.sort(key=lambda item: _position(data, item[0]))
    lines = [_line(source, path, message, value, show) for path, message, value, show in kept]
    return list(dict.fromkeys(lines))


def parse_stack(data: Any, source: str) -> ServingPlatformArgs:
    """Validate already-parsed stack data; ``source`` names it in errors.

    Raises:
        StackError: the data is not a valid stack; ``problems`` lists every problem found.
    """
    if data is None:
        raise StackError(
            [_line(source, "<root>", "the file is empty; a stack file is a mapping with at least `stack`")]
        )
    if not isinstance(data, dict):
        raise StackError([_line(source, "<root>", "a stack file must be a mapping of sections", data, True)])
    try:
        # Keys are read by their camelCase names only, so each setting has one spelling in files.
        return ServingPlatformArgs.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as err:
        raise StackError(_validation_lines(data, source, err)) from None


def load_stack(path: str | Path) -> ServingPlatformArgs:
    """Load, validate and fill defaults of a stack file.

    Raises:
        StackError: the file cannot be read or is invalid; ``problems`` lists every problem.
    """
    path = Path(path)
    source = str(path)
    try:
        if path.stat().st_size > MAX_STACK_BYTES:
            # Refuse before reading: the size alone decides.
            size = path.stat().st_size
            raise StackError(
                [
                    _line(
                        source,
                        "<root>",
                        f"file is {size:,} bytes; stack files are limited to {MAX_STACK_BYTES:,}",
                    )
                ]
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StackError([_line(source, "<root>", "no such file")]) from None
    except IsADirectoryError:
        raise StackError([_line(source, "<root>", "is a directory, not a stack file")]) from None
    except OSError as err:
        raise StackError([_line(source, "<root>", f"cannot read: {err.strerror}")]) from None
    return parse_stack(read_yaml(raw, source), source)

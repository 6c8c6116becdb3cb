"""Reading a stack file's text as plain data, safely.

A stack file is untrusted input that a pull request can change. It is read as plain data
only (mappings, lists, strings, numbers, booleans; no language tags), capped in size and
nesting, refused when aliases would expand it past a sane size (the "billion laughs") or
refer to themselves, and refused when a mapping repeats a key (YAML would silently keep the
last). Every problem found in the document is reported at once with its path; problems of
the text itself, before there is a path, name ``line L, column C`` or ``<root>``.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from typing import Any

import yaml

from modelplane import credentials
from modelplane.base import format_path
from modelplane.errors import StackError
from modelplane.types import FieldPath

MAX_STACK_BYTES = 8 * 1024 * 1024
"""Largest stack file accepted: a 20,000-model catalog (about 4 MiB of YAML, 5-6 MiB of JSON) fits."""

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
_FLOW_BRACKET = re.compile(r"[\[\]{}]")
_COMPACT_ENTRIES = re.compile(r"(?:[-?] +)+")
_DOCUMENT_MARKER = re.compile(r"^---(?:[ \t]|$)", re.MULTILINE)
_YAML_TAG = "tag:yaml.org,2002:"
_DATA_TAGS = frozenset(
    _YAML_TAG + t for t in ("null", "bool", "int", "float", "str", "timestamp", "seq", "map")
)
_MERGE_TAG = _YAML_TAG + "merge"
_STR_TAG = _YAML_TAG + "str"
_SCALAR_FAILURES = (ValueError, KeyError, TypeError, AttributeError, OverflowError, yaml.YAMLError)


def show_value(value: Any) -> str:
    """A value as a problem line shows it: JSON for scalars (cut short), words for collections."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 3] + "..."
    return text


HIDDEN_VALUE = "a value not shown: it may be a credential"
"""What a problem line says instead of a value that looks like a credential."""

# Characters that would end a line or steer a terminal or CI log (ANSI escapes, the Unicode line
# and paragraph separators) and lone surrogates, which cannot be printed as UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r"}.get(char) or f"\\u{ord(char):04x}"


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters, line separators and lone surrogates escaped."""
    return _UNPRINTABLE.sub(_escape, text)


def _shown(value: Any, path: FieldPath | str) -> str:
    text = show_value(value)
    key = path[-1] if isinstance(path, tuple) and path else None
    if credentials.find(json.dumps(value, default=str)) or (
        isinstance(key, str) and credentials.is_secret_key(key)
    ):
        return HIDDEN_VALUE
    return text


def problem_line(
    source: str, path: FieldPath | str, message: str, value: Any = None, show: bool = False
) -> str:
    """One problem as the loader reports it: ``FILE: where: message``, and ``(got VALUE)`` when asked.

    The line never repeats a credential (a value that looks like one is not shown, and a
    message or path quoting one is redacted) and is always one printable line, whatever the
    file smuggles into it: a stack's strings end up in CI logs, where a line starting with
    ``::`` is a workflow command.
    """
    where = credentials.redact(path if isinstance(path, str) else format_path(path))
    got = f" (got {_shown(value, path)})" if show else ""
    return one_line(f"{source}: {where}: {credentials.redact(message)}{got}")


class _RefusedError(Exception):
    """The document cannot be accepted at all; no point looking further."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag


def nesting_bound(text: str) -> int:
    """An upper bound of the document's nesting depth, found without parsing it.

    Each level of nesting takes an unclosed flow bracket, one more column of indentation,
    or a compact ``- ``/``? `` entry on the same line (which may open one mapping more).
    """
    return _bracket_depth(text) + _deepest_indent(text) + _compact_depth(text) + 1


_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _bracket_depth(text: str) -> int:
    """The deepest run of unclosed flow brackets, a closer with none open counting as none.

    The depth after each bracket is ``max(previous + step, 0)``, which equals the running sum of
    the steps less its running minimum (with 0 before the first): computed in C, not per bracket.
    """
    steps = list(map(_BRACKET_STEP.__getitem__, _FLOW_BRACKET.findall(text)))
    if not steps:
        return 0
    sums = list(itertools.accumulate(steps, initial=0))
    lows = itertools.accumulate(sums, min)
    return int(max(map(operator.sub, sums, lows)))


def _deepest_indent(text: str) -> int:
    """The longest run of spaces starting a line (``max(len(m) for m in ^ +)``), by substring search."""
    probe = "\n" + text
    if "\n " not in probe:
        return 0
    low, high = 1, 2  # low spaces start some line; find a count that starts none
    while "\n" + " " * high in probe:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        if "\n" + " " * middle in probe:
            low = middle
        else:
            high = middle
    return low


def _compact_depth(text: str) -> int:
    """The longest run of compact ``- ``/``? `` entries (none without a ``-`` or ``?`` before a space)."""
    if "- " not in text and "? " not in text:
        return 0
    return max(map(len, _COMPACT_ENTRIES.findall(text)), default=0)


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
        elif isinstance(node, yaml.ScalarNode) and node.tag != _STR_TAG:
            # Strings, the bulk of a stack file, always read; other scalars may not.
            self._read_scalar(node, path)
        elif not isinstance(node, yaml.ScalarNode):
            self.open.add(ident)
            for child_path, child in self._children(node, path):
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

    def _read_scalar(self, node: yaml.Node, path: FieldPath) -> None:
        """Read a scalar now, so a value its tag cannot read (``!!int fast``, 2024-13-45) is a problem."""
        try:
            self.loader.construct_object(node)
        except _SCALAR_FAILURES:
            self.problems.append((path, f"{show_value(node.value)} is not a valid {_short_tag(node.tag)}"))

    def _children(self, node: yaml.Node, path: FieldPath) -> list[tuple[FieldPath, yaml.Node]]:
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
            key: Any = key_node.value
            if key_node.tag != _STR_TAG:
                try:
                    key = self.loader.construct_object(key_node)
                except _SCALAR_FAILURES:
                    self.problems.append(
                        (path, f"{show_value(key)} is not a valid {_short_tag(key_node.tag)}")
                    )
            child_path = (*path, _key_text(key))
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.problems.append(
                    (child_path, f"duplicate key (first at line {first_line[key]}, again at line {line})")
                )
            else:
                first_line[key] = line
            children.append((child_path, value_node))
        return children


def _key_text(key: Any) -> str:
    """A mapping key as a path part, spelt as YAML writes it (``true``, ``1``, ``2024-01-01``)."""
    if isinstance(key, str):
        return key
    return json.dumps(key) if key is None or isinstance(key, (bool, int, float)) else str(key)


def _text_position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _yaml_error_line(source: str, text: str, err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.reader.ReaderError):
        return problem_line(
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
        return problem_line(source, where, f"YAML error: {problem}")
    return problem_line(source, "<root>", f"YAML error: {err}")


def read_yaml(text_or_bytes: bytes, source: str) -> Any:
    """Parse one YAML document as plain data, safely (size, encoding, nesting, tags, keys, aliases).

    Raises:
        StackError: the text is not one acceptable YAML document; ``problems`` lists why.
    """
    if len(text_or_bytes) > MAX_STACK_BYTES:
        raise StackError(
            [
                problem_line(
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
            [problem_line(source, where, f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")]
        ) from None
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        data = _read_json(text)
        if data is not _NOT_JSON:
            return data
    fast = _FAST_LOADER is not None and nesting_bound(text) <= _FAST_LOADER_MAX_NESTING
    loader = (_FAST_LOADER or yaml.SafeLoader)(text) if fast else yaml.SafeLoader(text)
    try:
        return _read_document(loader, text, source)
    finally:
        loader.dispose()


_NOT_JSON = object()


class _DuplicateKeyError(ValueError):
    """A JSON object repeats a key."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyError
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


def _read_json(text: str) -> Any:
    """The document, when the text is strict JSON (a subset of YAML); ``_NOT_JSON`` otherwise.

    Generated catalogs of tens of thousands of models are often written as JSON, which parses
    an order of magnitude faster than YAML. JSON has no tags or aliases, so only duplicate keys,
    NaN/Infinity, huge integers and deep nesting need refusing; any of them, or text that is
    not JSON at all, falls back to the YAML reader, which reports the problem with its path.
    """
    try:
        return json.loads(
            text.lstrip("\ufeff"), object_pairs_hook=_json_object, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError):
        return _NOT_JSON


def _read_document(loader: yaml.SafeLoader, text: str, source: str) -> Any:
    try:
        node = loader.get_node() if loader.check_node() else None
        if node is not None and loader.check_node():
            marker = _DOCUMENT_MARKER.search(text, node.end_mark.index)
            line = text.count("\n", 0, marker.start()) + 1 if marker else node.end_mark.line + 1
            raise StackError(
                [
                    problem_line(
                        source,
                        "<root>",
                        f"a stack file holds one YAML document; another starts at line {line}",
                    )
                ]
            )
    except RecursionError:
        raise StackError([problem_line(source, "<root>", f"nested deeper than {MAX_DEPTH} levels")]) from None
    except yaml.YAMLError as err:
        raise StackError([_yaml_error_line(source, text, err)]) from None
    if node is None:
        return None
    plain, data = _plain_data(loader, node)
    if plain:
        return data
    check = _DocumentCheck(loader)
    try:
        check.size(node, (), 0)
    except _RefusedError as err:
        raise StackError([problem_line(source, err.path, err.message)]) from None
    if check.problems:
        raise StackError([problem_line(source, path, message) for path, message in check.problems])
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise StackError([_yaml_error_line(source, text, err)]) from None


# --- the fast path -------------------------------------------------------------------------------
# A stack file of tens of thousands of models is plain: strings, numbers and booleans in mappings
# and lists, no tags, aliases, merge keys or repeated keys. Such a document is turned into data in
# one walk that also checks it; the first thing that is not plain (or any problem) hands the whole
# document to the complete check above, which reports every problem with its path. The result of
# the fast path is exactly what PyYAML's safe constructor gives for the same document.

_INT_TAG = _YAML_TAG + "int"
_NULL_TAG = _YAML_TAG + "null"
_BOOL_TAG = _YAML_TAG + "bool"
_SEQ_TAG = _YAML_TAG + "seq"
_MAP_TAG = _YAML_TAG + "map"
_DECIMAL = re.compile(r"-?[1-9][0-9]{0,17}|0")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_BOOLS |= {k: v for k, v in yaml.constructor.SafeConstructor.bool_values.items()}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class _NotPlainError(Exception):
    """The document needs the complete check (a tag, an alias, a merge key, a problem...)."""


class _PlainBuilder:
    """Builds the data of a plain YAML document from its nodes, in one walk (see above)."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.nodes = 0
        self.seen: set[int] = set()

    def build(self, node: yaml.Node, depth: int) -> Any:
        kind = node.__class__
        tag = node.tag
        if kind is yaml.ScalarNode:
            value: str = node.value
            if tag == _STR_TAG:
                return value
            if tag == _INT_TAG and _DECIMAL.fullmatch(value):
                return int(value)
            if tag == _BOOL_TAG and value in _BOOLS:
                return _BOOLS[value]
            if tag == _NULL_TAG and value in _NULLS:
                return None
            if tag in _DATA_TAGS:
                try:
                    return self.loader.construct_object(node)
                except _SCALAR_FAILURES:
                    raise _NotPlainError from None
            raise _NotPlainError
        if depth >= MAX_DEPTH or id(node) in self.seen:
            raise _NotPlainError  # too deep, or an alias of a collection
        self.seen.add(id(node))
        items = node.value
        self.nodes += len(items)
        if self.nodes > MAX_EXPANDED_NODES:
            raise _NotPlainError
        if kind is yaml.SequenceNode and tag == _SEQ_TAG:
            return [self.build(item, depth + 1) for item in items]
        if kind is not yaml.MappingNode or tag != _MAP_TAG:
            raise _NotPlainError
        result: dict[Any, Any] = {}
        for key_node, value_node in items:
            if key_node.__class__ is not yaml.ScalarNode or key_node.tag != _STR_TAG:
                raise _NotPlainError  # a merge key, a non-string key, a collection as key
            key = key_node.value
            if key in result:
                raise _NotPlainError
            result[key] = self.build(value_node, depth + 1)
        return result


def _plain_data(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[bool, Any]:
    """(True, the data) when the document is plain, else (False, None): see the fast path above."""
    try:
        return True, _PlainBuilder(loader).build(node, 0)
    except (_NotPlainError, RecursionError):
        return False, None

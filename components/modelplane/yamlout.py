"""A small, fast, deterministic YAML writer for plain Kubernetes objects.

PyYAML's representer spends most of its time in Python even with the C emitter, and the
render path writes tens of thousands of objects; this writer handles exactly the data
objects are made of (dicts with string keys, lists, strings, ints, floats, bools, None) in
block style with sorted keys. A string is written plain only when PyYAML would read it back
as the same string; otherwise it is double-quoted with JSON escapes (valid YAML), or, when
it spans lines, as a literal block. ``yaml.safe_load(dump(x)) == x`` holds for every input
(a property test checks it).
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import yaml

_PLAIN = re.compile(r"^[A-Za-z0-9_./][A-Za-z0-9_./:=+@{}-]*$")
_RESOLVER = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
# Characters YAML cannot hold raw (outside its printable set) or would read as line breaks.
_ESCAPE = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _quoted(value: str) -> str:
    return _ESCAPE.sub(_escape, json.dumps(value, ensure_ascii=False))


@functools.lru_cache(maxsize=65536)
def _scalar_string(value: str) -> str:
    if (
        _PLAIN.fullmatch(value)
        and not value.endswith(":")
        and "{" not in value[:1]
        and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG  # type: ignore[no-untyped-call]
    ):
        return value
    return _quoted(value)


def _block_string(value: str, indent: str) -> str | None:
    """A literal block for a multi-line string, or None when one would not round-trip."""
    if "\n" not in value or "\r" in value or "\t" in value or _ESCAPE.search(value):
        return None
    body = value[:-1] if value.endswith("\n") else value
    if value.endswith("\n\n") or not body or body[0] == " " or body.endswith((" ", "\n")):
        return None
    lines = body.split("\n")
    if any(line != line.rstrip(" ") for line in lines):
        return None
    header = "|" if value.endswith("\n") else "|-"
    inner = indent + "  "
    return header + "".join("\n" + (inner + line if line else "") for line in lines)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        # YAML 1.1 reads a float only with a dot in the mantissa (1.0e-05, not 1e-05).
        mantissa, e, exponent = repr(value).partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        return mantissa + e + exponent
    if isinstance(value, str):
        return _scalar_string(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _write(value: Any, indent: str, out: list[str]) -> None:
    """Append ``value`` as the body following a key or dash (caller wrote the prefix)."""
    if isinstance(value, dict):
        if not value:
            out.append(" {}\n")
            return
        out.append("\n")
        _mapping(value, indent, out)
    elif isinstance(value, list):
        if not value:
            out.append(" []\n")
            return
        out.append("\n")
        _sequence(value, indent, out)
    elif isinstance(value, str) and "\n" in value:
        block = _block_string(value, indent[:-2] if indent else indent)
        out.append(" " + (block if block is not None else _scalar_string(value)) + "\n")
    else:
        out.append(" " + _scalar(value) + "\n")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"mapping keys must be strings, got {type(key).__name__}")
    return _scalar_string(key)


def _mapping(value: dict[str, Any], indent: str, out: list[str]) -> None:
    for key in sorted(value):
        out.append(f"{indent}{_key(key)}:")
        _write(value[key], indent + "  ", out)


def _sequence(value: list[Any], indent: str, out: list[str]) -> None:
    for item in value:
        if isinstance(item, dict) and item:
            keys = sorted(item)
            first, rest = keys[0], keys[1:]
            out.append(f"{indent}- {_key(first)}:")
            _write(item[first], indent + "    ", out)
            for key in rest:
                out.append(f"{indent}  {_key(key)}:")
                _write(item[key], indent + "    ", out)
        elif isinstance(item, list) and item:
            out.append(f"{indent}-")
            _write(item, indent + "  ", out)
        else:
            out.append(f"{indent}-")
            _write(item, indent + "  ", out)


def dump(value: Any) -> str:
    """One YAML document for ``value`` (a mapping, list or scalar), keys sorted."""
    out: list[str] = []
    if type(value) is dict and value:
        _fast_mapping(value, "", out)
        return "".join(out)
    return _dump_generic(value, out)


def _dump_generic(value: Any, out: list[str]) -> str:
    if isinstance(value, dict) and value:
        _mapping(value, "", out)
    elif isinstance(value, list) and value:
        _sequence(value, "", out)
    else:
        _write(value, "", out)
        out[0] = out[0].lstrip(" ")
    return "".join(out)


# --- the fast path -------------------------------------------------------------------------------
# Rendered objects are dicts, lists, strings, ints and booleans: the writer spends its time in
# calls per value. For exactly those types the walk below writes a whole line per key in one step,
# with the same text as the general functions above; anything else (another type, a multi-line
# string, a float) is written by them. A property test checks both give the same bytes.

_INLINE: dict[Any, str] = {None: "null", True: "true", False: "false"}


def _fast_mapping(value: dict[str, Any], indent: str, out: list[str]) -> None:
    append = out.append
    inner = indent + "  "
    for key in sorted(value):
        item = value[key]
        kind = type(item)
        if kind is str and "\n" not in item and type(key) is str:
            append(f"{indent}{_scalar_string(key)}: {_scalar_string(item)}\n")
        elif kind is dict and item and type(key) is str:
            append(f"{indent}{_scalar_string(key)}:\n")
            _fast_mapping(item, inner, out)
        elif kind is list and item and type(key) is str:
            append(f"{indent}{_scalar_string(key)}:\n")
            _fast_sequence(item, inner, out)
        elif (kind is int or kind is bool or item is None) and type(key) is str:
            text = _INLINE[item] if kind is not int else str(item)
            append(f"{indent}{_scalar_string(key)}: {text}\n")
        else:
            append(f"{indent}{_key(key)}:")
            _write(item, inner, out)


def _fast_sequence(value: list[Any], indent: str, out: list[str]) -> None:
    append = out.append
    for item in value:
        kind = type(item)
        if kind is str and "\n" not in item:
            append(f"{indent}- {_scalar_string(item)}\n")
        elif kind is dict and item and all(type(k) is str for k in item):
            # The first key follows the dash; the others line up under it.
            lines: list[str] = []
            _fast_mapping(item, indent + "  ", lines)
            first = lines[0]
            lines[0] = f"{indent}- {first[len(indent) + 2 :]}"
            out += lines
        else:
            _sequence([item], indent, out)

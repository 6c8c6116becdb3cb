"""Loading stack files: validation, defaults, and every problem reported at once, in file order.

The text is read by ``modelplane.stack_yaml`` (safe, plain data only); this module validates
the data against ``ServingPlatformArgs``, runs the cross-field rules (``modelplane.rules``), and
turns both into one line per problem: ``FILE: field.path: message (got VALUE)``. Paths are written as in the file:
camelCase keys, ``[i]`` for list items, ``["key"]`` for keys that are not plain names (label
keys, MIG profiles). Messages say what is wrong and, where it helps, what to write instead.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from modelplane import rules
from modelplane.base import Problem, format_path
from modelplane.errors import ProblemError, StackError
from modelplane.rules import Catalog, Omitted
from modelplane.runtimes import catalog_dir, load_catalog
from modelplane.serving_platform import ServingPlatformArgs
from modelplane.stack_include import Composed, Reader, compose
from modelplane.stack_yaml import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_STACK_BYTES,
    problem_line,
    read_yaml,
)
from modelplane.types import FieldPath

__all__ = [
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_STACK_BYTES",
    "compose_stack",
    "format_path",
    "load_stack",
    "parse_stack",
    "read_yaml",
]


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
_MISSING = "required field is missing"
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
    if isinstance(cause, ProblemError):
        problems: list[Problem] = cause.problems
        return [((*path, *p.path), p.message, p.value, p.value is not None) for p in problems]
    if kind == "missing":
        return [(path, _MISSING, None, False)]
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


_Item = tuple[FieldPath, str, Any, bool]
"""One problem before it becomes a line: path, message, value, whether to show the value."""

_PER_ITEM = ("models", "tenants")
"""Sections whose items the rules can run without, when an item's own fields are invalid."""


def _field_items(err: ValidationError) -> list[_Item]:
    found = [item for error in err.errors(include_url=False) for item in _explain(error)]
    # A misspelt required key shows up twice: as unknown and as missing. Report the typo only.
    suggested = set()
    for error in err.errors(include_url=False):
        if error["type"] == "extra_forbidden":
            path, _, holders = _locate(tuple(error["loc"]))
            guess = _did_you_mean(path[-1], holders)[1]
            if guess is not None:
                suggested.add((*path[:-1], guess))
    return [item for item in found if not (item[1] == _MISSING and item[0] in suggested)]


def _rule_items(found: list[Problem]) -> list[_Item]:
    return [(p.path, p.message, p.value, p.value is not None) for p in found]


def _lines(data: Any, source: str, items: list[_Item], composed: Composed | None = None) -> list[str]:
    """Problem lines in file order (the order of the file's keys and items), each once.

    For a stack made of several files (``include:``), each problem names the file that set the
    value, its path there and its line, and lines come in merge order, then line order.
    """
    if composed is None or not composed.included:
        items = sorted(items, key=lambda item: _position(data, item[0]))
        lines = [problem_line(source, path, message, value, show) for path, message, value, show in items]
        return list(dict.fromkeys(lines))
    located = []
    for path, message, value, show in items:
        origin = composed.origin(path)
        where = f"{origin.source}:{origin.line}" if origin.line is not None else origin.source
        order = (composed.sources.index(origin.source), origin.line or 0, _position(data, path))
        located.append((order, problem_line(where, origin.path, message, value, show)))
    return list(dict.fromkeys(line for _, line in sorted(located)))


def _valid_part(data: dict[str, Any], err: ValidationError) -> tuple[ServingPlatformArgs, Omitted] | None:
    """The stack without its invalid models and tenants, when nothing else is invalid.

    Unknown top-level keys are dropped too (they hold nothing the rules read). When any other
    section is invalid, the rules that read it cannot be trusted, so none run (None).
    """
    omitted: dict[str, set[int]] = {section: set() for section in _PER_ITEM}
    unknown: set[str] = set()
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        if len(loc) >= 2 and loc[0] in omitted and isinstance(loc[1], int):
            omitted[str(loc[0])].add(loc[1])
        elif len(loc) == 1 and error["type"] == "extra_forbidden":
            unknown.add(str(loc[0]))
        else:
            return None
    kept = {key: value for key, value in data.items() if key not in unknown}
    for section, indexes in omitted.items():
        if indexes:
            kept[section] = [item for i, item in enumerate(data[section]) if i not in indexes]
    try:
        stack = ServingPlatformArgs.model_validate(kept, by_alias=True, by_name=False)
    except ValidationError:  # pragma: no cover - what is left validated as part of the whole
        return None
    tenants = data.get("tenants") or []
    names = {
        item["name"]
        for i, item in enumerate(tenants)
        if i in omitted["tenants"] and isinstance(item, dict) and isinstance(item.get("name"), str)
    }
    return stack, Omitted(
        models=frozenset(omitted["models"]),
        tenants=frozenset(omitted["tenants"]),
        tenant_names=frozenset(names),
    )


def parse_stack(
    data: Any, source: str, *, catalog: Catalog | None = None, composed: Composed | None = None
) -> ServingPlatformArgs:
    """Validate already-parsed stack data; ``source`` names it in errors.

    Field validation first, then the cross-field rules (``modelplane.rules``) against the runtime
    ``catalog`` (default: ``load_catalog(catalog_dir())``), in one pass: the rules run over every
    model and tenant whose own fields are valid, so one run reports field errors, dangling
    references and bad combinations together, in file order. ``composed`` is the stack's files
    when it includes others (``modelplane.stack_include``): problems then name the file and line
    that set the value.

    Raises:
        StackError: the data is not a valid stack; ``problems`` lists every problem found.
        PlatformError: the runtime catalog cannot be read (an installation problem, not the stack's).
    """
    if data is None:
        raise StackError(
            [
                problem_line(
                    source, "<root>", "the file is empty; a stack file is a mapping with at least `stack`"
                )
            ]
        )
    if not isinstance(data, dict):
        raise StackError(
            [problem_line(source, "<root>", "a stack file must be a mapping of sections", data, True)]
        )
    catalog = catalog if catalog is not None else load_catalog(catalog_dir())
    try:
        # Keys are read by their camelCase names only, so each setting has one spelling in files.
        stack = ServingPlatformArgs.model_validate(data, by_alias=True, by_name=False)
    except ValidationError as err:
        items = _field_items(err)
        part = _valid_part(data, err)
        if part is not None:
            items += _rule_items(rules.problems(part[0], catalog=catalog, omitted=part[1]))
        raise StackError(_lines(data, source, items, composed)) from None
    try:
        rules.check(stack, catalog=catalog)
    except ProblemError as err:
        raise StackError(_lines(data, source, _rule_items(err.problems), composed)) from None
    return stack


def read_file(path: str) -> tuple[bytes | None, str]:
    """A stack file's bytes (None when it does not exist), capped at ``MAX_STACK_BYTES``.

    Raises:
        StackError: the path is a directory, cannot be read, or is too large.
    """
    source = path
    try:
        with open(path, "rb") as stream:
            # Read one byte past the limit, never more: the path may be a pipe or a device.
            raw = stream.read(MAX_STACK_BYTES + 1)
            size = os.fstat(stream.fileno()).st_size
    except FileNotFoundError:
        return None, source
    except IsADirectoryError:
        raise StackError([problem_line(source, "<root>", "is a directory, not a stack file")]) from None
    except OSError as err:
        raise StackError([problem_line(source, "<root>", f"cannot read: {err.strerror}")]) from None
    if len(raw) > MAX_STACK_BYTES:
        shown = f"{size:,} bytes" if size > MAX_STACK_BYTES else f"more than {MAX_STACK_BYTES:,} bytes"
        raise StackError(
            [
                problem_line(
                    source, "<root>", f"file is {shown}; stack files are limited to {MAX_STACK_BYTES:,}"
                )
            ]
        )
    return raw, source


def compose_stack(path: str | Path, *, read: Reader | None = None) -> Composed:
    """A stack file with the files it includes merged in (``modelplane.stack_include``).

    ``read`` reads a file by its path (default: from disk; a preview reads a Git revision).

    Raises:
        StackError: a file cannot be read or parsed, or an include is refused.
    """
    return compose(Path(path).as_posix(), read or read_file)


def stack_sources(path: str | Path) -> list[Path]:
    """Every file a stack is made of: those it includes, then the stack file itself."""
    return [Path(p) for p in compose_stack(path).paths]


def load_stack(
    path: str | Path, *, catalog: Catalog | None = None, read: Reader | None = None
) -> ServingPlatformArgs:
    """Load, validate and fill defaults of a stack file and what it includes (``parse_stack`` says how).

    Raises:
        StackError: a file cannot be read or is invalid; ``problems`` lists every problem.
    """
    composed = compose_stack(path, read=read)
    return parse_stack(composed.data, composed.sources[-1], catalog=catalog, composed=composed)

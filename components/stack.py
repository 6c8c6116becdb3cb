"""Loading stack files: safe YAML, validation, defaults, and every problem reported at once.

A stack file is untrusted input that a pull request can change, so it is read with a safe
loader (no arbitrary tags), capped in size, refused when aliases would expand it past a
sane size (the "billion laughs"), and refused when a mapping repeats a key (YAML would
silently keep the last). Validation problems come back together in one ``StackError``,
one line each: ``FILE: field.path: message (got VALUE)``.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from components.errors import StackError
from components.serving_platform import CrossFieldError, ServingPlatformArgs, _dotted

MAX_STACK_BYTES = 4 * 1024 * 1024
"""Largest stack file accepted. Even a 20,000-model catalog stays well under this."""

MAX_EXPANDED_NODES = 2_000_000
"""Largest number of YAML nodes after alias expansion; a billion-laughs file exceeds it at once."""

_VALUE_WIDTH = 80

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StackLoader(_Loader):  # type: ignore[misc,valid-type]
    """Safe YAML loader that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError as err:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be scalars", key_node.start_mark
                ) from err
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first at line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        result: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return result


def _expanded_size(root: Any) -> int:
    """Nodes the document has once aliases are expanded, stopping early past the cap."""
    memo: dict[int, int] = {}

    def size(value: Any, depth: int) -> int:
        if depth > 200:
            raise ValueError("nesting deeper than 200 levels")
        if isinstance(value, dict):
            children = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            children = value
        else:
            return 1
        ident = id(value)
        if ident in memo:
            return memo[ident]
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_EXPANDED_NODES:
                break
        memo[ident] = total
        return total

    return size(root, 0)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # pragma: no cover - default=str handles everything
        text = repr(value)
    if len(text) > _VALUE_WIDTH:
        text = text[: _VALUE_WIDTH - 3] + "..."
    return text


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation can hold, through Optional, Annotated, list and dict."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin in (list, tuple):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    if origin is dict:
        return _unwrap(typing.get_args(annotation)[1])
    return [annotation]


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _models_at(loc: tuple[str | int, ...]) -> list[type[BaseModel]]:
    """Models that can sit at a location of the stack file."""
    current: list[type[BaseModel]] = [ServingPlatformArgs]
    for part in loc:
        if isinstance(part, int):
            continue
        candidates = [m for m in current if part in _aliases(m)]
        if not candidates:
            # A discriminated union puts the tag in the path: keep the member it names.
            tagged = [m for m in current if any(_tag_matches(m, part) for _ in [0])]
            if tagged:
                current = tagged
                continue
            return []
        nxt: list[type[BaseModel]] = []
        for model in candidates:
            for t in _unwrap(_aliases(model)[part]):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    nxt.append(t)
        current = nxt
    return current


def _tag_matches(model: type[BaseModel], tag: str) -> bool:
    info = model.model_fields.get("mode")
    if info is None:
        return False
    return tag in typing.get_args(info.annotation)


def _did_you_mean(loc: tuple[str | int, ...]) -> str:
    known = sorted({a for m in _models_at(loc[:-1]) for a in _aliases(m)})
    guess = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    if guess:
        return f"unknown field; did you mean {guess[0]!r}?"
    if known:
        return f"unknown field (allowed: {', '.join(known)})"
    return "unknown field"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _did_you_mean(tuple(error["loc"]))
    if kind == "missing":
        return "required field is missing"
    msg: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return msg[:1].lower() + msg[1:]


def _validation_lines(source: str, err: ValidationError) -> list[str]:
    lines: list[str] = []
    for error in err.errors(include_url=False):
        loc = tuple(error["loc"])
        cross = (error.get("ctx") or {}).get("error")
        if isinstance(cross, CrossFieldError):
            for problem in cross.problems:
                got = "" if problem.value is None else f" (got {_show(problem.value)})"
                lines.append(f"{source}: {_dotted((*loc, *problem.path))}: {problem.message}{got}")
            continue
        path = _dotted(loc) or "<root>"
        got = "" if error["type"] == "missing" else f" (got {_show(error.get('input'))})"
        lines.append(f"{source}: {path}: {_message(error)}{got}")
    return lines


def parse_stack(data: Any, source: str) -> ServingPlatformArgs:
    """Validate already-parsed stack data; ``source`` names it in errors."""
    if data is None:
        raise StackError(
            [f"{source}: <root>: the file is empty; a stack file is a mapping with at least `stack`"]
        )
    if not isinstance(data, dict):
        raise StackError(
            [f"{source}: <root>: a stack file must be a mapping of sections (got {_show(data)})"]
        )
    try:
        return ServingPlatformArgs.model_validate(data)
    except ValidationError as err:
        raise StackError(_validation_lines(source, err)) from None


def read_yaml(text_or_bytes: bytes, source: str) -> Any:
    """Parse one YAML document safely (size, encoding, duplicate keys, tags, alias expansion)."""
    if len(text_or_bytes) > MAX_STACK_BYTES:
        raise StackError(
            [
                f"{source}: <root>: file is {len(text_or_bytes):,} bytes; stack files are limited to {MAX_STACK_BYTES:,}"
            ]
        )
    try:
        text = text_or_bytes.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StackError([f"{source}: <root>: not UTF-8 text (invalid byte at offset {err.start})"]) from None
    try:
        documents = list(yaml.load_all(text, Loader=_StackLoader))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<root>"
        problem = err.problem or err.context or "invalid YAML"
        raise StackError([f"{source}: {where}: YAML error: {problem}"]) from None
    except yaml.YAMLError as err:
        raise StackError([f"{source}: <root>: YAML error: {err}"]) from None
    if len(documents) > 1:
        raise StackError([f"{source}: <root>: a stack file holds one YAML document (found {len(documents)})"])
    data = documents[0] if documents else None
    try:
        nodes = _expanded_size(data)
    except (ValueError, RecursionError) as err:
        raise StackError([f"{source}: <root>: {err}"]) from None
    if nodes > MAX_EXPANDED_NODES:
        raise StackError(
            [
                f"{source}: <root>: YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)"
            ]
        )
    return data


def load_stack(path: str | Path) -> ServingPlatformArgs:
    """Load, validate and fill defaults of a stack file.

    Raises:
        StackError: the file cannot be read or is invalid; ``problems`` lists every problem.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise StackError([f"{source}: <root>: no such file"]) from None
    except IsADirectoryError:
        raise StackError([f"{source}: <root>: is a directory, not a stack file"]) from None
    except OSError as err:
        raise StackError([f"{source}: <root>: cannot read: {err.strerror}"]) from None
    return parse_stack(read_yaml(raw, source), source)

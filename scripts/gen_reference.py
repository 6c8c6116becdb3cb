#!/usr/bin/env python3
"""Generate the stack-file reference (``docs/stack-reference.md``) from the stack-file models.

The reference is written from the models themselves (YAML keys, types, defaults, limits and
each field's ``description``), so it says exactly what the loader accepts. The output is
deterministic: the same models give byte-identical Markdown, and ``tests/test_reference_doc.py``
fails when the committed file is out of date.

Usage: ``python scripts/gen_reference.py`` rewrites the file; ``--check`` only reports whether
it is current (exit 1 when stale).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import json
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from modelplane import types as field_types  # noqa: E402
from modelplane.serving_platform import ServingPlatformArgs  # noqa: E402

OUTPUT = ROOT / "docs" / "stack-reference.md"
"""Where the reference is committed."""

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:+-]*$")


@dataclass
class Section:
    """One model of the schema and where it sits in a stack file."""

    model: type[BaseModel]
    paths: list[str] = field(default_factory=list)
    variant: tuple[str, str] | None = None
    """For a member of a tagged union: (discriminator key, tag)."""

    @property
    def selector(self) -> str | None:
        """``key: tag`` for a member of a tagged union."""
        return f"{self.variant[0]}: {self.variant[1]}" if self.variant else None

    @property
    def anchor(self) -> str:
        """The HTML anchor of the section."""
        return self.model.__name__.lower()


def _yaml_key(name: str, info: FieldInfo) -> str:
    return info.alias or name


def _split(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """An annotation without ``Annotated``, and the metadata it carried."""
    while typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        annotation, metadata = base, [*extra, *metadata]
    flat: list[Any] = []
    for item in metadata:
        flat.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return annotation, flat


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _named_types() -> dict[tuple[Callable[..., Any], ...], str]:
    """The reusable field types of ``modelplane.types``, keyed by their validator functions."""
    named: dict[tuple[Callable[..., Any], ...], str] = {}
    for name, value in sorted(vars(field_types).items()):
        if name.startswith("_") or typing.get_origin(value) is not typing.Annotated:
            continue
        funcs = tuple(m.func for m in _split(value, [])[1] if hasattr(m, "func"))
        if funcs:
            named[funcs] = name
    return named


def _type_docs() -> dict[str, str]:
    """The docstring written under each ``Name = Annotated[...]`` in ``components/modelplane/types.py``."""
    tree = ast.parse(inspect.getsource(field_types))
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(tree.body):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.targets[0].id] = " ".join(after.value.value.split())
    return docs


class Reference:
    """Walks ``ServingPlatformArgs`` and writes its reference."""

    def __init__(self) -> None:
        self.sections: dict[type[BaseModel], Section] = {}
        self.named = _named_types()
        self.used_types: set[str] = set()
        self._collect(ServingPlatformArgs, "", None)

    # -- walking ---------------------------------------------------------------------------

    def _collect(self, model: type[BaseModel], path: str, variant: tuple[str, str] | None) -> None:
        section = self.sections.get(model)
        if section is None:
            section = self.sections[model] = Section(model, variant=variant)
        if path not in section.paths:
            section.paths.append(path)
        for name, info in model.model_fields.items():
            key = _yaml_key(name, info)
            child = f"{path}.{key}" if path else key
            self._collect_annotation(info.annotation, child, info.discriminator)

    def _collect_annotation(self, annotation: Any, path: str, discriminator: Any) -> None:
        annotation, _ = _split(annotation, [])
        origin = typing.get_origin(annotation)
        if origin in (list, tuple):
            self._collect_annotation(typing.get_args(annotation)[0], f"{path}[]", None)
        elif origin is dict:
            self._collect_annotation(typing.get_args(annotation)[1], f"{path}.*", None)
        elif len(_members(annotation)) > 1 or annotation is not _members(annotation)[0]:
            for member in _members(annotation):
                tag = _tag(member, discriminator)
                self._collect_annotation_member(member, path, tag)
        elif _is_model(annotation):
            self._collect(annotation, path, None)

    def _collect_annotation_member(self, member: Any, path: str, variant: tuple[str, str] | None) -> None:
        member, _ = _split(member, [])
        if _is_model(member):
            self._collect(member, path, variant)
        else:
            self._collect_annotation(member, path, None)

    # -- rendering -------------------------------------------------------------------------

    def type_of(self, annotation: Any, metadata: list[Any], path: str, discriminator: Any = None) -> str:
        """The type column of the field at ``path``: its shape, named type, and limits."""
        annotation, metadata = _split(annotation, metadata)
        members = _members(annotation)
        if len(members) > 1 or annotation is not members[0]:
            if all(_is_model(_split(m, [])[0]) for m in members) and discriminator:
                sections = [self.sections[_split(m, [])[0]] for m in members]
                links = ", ".join(f"[`{s.selector or s.model.__name__}`](#{s.anchor})" for s in sections)
                return f"mapping, one of: {links}"
            rendered = [self.type_of(m, metadata if len(members) == 1 else [], path) for m in members]
            return " or ".join(rendered)
        funcs = tuple(m.func for m in metadata if hasattr(m, "func"))
        limits = _limits(metadata, annotation)
        origin = typing.get_origin(annotation)
        if funcs in self.named:
            name = self.named[funcs]
            self.used_types.add(name)
            base = f"[{name}](#{name.lower()})"
        elif origin is typing.Literal:
            base = " \\| ".join(f"`{_flow(v)}`" for v in typing.get_args(annotation))
        elif origin in (list, tuple):
            base = f"list of {self.type_of(typing.get_args(annotation)[0], [], f'{path}[]')}"
        elif origin is dict:
            key, value = typing.get_args(annotation)
            base = f"mapping of {self.type_of(key, [], path)} to {self.type_of(value, [], f'{path}.*')}"
        elif _is_model(annotation):
            base = f"[`{path}`](#{self.sections[annotation].anchor})"
        else:
            base = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
                annotation, getattr(annotation, "__name__", str(annotation))
            )
        return f"{base}, {limits}" if limits else base

    def default_of(self, info: FieldInfo) -> str:
        """The default column of a field."""
        if info.default_factory is not None:
            value = info.default_factory()  # type: ignore[call-arg]
        elif info.default is PydanticUndefined:
            return "**required**"
        else:
            value = info.default
        if value is None:
            return "unset"
        if isinstance(value, BaseModel) and info.default_factory is type(value):
            return "its defaults"
        return f"`{_flow(_plain(value))}`"

    def section_markdown(self, section: Section) -> Iterator[str]:
        """The Markdown of one section."""
        model = section.model
        yield f'<a id="{section.anchor}"></a>'
        yield ""
        yield f"## {_title(section)}"
        yield ""
        yield _cell_text(inspect.getdoc(model) or "")
        yield ""
        if section.selector is not None:
            yield f"Selected by `{section.selector}`."
            yield ""
        if len(section.paths) > 1:
            where = ", ".join(f"`{p}`" for p in section.paths)
            yield f"Used at: {where}."
            yield ""
        yield "| Key | Type | Default | Description |"
        yield "|---|---|---|---|"
        for name, info in model.model_fields.items():
            key = _yaml_key(name, info)
            child = f"{section.paths[0]}.{key}" if section.paths[0] else key
            kind = self.type_of(info.annotation, list(info.metadata), child, info.discriminator)
            description = _cell_text(info.description or "")
            yield f"| `{key}` | {_cell(kind)} | {_cell(self.default_of(info))} | {_cell(description)} |"
        yield ""

    def markdown(self) -> str:
        """The whole reference."""
        sections = list(self.sections.values())
        body = [line for section in sections for line in self.section_markdown(section)]
        lines = [
            "# Stack file reference",
            "",
            "<!-- Generated by scripts/gen_reference.py from the stack-file models; do not edit by hand. -->",
            "",
            "A stack file (`stacks/<stack>.yaml`) describes one environment of the serving platform.",
            "Keys are camelCase; every key not marked **required** may be left out, and then takes",
            "the default shown. Unknown keys are refused, so a typo is an error rather than a",
            "setting silently ignored. Check a file with `modelplane validate FILE`.",
            "",
            "## Contents",
            "",
            *[f"- [{_title(s)}](#{s.anchor})" for s in sections],
            "- [Value types](#value-types)",
            "",
            *body,
            *self.value_types_markdown(),
        ]
        return "\n".join(lines).rstrip("\n") + "\n"

    def value_types_markdown(self) -> Iterator[str]:
        """The section on the reusable value types the schema uses."""
        docs = _type_docs()
        yield '<a id="value-types"></a>'
        yield ""
        yield "## Value types"
        yield ""
        yield "Reusable types with their own rules, checked wherever they appear."
        yield ""
        for name in sorted(self.used_types):
            yield f'<a id="{name.lower()}"></a>'
            yield ""
            yield f"### {name}"
            yield ""
            yield _cell_text(docs.get(name, ""))
            yield ""


def _tag(member: Any, discriminator: Any) -> tuple[str, str] | None:
    member, _ = _split(member, [])
    if not (_is_model(member) and isinstance(discriminator, str)):
        return None
    info = member.model_fields.get(discriminator)
    if info is None or typing.get_origin(info.annotation) is not typing.Literal:
        return None
    return (_yaml_key(discriminator, info), str(typing.get_args(info.annotation)[0]))


def _title(section: Section) -> str:
    first = section.paths[0]
    if section.selector is not None:
        return f"{first} ({section.selector})"
    return first or "Top level"


def _limits(metadata: list[Any], annotation: Any) -> str:
    by_type = {type(m): m for m in metadata}
    ge, gt = by_type.get(annotated_types.Ge), by_type.get(annotated_types.Gt)
    le, lt = by_type.get(annotated_types.Le), by_type.get(annotated_types.Lt)
    low = f"at least {_flow(ge.ge)}" if ge else f"greater than {_flow(gt.gt)}" if gt else ""
    high = f"at most {_flow(le.le)}" if le else f"less than {_flow(lt.lt)}" if lt else ""
    words = [f"{_flow(ge.ge)} to {_flow(le.le)}"] if ge and le else [w for w in (low, high) if w]
    unit = "characters" if annotation is str else "items"
    shortest = max((m.min_length for m in metadata if isinstance(m, annotated_types.MinLen)), default=0)
    longest = min((m.max_length for m in metadata if isinstance(m, annotated_types.MaxLen)), default=None)
    if shortest and longest is not None:
        words.append(f"{shortest} to {longest} {unit}")
    elif shortest:
        words.append(f"at least {shortest} {unit}")
    elif longest is not None:
        words.append(f"at most {longest} {unit}")
    words += [f"matching `{m.pattern}`" for m in metadata if isinstance(getattr(m, "pattern", None), str)]
    return ", ".join(words)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _flow(value: Any) -> str:
    """A value in YAML flow style, as a stack file would write it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value if _PLAIN.match(value) and value not in ("true", "false", "null") else json.dumps(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return json.dumps(value, default=str)


def _cell_text(text: str) -> str:
    """One line of Markdown from a docstring or description (reST ``code`` becomes `code`)."""
    return " ".join(text.replace("``", "`").split())


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return re.sub(r"(?<!\\)\|", r"\\|", _cell_text(text))


def render() -> str:
    """The reference as Markdown."""
    return Reference().markdown()


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the reference; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is out of date")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help="file to write")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output}: out of date; run python scripts/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

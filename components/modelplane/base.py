"""The base of every stack-file model, and the one way a problem and its field path are written.

Stack files are written in camelCase, Python uses snake_case; models are frozen so a
validated stack can be shared and diffed safely, and unknown keys are refused so a typo
is an error instead of a silently ignored setting. A ``Problem`` is one finding at a field
path; ``format_path`` spells that path as the file does, for stacks, locks and diffs alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from modelplane.types import FieldPath

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class StrictModel(BaseModel):
    """A frozen pydantic model with camelCase aliases that refuses unknown keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=False,
        validate_default=True,
    )


def format_path(path: FieldPath) -> str:
    """Write a field path as a file spells it: ``models[2].labels["app.kubernetes.io/part-of"]``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False, default=str)}]"
    return out or "<root>"


@dataclass(frozen=True)
class Problem:
    """One problem of a stack: where (path in the file), what, and the offending value."""

    path: FieldPath
    message: str
    value: Any = None

    def under(self, prefix: FieldPath) -> Problem:
        """The same problem with its path below ``prefix`` (a part's rule finds it relative to its own args)."""
        return Problem((*prefix, *self.path), self.message, self.value)

    def __str__(self) -> str:
        return f"{format_path(self.path)}: {self.message}"

"""The base of every stack-file model.

Stack files are written in camelCase, Python uses snake_case; models are frozen so a
validated stack can be shared and diffed safely, and unknown keys are refused so a typo
is an error instead of a silently ignored setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


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


@dataclass(frozen=True)
class Problem:
    """One cross-field problem of a stack: where (path in the file), what, and the offending value."""

    path: tuple[str | int, ...]
    message: str
    value: Any = None


@dataclass
class Contribution:
    """What one part of the platform adds to a stack's render."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    charts: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class ProblemError(ValueError):
    """Problems a model validator found, each at its own path below the model being validated."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{'.'.join(map(str, p.path))}: {p.message}" for p in self.problems))

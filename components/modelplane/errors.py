"""The exceptions modelplane raises.

One root, ``PlatformError``, so callers can catch everything the library means to raise,
and a few leaves named for what went wrong. The CLI turns every ``PlatformError`` into
exit code 2 with its message; anything else is a bug and exits 1. ``PlatformError`` is a
``ValueError``, so a model validator may raise ``ProblemError`` and pydantic reports it.
"""

from __future__ import annotations

from modelplane.base import Problem


class PlatformError(ValueError):
    """Root of every error modelplane raises on purpose."""


class ProblemError(PlatformError):
    """Problems found in a stack's values, each at its own field path; ``problems`` holds them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(map(str, self.problems)))


class StackError(PlatformError):
    """A stack file is unreadable or invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class RenderError(PlatformError):
    """Rendered output could not be produced or written."""


class RolloutError(PlatformError):
    """A rollout command or lock file is invalid for the current rollout state."""


class LockError(PlatformError):
    """A lock file is unreadable, corrupt or does not match its schema; ``problems`` holds one line per problem."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class CapacityError(PlatformError):
    """A stack does not fit its pools at minimum replicas."""


class PreviewError(PlatformError):
    """A preview could not read its base revision or files."""

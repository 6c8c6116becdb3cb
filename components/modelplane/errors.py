"""The exceptions modelplane raises.

One root, ``PlatformError``, so callers can catch everything the library means to raise,
and a few leaves named for what went wrong. The CLI turns every ``PlatformError`` into
exit code 2 with its message; anything else is a bug and exits 1.
"""

from __future__ import annotations


class PlatformError(ValueError):
    """Root of every error modelplane raises on purpose."""


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
    """A lock file is unreadable, corrupt or does not match its schema."""


class CapacityError(PlatformError):
    """A stack does not fit its pools at minimum replicas."""


class PreviewError(PlatformError):
    """A preview could not read its base revision or files."""

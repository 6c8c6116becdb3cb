"""The base of every stack-file model.

Stack files are written in camelCase, Python uses snake_case; models are frozen so a
validated stack can be shared and diffed safely, and unknown keys are refused so a typo
is an error instead of a silently ignored setting.
"""

from __future__ import annotations

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

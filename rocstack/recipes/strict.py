"""The base of every recipe and stack model: strict (unknown fields are errors) and frozen."""

from pydantic import BaseModel, ConfigDict

NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"  # component, stack, check and toolchain names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

"""Shared configuration of the predicate models.

Signed payloads are parsed strictly (unknown fields are an error, so a verifier never silently
ignores a claim it does not understand) and written with the camelCase names of the wire format.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """A strict, immutable model whose JSON names are camelCase."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict in wire names, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

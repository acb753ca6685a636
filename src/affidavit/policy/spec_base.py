"""The base of the policy CRDs' models: strict, immutable, camelCase on the wire.

Every spec model (``model.py``, ``signer_model.py``) derives from ``SpecModel``, so each one
refuses unknown fields (a typo in a policy must never silently weaken it) and each field's
docstring becomes its CRD description. ``cel`` writes a schema's CEL validation rules, which the
kube-apiserver checks at admission of the policy object itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class SpecModel(BaseModel):
    """Strict, immutable, camelCase on the wire.

    Each field's docstring is its description in the generated CRD, so ``kubectl explain``
    reads the same text as this file (a test fails when a field has none).
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

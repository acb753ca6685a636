"""``VerifiedAttestation.parsed``: a verified predicate is validated once per attestation (the
webhook's rules and the decision snapshot share the parse of a cached provenance), a predicate
that does not validate raises every time, and equality still compares the signed fields only."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    AiProvenance,
    CodeReview,
)
from policy_builders import att, provenance, review


def test_a_predicate_is_validated_once_per_attestation() -> None:
    prov = att(AI_PROVENANCE_V1, provenance())
    first = prov.parsed(AiProvenance)
    assert prov.parsed(AiProvenance) is first
    assert first == AiProvenance.model_validate(prov.predicate)
    assert prov == att(AI_PROVENANCE_V1, provenance())  # the memo is no field
    rev = att(CODE_REVIEW_V1, review())
    assert rev.parsed(CodeReview) is rev.parsed(CodeReview)


def test_a_predicate_that_does_not_validate_raises_each_time() -> None:
    broken = att(AI_PROVENANCE_V1, {"changes": "?"})
    for _ in range(2):
        with pytest.raises(ValidationError):
            broken.parsed(AiProvenance)

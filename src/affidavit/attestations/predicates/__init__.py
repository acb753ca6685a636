"""Predicate types Affidavit defines, as strict models (their JSON Schemas live in attestations/)."""

from affidavit.attestations.predicates.provenance import AI_PROVENANCE_V1, AiProvenance
from affidavit.attestations.predicates.review import CODE_REVIEW_V1, CodeReview

SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"

__all__ = ["AI_PROVENANCE_V1", "CODE_REVIEW_V1", "SLSA_PROVENANCE_V1", "AiProvenance", "CodeReview"]

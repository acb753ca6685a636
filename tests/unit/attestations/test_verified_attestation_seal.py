"""A VerifiedAttestation cannot be made outside verification.

The policy engine trusts what a VerifiedAttestation says; if any module could build one from
unsigned JSON, a what-if path or a careless caller could hand the webhook a statement nobody
signed. The constructor demands the verifier's seal, and only the verifier holds it.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, TypedDict

import pytest

from affidavit.attestations.evidence import (
    AssumedAttestation,
    ImageEvidence,
    Storage,
    VerifiedAttestation,
)


class Fields(TypedDict):
    """An attestation's fields, as its constructor takes them (all but the seal)."""

    predicate_type: str
    subject_name: str
    subject_digest: str
    predicate: dict[str, Any]
    envelope_digest: str
    signer: str
    storage: Storage


SRC = Path(__file__).resolve().parents[3] / "src" / "affidavit"
FIELDS: Fields = {
    "predicate_type": "https://affidavit.dev/ai-provenance/v1",
    "subject_name": "127.0.0.1:5000/app",
    "subject_digest": "sha256:" + "ab" * 32,
    "predicate": {},
    "envelope_digest": "sha256:" + "cd" * 32,
    "signer": "ci",
    "storage": "cosign-tag",
}


def test_building_one_without_the_verifiers_seal_fails() -> None:
    with pytest.raises(TypeError, match=r"comes only from affidavit\.attestations\.verify"):
        VerifiedAttestation(**FIELDS)
    with pytest.raises(TypeError, match=r"comes only from affidavit\.attestations\.verify"):
        VerifiedAttestation(**FIELDS, seal=object())


def test_assumed_statements_are_weighed_but_never_called_verified() -> None:
    assumed = AssumedAttestation(**FIELDS)
    evidence = ImageEvidence("127.0.0.1:5000/app", FIELDS["subject_digest"], assumed=(assumed,))
    assert evidence.verified == ()
    assert evidence.statements == (assumed,)
    assert evidence.newest(FIELDS["predicate_type"]) is assumed


def test_only_the_verifier_uses_the_seal() -> None:
    users = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(
            isinstance(n, ast.Name | ast.alias) and "_SEAL" in ast.dump(n) for n in ast.walk(tree)
        ):
            users.add(path.relative_to(SRC).as_posix())
    assert users == {"attestations/evidence.py", "attestations/verify.py"}

"""Signing what an auditor takes away: the report and the evidence pack, with the ledger key.

A report or a pack that anyone could have edited after Affidavit wrote it is a claim, not
evidence. Both are signed as an in-toto Statement v1 whose subjects are the files (name and
sha256), wrapped in DSSE and signed with the same Ed25519 ledger key that signs the checkpoints
(``affidavit keygen --ledger-key``), so one public key checks the chain and what was said about
it. The envelope is the ordinary DSSE JSON: ``openssl pkeyutl -verify -rawin`` checks it over the
PAE bytes, ``sha256sum`` the files (see the pack's README.txt).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from affidavit.attestations.dsse import (
    PAYLOAD_TYPE_INTOTO,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from affidavit.attestations.keys import PrivateKeySigner, Verifier, keyid_of
from affidavit.errors import VerificationError
from affidavit.ledger.checkpoint import load_private_key, load_public_key

STATEMENT = "https://in-toto.io/Statement/v1"
REPORT_PREDICATE = "https://affidavit.dev/audit/coverage-report/v1"
PACK_PREDICATE = "https://affidavit.dev/audit/evidence-pack/v1"

__all__ = [
    "PACK_PREDICATE",
    "REPORT_PREDICATE",
    "ledger_signer",
    "ledger_verifier",
    "sign_files",
    "verify_statement",
]


def ledger_signer(path: Path) -> PrivateKeySigner:
    key = load_private_key(path)
    return PrivateKeySigner(key, keyid_of(key.public_key()))


def ledger_verifier(path: Path) -> Verifier:
    key: ed25519.Ed25519PublicKey = load_public_key(path)
    return Verifier(name=path.name, keyid=keyid_of(key), public_key=key)


def sign_files(
    digests: Mapping[str, str], predicate_type: str, predicate: Mapping[str, Any], signer: Any
) -> bytes:
    """A DSSE envelope (JSON bytes) over a Statement naming each file by its sha256."""
    statement = {
        "_type": STATEMENT,
        "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(digests.items())],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = sign_envelope(payload, signer, payload_type=PAYLOAD_TYPE_INTOTO)
    return envelope.to_json() + b"\n"


def verify_statement(
    envelope_bytes: bytes, verifier: Verifier, predicate_type: str, what: str
) -> dict[str, Any]:
    """The signed Statement, after checking its signature and type; raise naming the fault."""
    try:
        verified = verify_envelope(parse_envelope(envelope_bytes), [verifier])
    except VerificationError as e:
        raise VerificationError(f"{what}: the signature does not verify: {e.message}") from e
    statement = json.loads(verified.payload)
    if (
        not isinstance(statement, dict)
        or statement.get("_type") != STATEMENT
        or statement.get("predicateType") != predicate_type
    ):
        raise VerificationError(
            f"{what}: the signed statement is not an {predicate_type} statement"
        )
    return statement


def subjects(statement: Mapping[str, Any]) -> dict[str, str]:
    """name -> sha256 of every subject of a verified statement."""
    out: dict[str, str] = {}
    for s in statement.get("subject") or ():
        if isinstance(s, dict) and isinstance(s.get("name"), str):
            out[s["name"]] = str((s.get("digest") or {}).get("sha256"))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

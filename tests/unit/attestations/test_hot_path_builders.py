"""The values the verifier builds for every envelope without their dataclass constructors
(``dsse._envelope``, ``verify_envelope``'s ``VerifiedPayload``, ``Statement.checked``,
``statement._subject``, ``VerifiedAttestation.sealed``: one dict update each, not a frozen
dataclass's field-by-field ``__init__``) are exactly what the constructors build: every field set
(a field added to a class and not to its builder fails here), the same values, equal, and the
seal still demanded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from affidavit.attestations import exact_json
from affidavit.attestations.dsse import (
    Envelope,
    Signature,
    VerifiedPayload,
    _decode_envelope,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from affidavit.attestations.evidence import _SEAL, VerifiedAttestation
from affidavit.attestations.keys import generate_key_pair, load_signer, load_verifier
from affidavit.attestations.statement import (
    Statement,
    Subject,
    _decode_statement,
    make_statement,
    parse_statement,
)

DIGEST = "sha256:" + "ab" * 32
TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


@pytest.fixture(autouse=True)
def msgspec_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec's decoders in use (the builders are on their path)."""
    from affidavit.attestations import documents

    monkeypatch.setattr(exact_json, "_documents", documents)


def _same(fast: object, slow: object) -> None:
    """``fast`` is what ``slow`` is: same class, every compared field the same value, equal."""
    assert type(fast) is type(slow)
    assert dataclasses.is_dataclass(fast)
    for f in dataclasses.fields(fast):
        if f.compare:
            assert getattr(fast, f.name) == getattr(slow, f.name), f.name
    assert fast == slow


def _signed(tmp_path: Path, kind: Any = "ecdsa-p256") -> tuple[bytes, Any]:
    private, public = generate_key_pair(kind)
    (tmp_path / "k.key").write_bytes(private)
    statement = make_statement("registry.example/app", DIGEST, TYPE, {"changes": [{"n": 1}]})
    envelope = sign_envelope(statement, load_signer(tmp_path / "k.key"))
    return envelope.to_json(), load_verifier(public, name="k.pub")


def test_a_decoded_envelope_is_the_one_its_constructor_makes(tmp_path: Path) -> None:
    data, _ = _signed(tmp_path)
    fast = _decode_envelope(data)
    assert fast is not None and "_payload_text" in vars(fast)  # the skim built it
    assert "payload" not in vars(fast)  # made from the view when read
    assert set(vars(fast)) | {"payload"} >= {f.name for f in dataclasses.fields(Envelope)}
    assert fast.raw is None
    slow = Envelope(fast.payload, fast.payload_type, tuple(fast.signatures))
    _same(fast, slow)
    for signature in fast.signatures:
        _same(signature, Signature(sig=signature.sig, keyid=signature.keyid))
    assert fast.payload_bytes() == slow.payload_bytes()
    assert fast.signature_bytes() == slow.signature_bytes()
    assert dataclasses.replace(fast, payload_type="x").payload == fast.payload


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_a_verified_payload_is_the_one_its_constructor_makes(tmp_path: Path, kind: Any) -> None:
    data, verifier = _signed(tmp_path, kind)
    envelope = parse_envelope(data)
    fast = verify_envelope(envelope, [verifier])
    slow = VerifiedPayload(
        payload=envelope.payload_bytes(),
        payload_type=envelope.payload_type,
        signer=verifier.name,
        keyid=verifier.keyid,
    )
    _same(fast, slow)
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(VerifiedPayload)}


def test_a_decoded_statement_is_the_one_its_constructor_makes() -> None:
    payload = make_statement("registry.example/app", DIGEST, TYPE, {"changes": [{"n": 1}]})
    fast = _decode_statement(payload)
    assert fast is not None and fast.predicate_json is not None
    subjects = tuple(Subject(s.name, dict(s.digest)) for s in fast.subject)
    slow = Statement(fast.type, subjects, fast.predicate_type, fast.predicate_json)
    assert set(vars(fast)) == {f.name for f in dataclasses.fields(Statement)}
    for subject, twin in zip(fast.subject, subjects, strict=True):
        _same(subject, twin)
        assert set(vars(subject)) == {f.name for f in dataclasses.fields(Subject)}
    _same(fast, slow)
    assert fast.predicate == slow.predicate == {"changes": [{"n": 1}]}
    assert parse_statement(payload) == fast


@pytest.mark.parametrize("predicate_json", [None, b'{"a":1}'])
def test_a_sealed_attestation_is_the_one_its_constructor_makes(
    predicate_json: bytes | None,
) -> None:
    fields: dict[str, Any] = {
        "predicate_type": TYPE,
        "subject_name": "registry.example/app",
        "subject_digest": DIGEST,
        "predicate": {} if predicate_json else {"a": 1},
        "envelope_digest": "sha256:" + "cd" * 32,
        "signer": "k.pub",
        "storage": "cosign-tag",
        "certified_source": None,
        "predicate_json": predicate_json,
    }
    fast = VerifiedAttestation.sealed(_SEAL, **fields)
    slow = VerifiedAttestation(**fields, seal=_SEAL)
    assert vars(fast) == vars(slow)  # the predicate's text kept, or its parse, alike
    _same(fast, slow)
    assert fast.predicate == slow.predicate == {"a": 1}


def test_a_sealed_attestation_still_demands_the_seal() -> None:
    with pytest.raises(TypeError, match=r"comes only from affidavit\.attestations\.verify"):
        VerifiedAttestation.sealed(
            object(),
            predicate_type=TYPE,
            subject_name="registry.example/app",
            subject_digest=DIGEST,
            predicate={},
            envelope_digest="sha256:" + "cd" * 32,
            signer="k.pub",
            storage="cosign-tag",
            certified_source=None,
            predicate_json=None,
        )

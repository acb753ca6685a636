"""Interop with the in-toto / DSSE reference libraries, both directions, with real keys.

- An envelope Affidavit signs verifies with securesystemslib's DSSE implementation, and its
  statement parses and validates with in-toto-attestation's v1 bindings.
- A statement built with in-toto-attestation and signed into an envelope by securesystemslib
  (CryptoSigner) parses and verifies with Affidavit, and tampering is caught on both sides.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from google.protobuf import json_format  # type: ignore[import-untyped]
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement as ItaStatement
from securesystemslib.dsse import Envelope as SslibEnvelope
from securesystemslib.exceptions import VerificationError as SslibVerificationError
from securesystemslib.signer import CryptoSigner, SSlibKey

from affidavit.attestations.dsse import (
    PAYLOAD_TYPE_INTOTO,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from affidavit.attestations.keys import (
    KeyKind,
    PrivateKeySigner,
    generate_key_pair,
    load_signer,
    load_verifier,
)
from affidavit.attestations.statement import make_statement, parse_statement
from affidavit.errors import VerificationError

DIGEST_HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
PREDICATE_TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
PREDICATE = {
    "source": {"repository": "https://git.example/app", "revision": "a" * 40},
    "summary": {"commits": 3, "aiTouchedCommits": 1},
}


@pytest.fixture(params=["ecdsa-p256", "ed25519"])
def signer(request: pytest.FixtureRequest, tmp_path: Path) -> PrivateKeySigner:
    kind: KeyKind = request.param
    path = tmp_path / "key.pem"
    path.write_bytes(generate_key_pair(kind)[0])
    return load_signer(path)


def _sslib_key(signer: PrivateKeySigner) -> SSlibKey:
    return SSlibKey.from_crypto(signer.public_key, keyid=signer.keyid)


def test_affidavit_envelope_verifies_with_securesystemslib(signer: PrivateKeySigner) -> None:
    payload = make_statement("reg.example/app", f"sha256:{DIGEST_HEX}", PREDICATE_TYPE, PREDICATE)
    wire = sign_envelope(payload, signer).to_json()

    theirs = SslibEnvelope.from_dict(json.loads(wire))
    assert theirs.pae() == pae(PAYLOAD_TYPE_INTOTO, payload)
    accepted = theirs.verify([_sslib_key(signer)], 1)
    assert list(accepted) == [signer.keyid]
    assert theirs.payload == payload

    # Their verifier also rejects what ours rejects: a changed payload.
    forged = json.loads(wire)
    forged["payload"] = base64.b64encode(payload.replace(b'"commits":3', b'"commits":4')).decode()
    with pytest.raises(SslibVerificationError):
        SslibEnvelope.from_dict(forged).verify([_sslib_key(signer)], 1)


def test_affidavit_statement_parses_with_in_toto_attestation() -> None:
    payload = make_statement("reg.example/app", f"sha256:{DIGEST_HEX}", PREDICATE_TYPE, PREDICATE)
    proto = json_format.Parse(payload, statement_pb2.Statement())
    statement = ItaStatement.copy_from_pb(proto)
    statement.validate()
    assert statement.pb.type == "https://in-toto.io/Statement/v1"
    assert statement.pb.predicate_type == PREDICATE_TYPE
    assert statement.pb.subject[0].name == "reg.example/app"
    assert dict(statement.pb.subject[0].digest) == {"sha256": DIGEST_HEX}
    assert json_format.MessageToDict(statement.pb.predicate) == json.loads(json.dumps(PREDICATE))


def _their_statement() -> bytes:
    subject = ResourceDescriptor(name="reg.example/app", digest={"sha256": DIGEST_HEX}).pb
    statement = ItaStatement([subject], PREDICATE_TYPE, PREDICATE)
    statement.validate()
    text: str = json_format.MessageToJson(statement.pb)
    return text.encode()


def test_reference_envelope_verifies_with_affidavit(signer: PrivateKeySigner) -> None:
    payload = _their_statement()
    theirs = SslibEnvelope(payload=payload, payload_type=PAYLOAD_TYPE_INTOTO, signatures={})
    sslib_signer = CryptoSigner(signer.private_key, _sslib_key(signer))
    theirs.sign(sslib_signer)
    wire = json.dumps(theirs.to_dict()).encode()

    envelope = parse_envelope(wire)
    trusted = signer.verifier("reference-signed")
    result = verify_envelope(envelope, [trusted])
    assert result.payload == payload
    assert result.signer == "reference-signed"
    statement = parse_statement(result.payload)
    assert statement.predicate_type == PREDICATE_TYPE
    assert statement.is_about(f"sha256:{DIGEST_HEX}")
    assert statement.predicate == json.loads(json.dumps(PREDICATE))

    # And a key Affidavit was not told to trust does not verify it.
    stranger = load_verifier(generate_key_pair("ecdsa-p256")[1], name="stranger")
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, [stranger])
    assert info.value.message == (
        "no signature verified with the trusted keys (stranger): the payload was changed after"
        " signing or was signed by another key"
    )


def test_reference_envelope_with_tampered_payload_is_rejected(signer: PrivateKeySigner) -> None:
    theirs = SslibEnvelope(
        payload=_their_statement(), payload_type=PAYLOAD_TYPE_INTOTO, signatures={}
    )
    theirs.sign(CryptoSigner(signer.private_key, _sslib_key(signer)))
    document = theirs.to_dict()
    document["payload"] = base64.b64encode(_their_statement().replace(b"3", b"4")).decode()
    with pytest.raises(VerificationError, match="no signature verified"):
        verify_envelope(parse_envelope(json.dumps(document).encode()), [signer.verifier("k")])

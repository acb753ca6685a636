"""DSSE: PAE bytes, sign/verify round trips with real keys, and each specific rejection."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from affidavit.attestations.dsse import (
    MAX_SIGNATURES,
    PAYLOAD_TYPE_INTOTO,
    Envelope,
    Signature,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from affidavit.attestations.keys import generate_key_pair, load_signer, load_verifier
from affidavit.attestations.statement import make_statement
from affidavit.errors import VerificationError

STATEMENT = make_statement("reg.example/app", "sha256:" + "0" * 64, "https://x.example/p", {})


def test_pae_matches_the_spec_example() -> None:
    # The DSSE spec's test vector (protocol.md): type "http://example.com/HelloWorld".
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_sign_then_parse_then_verify(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    signer = load_signer(path)
    envelope = sign_envelope(STATEMENT, signer)
    parsed = parse_envelope(envelope.to_json())
    assert parsed.raw == envelope.to_json()
    assert parsed.to_json() == envelope.to_json()
    assert parsed.digest() == envelope.digest()
    result = verify_envelope(parsed, [load_verifier(public, name="release-key")])
    assert result.payload == STATEMENT
    assert result.payload_type == PAYLOAD_TYPE_INTOTO
    assert result.signer == "release-key"
    assert result.keyid == signer.keyid
    wire = json.loads(envelope.to_json())
    assert set(wire) == {"payload", "payloadType", "signatures"}
    assert wire["signatures"][0]["keyid"] == signer.keyid


def test_second_trusted_key_is_found(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    _, other = generate_key_pair("ecdsa-p256")
    envelope = sign_envelope(STATEMENT, load_signer(path))
    verifiers = [load_verifier(other, name="key-a"), load_verifier(public, name="key-b")]
    assert verify_envelope(envelope, verifiers).signer == "key-b"


def test_empty_keyid_like_cosign_verifies(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path, keyid=""))
    assert envelope.signatures[0].keyid == ""
    assert verify_envelope(envelope, [load_verifier(public, name="k")]).signer == "k"


NO_SIGNATURE = (
    "no signature verified with the trusted keys (key-a, key-b): the payload was changed after"
    " signing or was signed by another key"
)


def test_wrong_key_is_rejected(key_files: tuple[Path, bytes]) -> None:
    path, _ = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path))
    others = [
        load_verifier(generate_key_pair("ecdsa-p256")[1], name="key-a"),
        load_verifier(generate_key_pair("ed25519")[1], name="key-b"),
    ]
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, others)
    assert info.value.message == NO_SIGNATURE


def test_tampered_payload_is_rejected(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path))
    tampered = STATEMENT.replace(b'"predicate":{}', b'"predicate":{"approved":true}')
    assert tampered != STATEMENT
    forged = Envelope(
        payload=base64.b64encode(tampered).decode(),
        payload_type=envelope.payload_type,
        signatures=envelope.signatures,
    )
    trusted = [load_verifier(public, name="key-a"), load_verifier(public, name="key-b")]
    with pytest.raises(VerificationError) as info:
        verify_envelope(forged, trusted)
    assert info.value.message == NO_SIGNATURE


def test_changed_payload_type_is_rejected_even_when_expected(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path), payload_type="application/x-other")
    with pytest.raises(VerificationError) as info:
        verify_envelope(envelope, [load_verifier(public, name="k")])
    assert info.value.message == (
        "payloadType is 'application/x-other', expected 'application/vnd.in-toto+json'"
    )
    # The type is signed too: relabelling the envelope breaks the signature.
    relabelled = replace(envelope, payload_type=PAYLOAD_TYPE_INTOTO)
    with pytest.raises(VerificationError, match="no signature verified"):
        verify_envelope(relabelled, [load_verifier(public, name="k")])


def test_url_safe_unpadded_base64_is_accepted(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path))
    wire = json.loads(envelope.to_json())
    wire["payload"] = base64.urlsafe_b64encode(STATEMENT).decode().rstrip("=")
    sig = base64.b64decode(wire["signatures"][0]["sig"])
    wire["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode().rstrip("=")
    parsed = parse_envelope(json.dumps(wire).encode())
    assert verify_envelope(parsed, [load_verifier(public, name="k")]).payload == STATEMENT


def _wire(**changes: object) -> bytes:
    document: dict[str, object] = {
        "payload": base64.b64encode(STATEMENT).decode(),
        "payloadType": PAYLOAD_TYPE_INTOTO,
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"x" * 64).decode()}],
    }
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"{nope",
            "envelope is not valid JSON: Expecting property name enclosed in double quotes:"
            " line 1 column 2 (char 1)",
        ),
        (b"[]", "envelope is not a DSSE envelope: a JSON list, not an object"),
        (_wire(signatures=[]), "envelope has no signatures"),
        (_wire(signatures=None), "envelope has no signatures"),
        (_wire(payload="%%%not base64"), "envelope payload is not base64"),
        (
            _wire(payloadType=None),
            "envelope is not a DSSE envelope: payloadType: Input should be a valid string",
        ),
        (
            _wire(extra="x"),
            "envelope is not a DSSE envelope: extra: Extra inputs are not permitted",
        ),
        (_wire(signatures=[{"sig": "!!"}]), "envelope signature 0 is not base64"),
        (
            _wire(signatures=["x"]),
            "envelope is not a DSSE envelope: signatures.0: Input should be a valid dictionary "
            "or instance of Signature",
        ),
        (
            _wire(signatures=[{"keyid": 3}]),
            "envelope is not a DSSE envelope: signatures.0.keyid: Input should be a valid "
            "string; signatures.0.sig: Field required",
        ),
        (
            _wire(signatures=[{"sig": "eA==", "other": 1}]),
            "envelope is not a DSSE envelope: signatures.0.other: Extra inputs are not permitted",
        ),
        (
            _wire(payload=5, signatures="abc"),
            "envelope is not a DSSE envelope: payload: Input should be a valid string; "
            "signatures: Input should be a valid list",
        ),
        (  # a number past 64 bits (orjson reads a float) is refused as json's int would be
            _wire(payloadType=10**30),
            "envelope is not a DSSE envelope: payloadType: Input should be a valid string",
        ),
        (  # NaN, which orjson refuses and json reads
            _wire().replace(b'"payloadType"', b'"x": NaN, "payloadType"'),
            "envelope is not a DSSE envelope: x: Extra inputs are not permitted",
        ),
        (  # DSSE's name only (a pydantic alias once let payload_type through)
            json.dumps(
                {"payload": "e30=", "payload_type": "t", "signatures": [{"sig": "eA=="}]}
            ).encode(),
            "envelope is not a DSSE envelope: payloadType: Field required; payload_type: Extra "
            "inputs are not permitted",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "envelope is not valid JSON: it nests too deeply"),
    ],
)
def test_malformed_envelopes(data: bytes, message: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_envelope(data)
    assert info.value.message == message


def test_oversized_envelope_is_refused_before_parsing() -> None:
    data = b" " * 101 + _wire()
    with pytest.raises(VerificationError) as info:
        parse_envelope(data, max_bytes=100)
    assert info.value.message == f"envelope is {len(data)} bytes, over the 100-byte limit"
    assert parse_envelope(_wire(), max_bytes=len(_wire())).payload_type == PAYLOAD_TYPE_INTOTO


def test_keyid_is_only_a_hint(key_files: tuple[Path, bytes]) -> None:
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path))
    renamed = replace(
        envelope, signatures=(Signature(keyid="someone-else", sig=envelope.signatures[0].sig),)
    )
    assert verify_envelope(renamed, [load_verifier(public, name="k")]).signer == "k"


def test_the_good_signature_among_junk_is_found_within_the_limit(
    key_files: tuple[Path, bytes], tmp_path: Path
) -> None:
    # every signature is tried with every key (cosign writes no key ids), up to the limit; the
    # message is hashed once for them all (ECDSA) or joined once (Ed25519)
    path, public = key_files
    good = sign_envelope(STATEMENT, load_signer(path)).signatures[0]
    private, other = generate_key_pair("ed25519")
    junk = [Signature(keyid="", sig=base64.b64encode(bytes([i]) * 64).decode()) for i in range(15)]
    envelope = replace(sign_envelope(STATEMENT, load_signer(path)), signatures=(*junk, good))
    verifiers = [load_verifier(other, name="ed"), load_verifier(public, name="release")]
    assert len(envelope.signatures) == MAX_SIGNATURES
    assert verify_envelope(envelope, verifiers).signer == "release"
    (tmp_path / "ed.key").write_bytes(private)
    ed_good = sign_envelope(STATEMENT, load_signer(tmp_path / "ed.key")).signatures[0]
    assert verify_envelope(replace(envelope, signatures=(*junk, ed_good)), verifiers).signer == "ed"


def test_an_envelope_with_more_signatures_than_are_tried_is_refused_unread(
    key_files: tuple[Path, bytes],
) -> None:
    # a 4 MiB envelope could carry 37,000 junk signatures, each tried with every trusted key
    path, public = key_files
    envelope = sign_envelope(STATEMENT, load_signer(path))
    junk = Signature(keyid="", sig=base64.b64encode(b"\x00" * 64).decode())
    flooded = replace(envelope, signatures=(junk,) * MAX_SIGNATURES + envelope.signatures)
    with pytest.raises(VerificationError) as info:
        verify_envelope(flooded, [load_verifier(public, name="k")])
    assert info.value.message == (
        f"envelope has {MAX_SIGNATURES + 1} signatures; at most {MAX_SIGNATURES} are tried, so it"
        " is refused unread"
    )
    assert (
        info.value.hint
        == "sign the statement into an envelope of its own (one signature per signer)"
    )

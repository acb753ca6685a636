"""A verified statement's predicate kept as its signed JSON text until first read: verification
(``verify_fetched``) hands out attestations whose predicate reads exactly as ``json.loads`` reads
the signed payload's, packs that text for the evidence cache without parsing it, and reads it
again after ``compact``; the signature is checked over DSSE's PAE fed in parts
(``Verifier.verify_parts``), which verifies exactly what the joined PAE verifies."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, pae, sha256_digest, sign_envelope
from affidavit.attestations.evidence import KeySigner, VerifiedAttestation
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched

DIGEST = "sha256:" + "cd" * 32
IMAGE = ImageReference.parse(f"registry.example/app@{DIGEST}")
TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
PREDICATE = (
    '{"changes":[{"commit":"c","n":123456789012345678901234567890}],'
    '"changes":[{"commit":"d","\\u006e":2.5}],"s":"caf\u00e9 \\ud83d\\ude00"}'
)


@pytest.fixture(autouse=True)
def msgspec_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgspec's decoders in use (as once a process has verified enough to pay for them)."""
    from affidavit.attestations import documents, exact_json

    monkeypatch.setattr(exact_json, "_documents", documents)


def _verified(tmp_path: Path, predicate: str = PREDICATE) -> tuple[VerifiedAttestation, bytes]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "k.key").write_bytes(private)
    payload = (
        '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"registry.example/app",'
        '"digest":{"sha256":"' + DIGEST[7:] + '"}}],"predicateType":"' + TYPE + '",'
        '"predicate":' + predicate + "}"
    ).encode()
    data = sign_envelope(payload, load_signer(tmp_path / "k.key")).to_json()
    item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(data), TYPE, data)
    signer = KeySigner(name="k.pub", public_key_pem=public.decode())
    (verified,) = verify_fetched([item], IMAGE, [signer]).verified
    return verified, payload


def test_the_predicate_reads_as_json_reads_it_and_is_parsed_on_first_read(
    tmp_path: Path,
) -> None:
    verified, payload = _verified(tmp_path)
    assert "predicate" not in verified.__dict__
    expected = json.loads(payload)["predicate"]
    assert verified.predicate == expected
    assert verified.predicate is verified.predicate


def test_pack_keeps_the_signed_text_and_compact_reads_it_again(tmp_path: Path) -> None:
    verified, payload = _verified(tmp_path)
    packed, size = verified.pack()
    text = zlib.decompress(verified.__dict__["_packed"])
    assert text == payload[payload.index(b'"predicate":') + len(b'"predicate":') : -1]
    assert size == len(text) and packed < size
    assert "predicate" not in verified.__dict__  # packing did not parse it
    verified.compact()
    assert "_json" not in verified.__dict__
    assert verified.predicate == json.loads(payload)["predicate"]


def test_a_predicate_the_fast_check_leaves_is_parsed_at_once(tmp_path: Path) -> None:
    verified, _payload = _verified(tmp_path, '{"x":NaN}')
    assert "predicate" in verified.__dict__
    assert json.dumps(verified.predicate) == '{"x": NaN}'


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_predicate_holding_nan_or_an_infinity_reads_the_same_after_compact(
    tmp_path: Path, value: str
) -> None:
    # packing wrote it with orjson, which writes NaN and the infinities as null: the same
    # signed predicate read NaN while hot in the cache and None once compacted
    verified, _payload = _verified(tmp_path, '{"x":[1,{"y":' + value + "}]}")
    before = json.dumps(verified.predicate)
    verified.pack()
    verified.compact()
    assert json.dumps(verified.predicate) == before
    assert "null" not in before


def test_a_deeply_nested_predicate_is_kept_parsed_not_packed(tmp_path: Path) -> None:
    # on the exact path (a NaN sends it there) and deeper than orjson writes (255): never
    # packed, and the NaN walk, after orjson's refusal, never recurses that deep
    deep = '{"x":' + "[" * 900 + "1" + "]" * 900 + ',"n":NaN}'
    verified, _payload = _verified(tmp_path, deep)
    packed, raw = verified.pack()
    assert packed == raw  # not packed: its size counted for both
    verified.compact()
    assert verified.predicate["x"] is not None


@pytest.mark.parametrize("kind", ["ecdsa-p256", "ed25519"])
def test_verify_parts_verifies_what_the_joined_message_verifies(tmp_path: Path, kind: str) -> None:
    private, _public = generate_key_pair(kind)  # type: ignore[arg-type]
    (tmp_path / "k.key").write_bytes(private)
    signer = load_signer(tmp_path / "k.key")
    verifier = signer.verifier("k")
    message = pae("application/vnd.in-toto+json", b'{"a":1}')
    signature = signer.sign(message)
    parts = (message[:30], message[30:])
    assert verifier.verify_parts(signature, parts)
    assert verifier.verify_parts(signature, (message,))
    assert not verifier.verify_parts(signature, (message[:30], message[31:]))
    assert not verifier.verify_parts(signature, (message[:30], message[30:] + b" "))
    assert not verifier.verify_parts(signature[:-1] + bytes([signature[-1] ^ 1]), parts)

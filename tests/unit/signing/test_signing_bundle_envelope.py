"""A key-signed Sigstore bundle's envelope is read from the parsed bundle when its text is ASCII
(not written out as JSON and parsed again: a copy of the whole payload per bundle), and every
bundle is accepted or refused exactly as the round trip did: the same envelope where both read
one, the same reasons where they refuse (a malformed envelope, one whose own JSON is over the
size limit only once ``json.dumps`` escapes its raw UTF-8 or DEL characters)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import affidavit.attestations.verify as verify_module
from affidavit.attestations.dsse import (
    DSSE_MEDIA_TYPE,
    Envelope,
    sha256_digest,
    sign_envelope,
)
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, FetchedAttestation, key_bundle
from affidavit.attestations.verify import verify_fetched
from affidavit.errors import VerificationError

DIGEST = "sha256:" + "cd" * 32
IMAGE = ImageReference.parse(f"registry.example/app@{DIGEST}")
TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


def _envelope(tmp_path: Path) -> tuple[bytes, KeySigner]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "k.key").write_bytes(private)
    statement = make_statement(IMAGE.name, DIGEST, TYPE, {"changes": [{"commit": "c"}] * 20})
    data = sign_envelope(statement, load_signer(tmp_path / "k.key")).to_json()
    return data, KeySigner(name="k.pub", public_key_pem=public.decode())


def _round_trip(data: bytes, max_bytes: int) -> object:
    """What ``_bundle_envelope`` gave before: the envelope written out and parsed again."""

    def no_shortcut(document: object) -> Envelope:
        raise VerificationError("not taken")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify_module, "envelope_from_document", no_shortcut)
        return _read(data, max_bytes)


def _read(data: bytes, max_bytes: int) -> object:
    try:
        return verify_module._bundle_envelope(data, max_bytes)[0]
    except VerificationError as e:
        return e.message


def _variants(envelope: bytes) -> list[bytes]:
    bundle = json.loads(key_bundle(envelope))
    inner = bundle["dsseEnvelope"]
    out = [json.dumps(bundle).encode(), json.dumps(bundle, indent=2).encode()]
    escaped = json.dumps(bundle).replace('"payloadType"', '"p\\u0061yloadType"')
    out.append(escaped.replace("application/vnd", "application\\/vnd").encode())
    changes: list[dict[str, object]] = [
        {"payload": 7},  # a number where a string belongs
        {"payload": 123456789012345678901234567890},  # one orjson reads as a float
        {"signatures": []},
        {"signatures": [{"sig": "x", "extra": "y"}]},
        {"extra": "z"},
        {"payloadType": None},
    ]
    for change in changes:
        out.append(json.dumps({**bundle, "dsseEnvelope": {**inner, **change}}).encode())
    out.append(json.dumps({**bundle, "dsseEnvelope": [inner]}).encode())
    return out


def test_the_envelope_read_from_the_bundle_is_the_round_trips(tmp_path: Path) -> None:
    envelope, _ = _envelope(tmp_path)
    for data in _variants(envelope):
        assert data.isascii()
        got, before = _read(data, 10**6), _round_trip(data, 10**6)
        if isinstance(before, str):
            assert got == before, data[:200]
        else:
            assert got == before and got is not None, data[:200]


def test_non_ascii_or_del_keeps_the_round_trip_and_its_size_limit(tmp_path: Path) -> None:
    envelope, _ = _envelope(tmp_path)
    bundle = json.loads(key_bundle(envelope))
    for odd in ("é" * 400, "\x7f" * 400):  # 2 (1) bytes here, 6 once json.dumps escapes them
        bundle["dsseEnvelope"]["signatures"][0]["keyid"] = odd
        data = json.dumps(bundle, ensure_ascii=False).encode()
        escaped = len(json.dumps(bundle["dsseEnvelope"], separators=(",", ":")))
        assert len(data) < escaped
        limit = escaped - 1  # the bundle fits, its envelope's JSON does not
        assert _read(data, limit) == _round_trip(data, limit)
        assert _read(data, limit) == f"envelope is {escaped} bytes, over the {limit}-byte limit"


def test_a_bundle_twin_still_verifies_and_dedupes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelope, signer = _envelope(tmp_path)
    item = FetchedAttestation(
        "cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(envelope), TYPE, envelope
    )
    bundle = key_bundle(envelope)
    twin = FetchedAttestation("tag-index", BUNDLE_MEDIA_TYPE, sha256_digest(bundle), TYPE, bundle)
    # alone, the bundle verifies, read from the parsed bundle (its envelope not parsed again);
    # with its twin, it counts once
    parsed: list[bytes] = []
    parse = verify_module.parse_envelope

    def counted(data: bytes, **options: object) -> Envelope:
        parsed.append(data)
        return parse(data, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(verify_module, "parse_envelope", counted)
    assert [v.storage for v in verify_fetched([twin], IMAGE, [signer]).verified] == ["tag-index"]
    assert parsed == []
    evidence = verify_fetched([item, twin], IMAGE, [signer])
    assert ([v.storage for v in evidence.verified], evidence.rejected) == (["cosign-tag"], ())
    assert parsed == [envelope]

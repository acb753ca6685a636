"""Tests the verifier's hot path (``verify_fetched``) on what it skips: an envelope found in both
layouts has its payload decoded once (the copy that verified), yet an undecodable payload (even
one holding a lone surrogate) is still refused as before; and Python's cyclic garbage collector
pauses only while envelopes are parsed and checked (a fifth of verifying real-size envelopes
went to collections that found nothing), left as it was found, also when a check raises."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import affidavit.attestations.dsse as dsse_module
import affidavit.attestations.exact_json as exact_json
import affidavit.attestations.verify as verify_module
from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, sha256_digest, sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, FetchedAttestation, key_bundle
from affidavit.attestations.verify import verify_fetched

DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageReference.parse(f"registry.example/app@{DIGEST}")
TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


@pytest.fixture
def collector_on() -> Iterator[None]:
    """The collector on for the test, and after it as it was before (a test may turn it off)."""
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def _signed(tmp_path: Path) -> tuple[FetchedAttestation, KeySigner]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "k.key").write_bytes(private)
    statement = make_statement(IMAGE.name, DIGEST, TYPE, {"changes": [{"commit": "c"}] * 50})
    data = sign_envelope(statement, load_signer(tmp_path / "k.key")).to_json()
    item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(data), TYPE, data)
    return item, KeySigner(name="k.pub", public_key_pem=public.decode())


def test_the_collector_is_off_during_the_checks_and_on_again_after(
    tmp_path: Path, collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    item, signer = _signed(tmp_path)
    seen: list[bool] = []
    check = verify_module._check_item

    def watched(*args: object, **kwargs: object) -> object:
        seen.append(gc.isenabled())
        return check(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verify_module, "_check_item", watched)
    evidence = verify_fetched([item, item], IMAGE, [signer])
    assert len(evidence.verified) == 1
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_failing_check_still_turns_the_collector_back_on(
    tmp_path: Path, collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    item, signer = _signed(tmp_path)

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(verify_module, "_check_item", broken)
    with pytest.raises(RuntimeError):
        verify_fetched([item], IMAGE, [signer])
    assert gc.isenabled()


def test_a_callers_own_disabled_collector_stays_disabled(
    tmp_path: Path, collector_on: None
) -> None:
    item, signer = _signed(tmp_path)
    gc.disable()
    assert len(verify_fetched([item], IMAGE, [signer]).verified) == 1
    assert not gc.isenabled()


@pytest.fixture(params=["exact", "msgspec"])
def decoders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Envelopes read by the exact path (the payload a str), or by msgspec's decoders (the
    payload a view of the layer's bytes, compared with the bundle twin's bytes)."""
    if request.param == "exact":
        monkeypatch.setattr(exact_json, "_documents", None)  # not loaded, nor ever to be
        monkeypatch.setattr(exact_json, "documents", lambda size: None)
    else:
        from affidavit.attestations import documents

        monkeypatch.setattr(exact_json, "_documents", documents)
    return str(request.param)


def test_the_twin_in_the_other_layout_is_not_decoded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decoders: str
) -> None:
    item, signer = _signed(tmp_path)
    assert item.data is not None
    bundle = key_bundle(item.data)
    twin = FetchedAttestation("tag-index", BUNDLE_MEDIA_TYPE, sha256_digest(bundle), TYPE, bundle)
    payload = json.loads(item.data)["payload"]
    decoded: list[str] = []
    views: list[bool] = []
    decode = dsse_module.b64decode

    def counted(text: str | memoryview) -> bytes:  # a view: the payload's bytes as parsed
        decoded.append(text if isinstance(text, str) else str(text, "ascii"))
        views.append(isinstance(text, memoryview))
        return decode(text)

    monkeypatch.setattr(dsse_module, "b64decode", counted)
    evidence = verify_fetched([item, twin], IMAGE, [signer])
    assert [(v.storage, v.envelope_digest) for v in evidence.verified] == [
        ("cosign-tag", item.digest)
    ]
    assert (evidence.rejected, decoded.count(payload)) == ((), 1)
    assert views[0] == (decoders == "msgspec")  # then the twins compare a view with bytes


def test_an_undecodable_payload_is_still_refused_in_both_layouts(tmp_path: Path) -> None:
    item, signer = _signed(tmp_path)
    assert item.data is not None
    for bad in ("\ud800", "not base64!"):  # a lone surrogate: JSON holds it, UTF-8 cannot
        document = json.loads(item.data)
        document["payload"] = bad
        data = json.dumps(document).encode()
        broken = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(data), TYPE, data)
        bundle = key_bundle(item.data).replace(
            json.loads(item.data)["payload"].encode(), json.dumps(bad)[1:-1].encode()
        )
        twin = FetchedAttestation(
            "tag-index", BUNDLE_MEDIA_TYPE, sha256_digest(bundle), TYPE, bundle
        )
        evidence = verify_fetched([broken, twin], IMAGE, [signer])
        assert evidence.verified == ()
        assert [(r.storage, r.reason) for r in evidence.rejected] == [
            ("cosign-tag", "envelope payload is not base64"),
            ("tag-index", "envelope payload is not base64"),
        ]


def _signed_statement(
    tmp_path: Path, subjects: list[dict[str, object]]
) -> tuple[FetchedAttestation, KeySigner]:
    private, public = generate_key_pair("ecdsa-p256")
    (tmp_path / "k.key").write_bytes(private)
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subjects,
            "predicateType": TYPE,
            "predicate": {},
        }
    ).encode()
    data = sign_envelope(statement, load_signer(tmp_path / "k.key")).to_json()
    item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(data), TYPE, data)
    return item, KeySigner(name="k.pub", public_key_pem=public.decode())


def test_a_subject_digest_in_upper_case_hex_is_the_image_it_names(tmp_path: Path) -> None:
    # The subject check compared the hex in either case, the lookup of the subject's name after
    # it only in lower case: a signed statement naming the image in upper-case hex raised
    # StopIteration out of verification (a stack trace in the CLI, a 500 in the webhook).
    item, signer = _signed_statement(
        tmp_path,
        [
            {"name": "other", "digest": {"sha256": "cd" * 32}},
            {"name": IMAGE.name, "digest": {"sha256": DIGEST.removeprefix("sha256:").upper()}},
        ],
    )
    evidence = verify_fetched([item], IMAGE, [signer])
    assert evidence.rejected == ()
    (verified,) = evidence.verified
    assert (verified.subject_name, verified.subject_digest) == (IMAGE.name, DIGEST)


def test_a_statement_about_another_image_is_rejected_naming_both(tmp_path: Path) -> None:
    item, signer = _signed_statement(
        tmp_path, [{"name": "other", "digest": {"sha256": "CD" * 32, "sha512": "ef" * 64}}]
    )
    evidence = verify_fetched([item], IMAGE, [signer])
    assert evidence.verified == ()
    (rejected,) = evidence.rejected
    assert rejected.reason == (
        f"statement subject is sha256:{'cd' * 32}, not this image's {DIGEST}; the attestation "
        "was made for another image"
    )

"""Tests that ``verify_fetched`` pauses Python's cyclic garbage collector only while it parses
and checks envelopes (a fifth of verifying real-size envelopes went to collections that found
nothing), and leaves the collector as it found it, also when a check raises."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

import affidavit.attestations.verify as verify_module
from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, sha256_digest, sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.reference import ImageReference
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched

DIGEST = "sha256:" + "ab" * 32
IMAGE = ImageReference.parse(f"registry.example/app@{DIGEST}")
TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
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

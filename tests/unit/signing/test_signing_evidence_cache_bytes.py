"""The evidence cache is bounded by the bytes of what it keeps, not only by its entry count: a
webhook's memory follows the size of the predicates it caches (tens of KB of provenance each),
so a byte budget is what keeps it under the Pod's memory limit whatever images it judges. It
keeps every predicate packed (compressed JSON) and only the most recently used ones parsed."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE, sign_envelope
from affidavit.attestations.evidence import ImageEvidence, KeySigner
from affidavit.attestations.evidence_cache import (
    ENTRY_OVERHEAD_BYTES,
    EvidenceCache,
    evidence_bytes,
)
from affidavit.attestations.keys import generate_key_pair, load_signer
from affidavit.attestations.registry import ImageReference, sha256_digest
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import FetchedAttestation
from affidavit.attestations.verify import verify_fetched

PREDICATE_TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"


class ReviewLike(BaseModel):
    note: str


MakeEvidence = Callable[[int, int], tuple[str, ImageEvidence]]


@pytest.fixture(scope="module")
def make_evidence(tmp_path_factory: pytest.TempPathFactory) -> MakeEvidence:
    private_pem, public_pem = generate_key_pair("ecdsa-p256")
    path = tmp_path_factory.mktemp("key") / "k.key"
    path.write_bytes(private_pem)
    signer = load_signer(path)
    trusted = [KeySigner(name="k.pub", public_key_pem=public_pem.decode())]

    def make(i: int, predicate_bytes: int) -> tuple[str, ImageEvidence]:
        digest = "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()
        image = ImageReference.parse(f"reg.example/shop/app@{digest}")
        # hex text: it packs to about half, as commit ids and digests do
        noise = "".join(
            hashlib.sha256(f"{i}/{k}".encode()).hexdigest()
            for k in range(predicate_bytes // 64 + 1)
        )
        predicate = {"note": noise[:predicate_bytes]}
        statement = make_statement(image.name, digest, PREDICATE_TYPE, predicate)
        raw = sign_envelope(statement, signer).to_json()
        item = FetchedAttestation("cosign-tag", DSSE_MEDIA_TYPE, sha256_digest(raw), None, raw)
        evidence = verify_fetched([item], image, trusted)
        assert evidence.verified
        return EvidenceCache.key(digest, trusted, None, image.name), evidence

    return make


def test_an_entry_counts_its_packed_predicates(make_evidence: MakeEvidence) -> None:
    _, evidence = make_evidence(0, 10_000)
    (attestation,) = evidence.verified
    packed = zlib.compress(orjson.dumps(attestation.predicate), 1)
    assert 4_000 < len(packed) < 10_000
    expected = len(packed) + len(PREDICATE_TYPE) + len("k.pub")
    assert evidence_bytes(evidence) == ENTRY_OVERHEAD_BYTES + expected


def test_only_the_most_recently_used_entries_keep_their_predicates_parsed(
    make_evidence: MakeEvidence,
) -> None:
    entries = [make_evidence(10 + i, 10_000) for i in range(4)]
    originals = [dict(e.verified[0].predicate) for _, e in entries]
    json_bytes = len(orjson.dumps(originals[0]))
    cache = EvidenceCache(max_entries=100, hot_bytes=2 * json_bytes + json_bytes // 2)

    def parsed() -> list[bool]:
        return ["predicate" in e.verified[0].__dict__ for _, e in entries]

    for key, evidence in entries:
        cache.put(key, evidence)
    assert parsed() == [False, False, True, True]
    assert cache.hot == 2 * json_bytes
    entries[2][1].verified[0].parsed(ReviewLike)  # a memo the compaction must drop too
    found = cache.get(entries[0][0])  # used again: hot, and the oldest hot entry cools
    assert found is entries[0][1]
    assert parsed() == [False, False, False, True]
    assert "_parsed" not in entries[2][1].verified[0].__dict__
    # a compacted predicate reads back equal, from its packed JSON, and stays parsed while hot
    assert [e.verified[0].predicate for _, e in entries] == originals
    assert parsed()[0]
    assert len(cache) == 4 and cache.bytes == sum(evidence_bytes(e) for _, e in entries)
    cache.clear()
    assert (cache.bytes, cache.hot) == (0, 0)


def test_the_least_recently_used_digests_go_when_the_bytes_run_out(
    make_evidence: MakeEvidence,
) -> None:
    entries = [make_evidence(i, 10_000) for i in range(10)]
    size = [evidence_bytes(e) for _, e in entries]  # packed: each a few bytes apart
    assert max(size) < 1.1 * min(size)
    cache = EvidenceCache(max_entries=1000, max_bytes=4 * max(size) + min(size) // 2)
    for key, evidence in entries[:4]:
        cache.put(key, evidence)
    assert (len(cache), cache.bytes) == (4, sum(size[:4]))
    assert cache.get(entries[0][0]) is not None  # now the most recently used
    for key, evidence in entries[4:6]:
        cache.put(key, evidence)
    kept = [i for i, (key, _) in enumerate(entries) if cache.get(key, count_miss=False)]
    assert kept == [0, 3, 4, 5]
    assert cache.bytes == sum(size[i] for i in kept)
    cache.put(*entries[3])  # a refresh counts once
    assert cache.bytes == sum(size[i] for i in kept)
    cache.clear()
    assert (len(cache), cache.bytes) == (0, 0)


def test_a_result_larger_than_the_budget_is_not_kept(make_evidence: MakeEvidence) -> None:
    small_key, small = make_evidence(1, 100)
    big_key, big = make_evidence(2, 50_000)
    cache = EvidenceCache(max_bytes=20_000)
    cache.put(small_key, small)
    cache.put(big_key, big)
    assert cache.get(big_key) is None
    assert cache.get(small_key) is small
    assert cache.bytes == evidence_bytes(small)


def test_expired_entries_give_their_bytes_back(make_evidence: MakeEvidence) -> None:
    now = [0.0]
    key, evidence = make_evidence(3, 1_000)
    cache = EvidenceCache(max_bytes=1 << 20, positive_ttl=10, clock=lambda: now[0])
    cache.put(key, evidence)
    now[0] = 11.0
    assert cache.get(key) is None
    assert (len(cache), cache.bytes) == (0, 0)


def test_bench_memory_sizes_agree_with_the_chart() -> None:
    # the webhook's default budget is the chart's default (values.yaml webhook.evidenceCacheMiB)
    from affidavit.admission.server import WebhookSettings

    values = (Path(__file__).parents[3] / "charts/affidavit/values.yaml").read_text()
    assert "  evidenceCacheMiB: 48\n" in values
    assert WebhookSettings.__dataclass_fields__["cache_bytes"].default == 48 * 1024 * 1024


def test_a_flood_of_unattested_images_never_pushes_out_verified_evidence(
    make_evidence: MakeEvidence,
) -> None:
    """Entries with nothing verified are at most a quarter of the cache: anyone who may push to
    a covered registry pushed thousands of unattested images, each lookup's negative entry
    evicting other workloads' verified evidence, whose reviews then went cold."""
    cache = EvidenceCache(max_entries=8)
    verified = [make_evidence(100 + i, 100) for i in range(6)]
    for key, evidence in verified:
        cache.put(key, evidence)
    for i in range(1000):  # the flood: nothing verified for any of them
        digest = "sha256:" + hashlib.sha256(f"flood {i}".encode()).hexdigest()
        cache.put(f"reg.example/x@{digest}|k", ImageEvidence(f"reg.example/x@{digest}", digest))
    assert len(cache) == 6 + cache.max_negative == 8
    assert all(cache.get(key) is evidence for key, evidence in verified)
    # the newest negative entries are the ones kept
    last = "sha256:" + hashlib.sha256(b"flood 999").hexdigest()
    assert cache.get(f"reg.example/x@{last}|k") is not None

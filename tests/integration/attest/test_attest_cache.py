"""EvidenceCache: what the admission webhook reuses between requests for the same digest.

Positive results are reused (even after the registry changes) until their bounded TTL, after
which they are re-verified so a newer attestation counts; negative ones expire after their TTL so
evidence attached after a rejection is seen, the cache is bounded (LRU) and keyed by the
trusted signers, and hits and misses are counted. Time is an injected clock, not the wall.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from attest_support import KeyPair, attest

from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.registry import ImageReference, RegistryClient

NewImage = Callable[..., ImageReference]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_positive_results_are_reused(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    result = attest(client, image, key)
    cache = EvidenceCache()
    first = cache.verify(client, str(image), [key.trusted])
    for digest in (result.cosign_manifest_digest, result.referrer_digest):
        url = f"http://{image.registry}/v2/{image.repository}/manifests/{digest}"
        assert httpx.delete(url).status_code == 202
    again = cache.verify(client, str(image), [key.trusted])
    assert again == first
    assert len(again.verified) == 1
    assert (cache.hits, cache.misses) == (1, 1)
    by_tag = cache.verify(client, f"{image.name}:v1", [key.trusted])
    assert by_tag.image == f"{image.name}:v1"
    assert by_tag.verified == first.verified
    assert (cache.hits, cache.misses) == (2, 1)


def test_negative_results_expire(client: RegistryClient, new_image: NewImage, key: KeyPair) -> None:
    image = new_image()
    clock = Clock()
    cache = EvidenceCache(negative_ttl=30.0, clock=clock)
    assert cache.verify(client, str(image), [key.trusted]).verified == ()
    attest(client, image, key)
    clock.now += 29.0
    assert cache.verify(client, str(image), [key.trusted]).verified == ()  # still cached
    clock.now += 2.0
    assert len(cache.verify(client, str(image), [key.trusted]).verified) == 1
    assert (cache.hits, cache.misses) == (1, 2)


def test_positive_results_expire_and_a_newer_attestation_is_seen(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    attest(client, image, key, {"createdAt": "2026-11-28T11:00:00Z", "state": "approved"})
    clock = Clock()
    cache = EvidenceCache(positive_ttl=300.0, clock=clock)
    assert len(cache.verify(client, str(image), [key.trusted]).verified) == 1
    attest(client, image, key, {"createdAt": "2026-11-28T12:00:00Z", "state": "rejected"})
    clock.now += 299.0
    assert len(cache.verify(client, str(image), [key.trusted]).verified) == 1  # still cached
    clock.now += 2.0
    again = cache.verify(client, str(image), [key.trusted])
    assert sorted(a.predicate["state"] for a in again.verified) == ["approved", "rejected"]
    assert (cache.hits, cache.misses) == (1, 2)


def test_the_same_digest_in_another_repository_has_its_own_entry(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    """What is stored beside a digest differs between repositories; the cache keeps them apart."""
    image, other = new_image(b"shared"), new_image(b"shared")
    assert image.digest == other.digest and image.repository != other.repository
    attest(client, image, key)
    cache = EvidenceCache()
    assert len(cache.verify(client, str(image), [key.trusted]).verified) == 1
    assert cache.verify(client, str(other), [key.trusted]).verified == ()
    assert (cache.hits, cache.misses) == (0, 2)


def test_positive_ttl_is_bounded() -> None:
    with pytest.raises(ValueError, match="positive_ttl must be a positive number of seconds"):
        EvidenceCache(positive_ttl=float("inf"))


def test_bounded_and_keyed_by_signers(
    client: RegistryClient, new_image: NewImage, key: KeyPair, other_key: KeyPair
) -> None:
    images = [new_image(bytes([n])) for n in range(3)]
    for image in images:
        attest(client, image, key)
    cache = EvidenceCache(max_entries=2)
    for image in images:
        cache.verify(client, str(image), [key.trusted])
    assert len(cache) == 2
    cache.verify(client, str(images[2]), [key.trusted])
    assert (cache.hits, cache.misses) == (1, 3)
    cache.verify(client, str(images[0]), [key.trusted])  # evicted: least recently used
    assert (cache.hits, cache.misses) == (1, 4)
    evidence = cache.verify(client, str(images[0]), [other_key.trusted])  # other trust: miss
    assert (cache.hits, cache.misses) == (1, 5)
    assert evidence.verified == ()
    assert [r.reason.split(":")[0] for r in evidence.rejected] == [
        "no signature verified with the trusted keys (other.pub)"
    ]

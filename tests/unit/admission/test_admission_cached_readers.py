"""The webhook's warm path (``EvidenceResolver.cached``) answers from the evidence cache only
where the request's credentials for the registry have read the image: another reader goes the
cold way, where the registry is asked with its own credentials (``EvidenceCache.lookup``;
against a real registry: ``tests/integration/attest/test_attest_cache_readers.py``)."""

from __future__ import annotations

from affidavit.admission.resolve import EvidenceResolver, access_of
from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.registry import Credentials
from affidavit.policy import PolicyIndex

DIGEST = "sha256:" + "d" * 64
IMAGE = f"registry.example/team-a/private@{DIGEST}"


def test_the_warm_path_answers_only_a_reader_the_registry_has_shown() -> None:
    cache = EvidenceCache()
    resolver = EvidenceResolver(cache=cache, allowed_hosts=("registry.example",))
    index = PolicyIndex.from_objects([], [], [])
    key = cache.key(DIGEST, [], None, "registry.example/team-a/private")
    cache.put(key, ImageEvidence(IMAGE, DIGEST, (), ()), access=access_of(Credentials("a", "b")))

    def warm() -> object:
        return resolver.cached(IMAGE, [], index=index, namespace="shop")

    assert warm() is None  # no pull secret: not shown to read it, so asked cold
    cache.put(key, ImageEvidence(IMAGE, DIGEST, (), ()), access="")
    assert warm() is not None  # read anonymously before: answered warm
    assert access_of(None) == "" and access_of(Credentials("a", "b")) != ""
    assert "s3cret" not in access_of(Credentials("ci", "s3cret"))  # no secret in it

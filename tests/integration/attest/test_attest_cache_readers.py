"""The evidence cache answers only who has shown the registry lets them read the image.

A digest is not resolved, so before, the evidence one workload's pull secret fetched from a
private repository answered another workload's request for the same digest with no secret (or
with a secret of its own that the registry refuses): the denial then showed another team's
reviewers, files and change requests. Against a real docker-registry that requires a password.
"""

from __future__ import annotations

import pytest
from attest_support import KeyPair, attest

from affidavit.admission.resolve import access_of
from affidavit.attestations.evidence_cache import EvidenceCache
from affidavit.attestations.image import push_sample_image
from affidavit.attestations.registry import (
    Credentials,
    ImageReference,
    RegistryAccessError,
    RegistryClient,
)

TEAM_A = Credentials("ci", "s3cret")


def test_cached_evidence_answers_only_readers(auth_registry: str, key: KeyPair) -> None:
    repository = ImageReference.parse(f"{auth_registry}/team-a/private")
    cache = EvidenceCache()
    with (
        RegistryClient(credentials={auth_registry: TEAM_A}) as team_a,
        RegistryClient() as nobody,
        RegistryClient(credentials={auth_registry: Credentials("ci", "guess")}) as guesser,
    ):
        digest = push_sample_image(team_a, repository, {"a": b"1"}, "v1")
        image = str(repository.with_digest(digest))
        attest(team_a, repository.with_digest(digest), key)
        first = cache.lookup(team_a, image, [key.trusted], access=access_of(TEAM_A))
        assert first.result == "miss" and first.evidence.verified
        # another workload names the digest: no secret, or one the registry refuses
        for client, access in ((nobody, ""), (guesser, "someone-else")):
            with pytest.raises(RegistryAccessError):
                cache.lookup(client, image, [key.trusted], access=access)
        key_of = cache.key(digest, [key.trusted], None, repository.name)
        assert not cache.read_by(key_of, "") and cache.read_by(key_of, access_of(TEAM_A))
        # the reader it came from, and one shown by the registry, are answered from the cache
        again = cache.lookup(team_a, image, [key.trusted], access=access_of(TEAM_A))
        assert again.result == "hit"
        shown = cache.lookup(team_a, image, [key.trusted], access="team-a-second-secret")
        assert shown.result == "hit" and cache.read_by(key_of, "team-a-second-secret")

"""Fetching the attestations beside an image sends independent registry requests together (the
three listings, the bundle manifests, every layer) yet returns what the one-by-one walk returned,
in its order; a bundle that attach wrote beside a cosign layer is known by its digest, not read
twice; and the caller's registry deadline (the webhook's request budget) bounds the
requests made on its behalf in the fetch's worker threads too."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest
from attest_support import PREDICATE_TYPE, REVIEW_TYPE, KeyPair, attest, sign_for

from affidavit.attestations.fetch import _bundles_of, fetch
from affidavit.attestations.parallel import in_parallel
from affidavit.attestations.registry import (
    BudgetExceededError,
    ImageReference,
    Manifest,
    RegistryClient,
)
from affidavit.attestations.registry_transport import deadline
from affidavit.attestations.store import attach, key_bundle

NewImage = Callable[..., ImageReference]


def test_many_attestations_come_back_in_layout_and_attach_order(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    results = [
        attest(client, image, key, {"n": i}, PREDICATE_TYPE if i % 2 else REVIEW_TYPE)
        for i in range(12)
    ]
    found = fetch(client, image)
    assert [(f.storage, f.digest) for f in found] == [
        *(("cosign-tag", r.envelope_digest) for r in results),
        *(("tag-index", r.bundle_digest) for r in results),
    ]
    assert all(f.data is not None and f.problem is None for f in found)


def test_the_callers_deadline_bounds_the_parallel_requests(
    client: RegistryClient, new_image: NewImage
) -> None:
    image = new_image()  # nothing attached: only the three listings, all in worker threads
    with deadline(time.monotonic() - 1), pytest.raises(BudgetExceededError) as e:
        fetch(client, image)
    assert e.value.message.startswith("the time budget ran out before registry ")


class CountingClient(RegistryClient):
    """The real client, counting the manifests and blobs it reads by digest."""

    def __init__(self) -> None:
        super().__init__()
        self.manifests: list[str] = []
        self.blobs: list[str] = []

    def get_manifest(self, ref: ImageReference, *, max_bytes: int | None = None) -> Manifest:
        self.manifests.append(ref.reference)
        return super().get_manifest(ref, max_bytes=max_bytes)

    def get_blob(self, ref: ImageReference, digest: str, *, max_bytes: int | None = None) -> bytes:
        self.blobs.append(digest)
        return super().get_blob(ref, digest, max_bytes=max_bytes)


def test_a_bundle_attach_wrote_beside_a_cosign_layer_is_not_read_twice(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    results = [attest(client, image, key, {"n": i}) for i in range(5)]
    # a bundle written by another tool (here: with a transparency-log entry) has no twin
    theirs = json.loads(key_bundle(sign_for(image, key, {"n": "theirs"})))
    theirs["verificationMaterial"]["tlogEntries"] = [{"logIndex": "7"}]
    other = attach(client, image, PREDICATE_TYPE, bundle=json.dumps(theirs).encode())
    counting = CountingClient()
    with counting:  # as RegistryClient.__enter__ is typed, `as` would not be a CountingClient
        found = fetch(counting, image)
    assert [(f.storage, f.digest) for f in found] == [
        *(("cosign-tag", r.envelope_digest) for r in [*results, other]),
        *(("tag-index", r.bundle_digest) for r in [*results, other]),
    ]
    for f in found:  # the bytes the registry holds, whether read or known by their digest
        assert (f.data, f.problem) == (client.get_blob(image, f.digest), None)
    # the envelopes are embedded in the cosign manifest: only the twinless bundle is read
    assert counting.blobs == [other.bundle_digest]
    assert counting.manifests == [other.referrer_digest]


def test_a_twin_is_known_whether_or_not_its_envelope_is_written_compactly(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    # attach's bundle is the envelope spliced in when it is written as Envelope.to_json writes
    # it; an envelope written otherwise (spaces, another key order: another tool's) is written
    # out again inside the bundle, and its twin is still known without reading it
    image = new_image()
    compact = sign_for(image, key, {"n": "compact"})
    loose = json.dumps(json.loads(sign_for(image, key, {"n": "loose"})), indent=1).encode()
    reordered = json.loads(sign_for(image, key, {"n": "reordered"}))
    reordered = json.dumps(dict(reversed(list(reordered.items())))).encode()
    stored = [
        attach(client, image, PREDICATE_TYPE, envelope=e) for e in (compact, loose, reordered)
    ]
    # the compact one's bundle is found by splicing alone (no second JSON write of the layer)
    assert list(_bundles_of(compact)) == [key_bundle(compact)]
    assert list(_bundles_of(loose)) == [_spliced(loose), key_bundle(loose)]
    counting = CountingClient()
    with counting:  # as RegistryClient.__enter__ is typed, `as` would not be a CountingClient
        found = fetch(counting, image)
    assert counting.blobs == []  # embedded in the cosign manifest, and every bundle a twin
    assert counting.manifests == []
    for f in found:
        assert (f.data, f.problem) == (client.get_blob(image, f.digest), None)
    assert [f.digest for f in found if f.storage == "tag-index"] == [
        r.bundle_digest for r in stored
    ]


def _spliced(envelope: bytes) -> bytes:
    return key_bundle(envelope).replace(
        json.dumps(json.loads(envelope), separators=(",", ":")).encode(), envelope
    )


def test_a_round_runs_on_the_threads_the_last_one_left_idle() -> None:
    # four calls that each wait for the other three: four threads, the caller and three helpers
    def rounds() -> list[threading.Thread]:
        meet = threading.Barrier(4)

        def call() -> threading.Thread:
            meet.wait(30)
            return threading.current_thread()

        ran = in_parallel([call] * 4)
        assert len(set(ran)) == 4 and threading.current_thread() in ran
        return ran

    rounds()
    alive = set(threading.enumerate())
    assert set(rounds()) <= alive  # no thread started: the helpers were kept

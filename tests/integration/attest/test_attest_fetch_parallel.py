"""Fetching the attestations beside an image sends independent registry requests together (the
three listings, the bundle manifests, every layer) yet returns what the one-by-one walk returned,
in its order; and the caller's registry deadline (the webhook's request budget) bounds the
requests made on its behalf in the fetch's worker threads too."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from attest_support import PREDICATE_TYPE, REVIEW_TYPE, KeyPair, attest

from affidavit.attestations.registry import BudgetExceededError, ImageReference, RegistryClient
from affidavit.attestations.registry_transport import deadline
from affidavit.attestations.store import fetch

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

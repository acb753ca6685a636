"""What one image can make a reader fetch is bounded, on the real registry: a cosign tag or a
referrer listing with more attestations than a verifier reads, or layers adding up to more bytes
than it holds, is refused before any of them is read (naming the count and the fix); a blob
listed many times is read once; a bundle manifest too large to be a listing is that item's
problem. Anyone who may push to one repository of a trusted registry could otherwise make every
admission of an image fetch gigabytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from attest_support import PREDICATE_TYPE, KeyPair, attest, sign_for
from test_attest_fetch_parallel import CountingClient

from affidavit.attestations import fetch as fetch_module
from affidavit.attestations.dsse import DSSE_MEDIA_TYPE
from affidavit.attestations.fetch import (
    MAX_BUNDLE_MANIFEST_BYTES,
    MAX_TOTAL_BYTES,
    fetch,
)
from affidavit.attestations.registry import (
    DEFAULT_MAX_BYTES,
    ContentError,
    ImageReference,
    RegistryClient,
    sha256_digest,
)
from affidavit.attestations.store import (
    ANNOTATION_BUNDLE_CONTENT,
    BUNDLE_MEDIA_TYPE,
    EMPTY_DIGEST,
    EMPTY_MEDIA_TYPE,
    cosign_tag,
    index_tag,
)
from affidavit.attestations.verify import verify_fetched

NewImage = Callable[..., ImageReference]
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _put_cosign_manifest(
    client: RegistryClient, image: ImageReference, layers: list[dict[str, Any]]
) -> None:
    assert image.digest is not None
    config_digest = client.put_blob(image, b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config_digest, "size": 2},
        "layers": layers,
    }
    client.put_manifest(
        image.with_tag(cosign_tag(image.digest)), json.dumps(manifest).encode(), OCI_MANIFEST
    )


def _dsse_layer(digest: str, size: int) -> dict[str, Any]:
    return {
        "mediaType": DSSE_MEDIA_TYPE,
        "digest": digest,
        "size": size,
        "annotations": {"predicateType": PREDICATE_TYPE},
    }


def _counted_fetch(image: ImageReference) -> tuple[CountingClient, pytest.ExceptionInfo[Any]]:
    counting = CountingClient()
    with counting, pytest.raises(ContentError) as e:
        fetch(counting, image)
    return counting, e


#: The count limit, lowered for these tests (1,024 in use): what is checked is the rule.
LIMIT = 8


@pytest.fixture
def lower_count_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_module, "MAX_ATTESTATIONS", LIMIT)


def test_a_cosign_tag_with_more_layers_than_a_reader_reads_is_refused_unread(
    client: RegistryClient, new_image: NewImage, lower_count_limit: None
) -> None:
    image = new_image()
    layers = [
        _dsse_layer(client.put_blob(image, b"junk %d" % i), len(b"junk %d" % i))
        for i in range(LIMIT + 1)
    ]
    _put_cosign_manifest(client, image, layers)
    counting, e = _counted_fetch(image)
    assert e.value.message == (
        f"{image} has {LIMIT + 1} attestations in its cosign tag, more than the {LIMIT} a"
        " verifier reads for one image; the image's attestations are refused"
    )
    assert e.value.hint is not None and "cosign clean --type attestation" in e.value.hint
    assert counting.blobs == []


def test_layers_declaring_more_bytes_in_all_than_a_reader_holds_are_refused_unread(
    client: RegistryClient, new_image: NewImage
) -> None:
    # each declares the most one layer may be (the registry does not check declared sizes; a
    # reader finds a lie only by reading): 17 of them are more than the total
    image = new_image()
    count = MAX_TOTAL_BYTES // DEFAULT_MAX_BYTES + 1
    layers = [
        _dsse_layer(client.put_blob(image, b"big %d" % i), DEFAULT_MAX_BYTES) for i in range(count)
    ]
    _put_cosign_manifest(client, image, layers)
    counting, e = _counted_fetch(image)
    assert e.value.message == (
        f"{image}'s attestations in its cosign tag add up to {count * DEFAULT_MAX_BYTES:,}"
        f" bytes, more than the {MAX_TOTAL_BYTES:,} a verifier reads for one image; the"
        " image's attestations are refused"
    )
    assert counting.blobs == []
    # one layer fewer is within the total: every one is read (the digest, not the declared
    # size, says what the bytes are)
    _put_cosign_manifest(client, image, layers[:-1])
    found = fetch(client, image)
    assert [f.data for f in found] == [b"big %d" % i for i in range(count - 1)]


def test_one_envelope_listed_a_thousand_times_is_read_and_verified_once(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    envelope = sign_for(image, key)
    digest = client.put_blob(image, envelope)
    _put_cosign_manifest(client, image, [_dsse_layer(digest, len(envelope))] * 1000)
    counting = CountingClient()
    with counting:
        found = fetch(counting, image)
    assert [(f.storage, f.digest, f.data) for f in found] == [("cosign-tag", digest, envelope)]
    assert counting.blobs == [digest]
    verified = verify_fetched(found, image, [key.trusted])
    assert [a.predicate_type for a in verified.verified] == [PREDICATE_TYPE]


def _artifact(
    client: RegistryClient, image: ImageReference, n: int, bundle: str, pad: int = 0
) -> dict[str, Any]:
    """An OCI 1.1 bundle artifact manifest about ``image`` (distinct by ``n``, ``pad`` bytes
    larger than it has to be); its descriptor."""
    assert image.digest is not None
    subject = client.get_manifest(image)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "digest": bundle, "size": 9}],
            "subject": {
                "mediaType": subject.media_type,
                "digest": image.digest,
                "size": len(subject.data),
            },
            "annotations": {
                ANNOTATION_BUNDLE_CONTENT: "dsse-envelope",
                "n": str(n),
                "pad": "x" * pad,
            },
        }
    ).encode()
    digest, _ = client.put_manifest(
        image.with_digest(sha256_digest(manifest)), manifest, OCI_MANIFEST
    )
    return {
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "digest": digest,
        "size": len(manifest),
    }


def _put_tag_index(
    client: RegistryClient, image: ImageReference, entries: list[dict[str, Any]]
) -> None:
    assert image.digest is not None
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    client.put_manifest(image.with_tag(index_tag(image.digest)), index.encode(), OCI_INDEX)


def test_a_referrer_listing_with_more_bundles_than_a_reader_reads_is_refused_unread(
    client: RegistryClient, new_image: NewImage, lower_count_limit: None
) -> None:
    image = new_image()
    client.put_blob(image, b"{}")
    bundle = client.put_blob(image, b'{"x": 1}\n')
    entries = [_artifact(client, image, n, bundle) for n in range(LIMIT + 1)]
    _put_tag_index(client, image, entries)
    counting, e = _counted_fetch(image)
    assert e.value.message == (
        f"{image} has {LIMIT + 1} attestations in its referrers, more than the {LIMIT} a"
        " verifier reads for one image; the image's attestations are refused"
    )
    assert counting.manifests == [] and counting.blobs == []


def test_a_bundle_manifest_too_large_to_be_a_listing_is_that_items_problem(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    client.put_blob(image, b"{}")
    good = attest(client, image, key)
    bundle = client.put_blob(image, b'{"x": 1}\n')
    huge = _artifact(client, image, 0, bundle, pad=MAX_BUNDLE_MANIFEST_BYTES)
    assert huge["size"] > MAX_BUNDLE_MANIFEST_BYTES
    index = client.get_manifest(image.with_tag(good.index_tag)).json()
    _put_tag_index(client, image, [*index["manifests"], huge])
    found = fetch(client, image)
    problems = {f.digest: f.problem for f in found if f.problem}
    assert list(problems) == [huge["digest"]]
    assert f"over the {MAX_BUNDLE_MANIFEST_BYTES}-byte limit" in str(problems[huge["digest"]])
    verified = verify_fetched(found, image, [key.trusted])
    assert [a.predicate_type for a in verified.verified] == [PREDICATE_TYPE]


def test_a_layer_larger_than_a_blob_may_be_costs_the_total_nothing(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    # another tool's 10 MB SBOM layers are never read (each that item's problem): seventeen
    # of them must not refuse the image's own envelope with the total
    image = new_image()
    envelope = sign_for(image, key)
    good = client.put_blob(image, envelope)
    big = [_dsse_layer(client.put_blob(image, b"sbom %d" % i), 10_000_000) for i in range(17)]
    _put_cosign_manifest(client, image, [*big, _dsse_layer(good, len(envelope))])
    found = fetch(client, image)
    assert [f.problem is None for f in found] == [False] * 17 + [True]
    verified = verify_fetched(found, image, [key.trusted])
    assert [a.predicate_type for a in verified.verified] == [PREDICATE_TYPE]


def test_a_size_understated_fails_alone(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    # a layer declaring 1 byte is read with that limit: bytes beyond it are refused on the
    # way in, so understated sizes cannot carry gigabytes past the total
    image = new_image()
    envelope = sign_for(image, key)
    good = client.put_blob(image, envelope)
    lie = client.put_blob(image, b"x" * 100_000)
    _put_cosign_manifest(client, image, [_dsse_layer(lie, 1), _dsse_layer(good, len(envelope))])
    counting = CountingClient()
    with counting:
        found = fetch(counting, image)
    assert [f.problem for f in found][1] is None
    assert "is 100000 bytes, over the 1-byte limit (the 1 it declares)" in str(found[0].problem)

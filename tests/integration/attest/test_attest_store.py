"""Storing attestations beside an image in the real registry, in both layouts, and finding them.

Covers: the cosign ``.att`` manifest (config, one DSSE layer per envelope, predicateType
annotation, no duplicate on re-attach, appending), the OCI 1.1 bundle artifact (empty config,
subject, annotations, key bundle shape), the ``sha256-<hex>`` tag-index fallback on a registry
without the referrers API, and that verification finds and deduplicates both.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from attest_support import PREDICATE_TYPE, REVIEW_TYPE, KeyPair, attest

from affidavit.attestations.fetch import fetch
from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.store import EMPTY_DIGEST
from affidavit.attestations.verify import verify_image

NewImage = Callable[..., ImageReference]


def test_cosign_tag_layout(client: RegistryClient, new_image: NewImage, key: KeyPair) -> None:
    image = new_image()
    result = attest(client, image, key)
    assert image.digest is not None
    assert result.cosign_tag == image.digest.replace(":", "-") + ".att"
    manifest = client.get_manifest(image.with_tag(result.cosign_tag))
    assert manifest.digest == result.cosign_manifest_digest
    document = manifest.json()
    assert document["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert document["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(client.get_blob(image, document["config"]["digest"]))
    assert config["rootfs"] == {"type": "layers", "diff_ids": [result.envelope_digest]}
    [layer] = document["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["digest"] == result.envelope_digest
    assert layer["annotations"] == {
        "dev.cosignproject.cosign/signature": "",
        "predicateType": PREDICATE_TYPE,
    }
    envelope = json.loads(client.get_blob(image, layer["digest"]))
    assert envelope["payloadType"] == "application/vnd.in-toto+json"


def test_reattach_does_not_duplicate_and_new_types_append(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    first = attest(client, image, key)
    again = attest(client, image, key)  # ECDSA signatures differ: a new envelope
    from attest_support import sign_for

    from affidavit.attestations.store import attach

    envelope = sign_for(image, key, {"commits": 9}, REVIEW_TYPE)
    third = attach(client, image, REVIEW_TYPE, envelope=envelope)
    repeat = attach(client, image, REVIEW_TYPE, envelope=envelope)
    assert repeat.cosign_manifest_digest == third.cosign_manifest_digest
    assert repeat.referrer_digest == third.referrer_digest
    layers = client.get_manifest(image.with_tag(first.cosign_tag)).json()["layers"]
    assert [entry["digest"] for entry in layers] == [
        first.envelope_digest,
        again.envelope_digest,
        third.envelope_digest,
    ]
    index = client.get_manifest(image.with_tag(first.index_tag)).json()
    assert [m["digest"] for m in index["manifests"]] == [
        first.referrer_digest,
        again.referrer_digest,
        third.referrer_digest,
    ]


def test_bundle_artifact_and_tag_index(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    result = attest(client, image, key)
    artifact = client.get_manifest(image.with_digest(result.referrer_digest)).json()
    assert artifact["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert artifact["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": EMPTY_DIGEST,
        "size": 2,
    }
    assert client.get_blob(image, EMPTY_DIGEST) == b"{}"
    assert artifact["subject"]["digest"] == image.digest
    assert artifact["subject"]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert artifact["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": PREDICATE_TYPE,
    }
    [layer] = artifact["layers"]
    bundle = json.loads(client.get_blob(image, layer["digest"]))
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["publicKey"] == {"hint": key.signer.keyid}
    envelope = json.loads(client.get_blob(image, result.envelope_digest))
    assert bundle["dsseEnvelope"] == envelope

    # Debian's distribution 2.8 has no referrers API: the fallback tag index carries it.
    assert image.digest is not None
    assert client.referrers(image, image.digest) is None
    assert not result.referrers_api
    index = client.get_manifest(image.with_tag(result.index_tag))
    assert index.media_type == "application/vnd.oci.image.index.v1+json"
    [entry] = index.json()["manifests"]
    assert entry["digest"] == result.referrer_digest
    assert entry["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert entry["annotations"]["dev.sigstore.bundle.predicateType"] == PREDICATE_TYPE


def test_both_layouts_are_found_and_counted_once(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    result = attest(client, image, key)
    found = fetch(client, image)
    assert [(f.storage, f.digest, f.predicate_type) for f in found] == [
        ("cosign-tag", result.envelope_digest, PREDICATE_TYPE),
        ("tag-index", result.bundle_digest, PREDICATE_TYPE),
    ]
    evidence = verify_image(client, str(image), [key.trusted])
    assert [(a.storage, a.signer) for a in evidence.verified] == [("cosign-tag", "release.pub")]
    assert evidence.rejected == ()


def test_tag_index_alone_is_enough(
    client: RegistryClient, new_image: NewImage, key: KeyPair, registry: object
) -> None:
    image = new_image()
    result = attest(client, image, key, {"commits": 42})
    url = f"http://{image.registry}/v2/{image.repository}/manifests/{result.cosign_manifest_digest}"
    assert httpx.delete(url).status_code == 202  # cosign's .att layout is gone
    evidence = verify_image(client, str(image), [key.trusted])
    [only] = evidence.verified
    assert only.storage == "tag-index"
    assert only.envelope_digest == result.bundle_digest
    assert only.predicate == {"commits": 42}
    assert only.subject_name == image.name


def test_a_tag_is_resolved_and_types_filter(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image(tag="release-1")
    attest(client, image, key)
    attest(client, image, key, {"reviews": []}, REVIEW_TYPE)
    by_tag = f"{image.name}:release-1"
    evidence = verify_image(client, by_tag, [key.trusted])
    assert evidence.image == by_tag
    assert evidence.digest == image.digest
    assert sorted(a.predicate_type for a in evidence.verified) == [PREDICATE_TYPE, REVIEW_TYPE]
    only = verify_image(client, by_tag, [key.trusted], predicate_types=[REVIEW_TYPE])
    assert [a.predicate_type for a in only.verified] == [REVIEW_TYPE]
    assert only.of_type(REVIEW_TYPE)[0].predicate == {"reviews": []}

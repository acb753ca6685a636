"""One tamper test per verification failure, each asserting the exact reason a user sees.

Wrong key, payload rewritten in the registry, statement about another image, unknown payloadType,
malformed envelope, oversized layer (declared and actual), content changed at rest in the
registry's storage, an unreachable registry and a missing image.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from attest_support import (
    PREDICATE_TYPE,
    KeyPair,
    attest,
    closed_port,
    push_cosign_layer,
    rewrite_envelopes,
    sign_for,
    strip_embedded,
)

from affidavit.attestations.registry import ImageReference, RegistryClient
from affidavit.attestations.store import attach
from affidavit.attestations.verify import verify_image
from affidavit.errors import RegistryError

NewImage = Callable[..., ImageReference]


def only_reason(client: RegistryClient, image: ImageReference, key: KeyPair) -> str:
    evidence = verify_image(client, str(image), [key.trusted])
    assert evidence.verified == ()
    reasons = {r.reason for r in evidence.rejected}
    assert len(reasons) == 1, reasons
    return reasons.pop()


def test_wrong_key(
    client: RegistryClient, new_image: NewImage, key: KeyPair, other_key: KeyPair
) -> None:
    image = new_image()
    attest(client, image, other_key)
    evidence = verify_image(client, str(image), [key.trusted])
    [rejected] = evidence.rejected  # the same envelope in both layouts counts once
    assert rejected.reason == (
        "no signature verified with the trusted keys (release.pub): the payload was changed "
        "after signing or was signed by another key"
    )
    assert rejected.storage == "cosign-tag"
    assert rejected.predicate_type == PREDICATE_TYPE


def test_tampered_payload(client: RegistryClient, new_image: NewImage, key: KeyPair) -> None:
    image = new_image()
    attest(client, image, key, {"aiInvolvement": "generated"})

    def launder(envelope: dict[str, Any]) -> dict[str, Any]:
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"] = {"aiInvolvement": "none"}
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        return envelope

    rewrite_envelopes(client, image, launder)
    evidence = verify_image(client, str(image), [key.trusted])
    assert evidence.verified == ()
    assert {(r.storage, r.reason) for r in evidence.rejected} == {
        (
            "cosign-tag",
            "no signature verified with the trusted keys (release.pub): the payload was "
            "changed after signing or was signed by another key",
        )
    }


def test_subject_of_another_image(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image(b"one")
    other = new_image(b"two")
    envelope = sign_for(image, key, subject_digest=other.digest)
    attach(client, image, PREDICATE_TYPE, envelope=envelope)
    assert only_reason(client, image, key) == (
        f"statement subject is {other.digest}, not this image's {image.digest}; the "
        "attestation was made for another image"
    )


def test_unknown_payload_type(client: RegistryClient, new_image: NewImage, key: KeyPair) -> None:
    image = new_image()
    envelope = sign_for(image, key, payload_type="text/plain")
    attach(client, image, PREDICATE_TYPE, envelope=envelope)
    assert only_reason(client, image, key) == (
        "payloadType is 'text/plain', expected 'application/vnd.in-toto+json'"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "envelope is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        (b"[1, 2]", "envelope is not a DSSE envelope: a JSON list, not an object"),
        (
            b'{"payload": "e30=", "payloadType": "application/vnd.in-toto+json"}',
            "envelope has no signatures",
        ),
    ],
)
def test_malformed_envelope(
    client: RegistryClient, new_image: NewImage, key: KeyPair, data: bytes, reason: str
) -> None:
    image = new_image()
    layer = push_cosign_layer(client, image, data)
    evidence = verify_image(client, str(image), [key.trusted])
    [rejected] = evidence.rejected
    assert (rejected.envelope_digest, rejected.reason) == (layer, reason)


def test_statement_that_is_not_in_toto(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    from affidavit.attestations.dsse import sign_envelope

    payload = json.dumps({"_type": "https://example.com/Other", "subject": []}).encode()
    push_cosign_layer(client, image, sign_envelope(payload, key.signer).to_json())
    assert only_reason(client, image, key) == (
        "statement is not an in-toto Statement v1: _type is 'https://example.com/Other', "
        "expected 'https://in-toto.io/Statement/v1'"
    )


def test_oversized_layer(client: RegistryClient, new_image: NewImage, key: KeyPair) -> None:
    image = new_image()
    layer = push_cosign_layer(client, image, b" " * 9_000_000)
    assert only_reason(client, image, key) == (
        f"attestation layer {layer} is 9000000 bytes, over the 4194304-byte limit"
    )


def test_oversized_layer_that_lies_about_its_size(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    image = new_image()
    layer = push_cosign_layer(client, image, b" " * 9_000_000, declared_size=100)
    # read with the size it declares as its limit: refused past 100 bytes, not 4 MiB
    assert only_reason(client, image, key) == (
        f"attestation layer {layer} is 9000000 bytes, over the 100-byte limit (the 100 it declares)"
    )


def test_layer_changed_at_rest_in_the_registry(
    client: RegistryClient, new_image: NewImage, key: KeyPair, registry: Any
) -> None:
    image = new_image()
    result = attest(client, image, key)
    strip_embedded(client, image)  # as cosign writes it: the envelope only in its blob
    hexdigest = result.envelope_digest.removeprefix("sha256:")
    blob = Path(registry.root, "data/docker/registry/v2/blobs/sha256", hexdigest[:2], hexdigest)
    (blob / "data").write_bytes(b"{}")  # the storage backend no longer holds what was pushed
    evidence = verify_image(client, str(image), [key.trusted])
    assert [a.storage for a in evidence.verified] == ["tag-index"]  # the bundle is intact
    [rejected] = evidence.rejected
    assert rejected.reason == (
        f"blob {result.envelope_digest} from {image.name} has digest "
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a; the "
        "registry returned other content than asked for"
    )


def test_registry_unreachable(client: RegistryClient) -> None:
    host = f"127.0.0.1:{closed_port()}"
    with pytest.raises(RegistryError) as caught:
        verify_image(client, f"{host}/app@sha256:{'a' * 64}", [])
    assert caught.value.message == (
        f"registry {host} is unreachable: connection refused; check the address and that the "
        "registry is running"
    )


def test_image_missing(client: RegistryClient, registry: Any, key: KeyPair) -> None:
    image = f"{registry.host}/affidavit-test/nothing-here@sha256:{'b' * 64}"
    with pytest.raises(RegistryError) as caught:
        verify_image(client, image, [key.trusted])
    assert caught.value.message == f"image {image} not found in the registry"
    assert caught.value.hint == "check the repository and digest, or push the image first"


def test_an_embedded_envelope_that_is_not_the_layers_content_is_never_believed(
    client: RegistryClient, new_image: NewImage, key: KeyPair
) -> None:
    # someone with push access swaps the copy embedded in the cosign layer's descriptor for
    # another envelope (signed by the same key, over another predicate) and leaves the digest
    image = new_image()
    result = attest(client, image, key, {"commits": 3})
    substitute = sign_for(image, key, {"commits": 999})
    att = image.with_tag(result.cosign_tag)
    manifest = client.get_manifest(att).json()
    [layer] = manifest["layers"]
    assert base64.b64decode(layer["data"]) == client.get_blob(image, result.envelope_digest)
    layer["data"] = base64.b64encode(substitute).decode()
    client.put_manifest(att, json.dumps(manifest).encode(), manifest["mediaType"])
    evidence = verify_image(client, str(image), [key.trusted])
    # the blob the digest names is read instead: what was signed for that layer, nothing else
    assert [(a.storage, a.envelope_digest) for a in evidence.verified] == [
        ("cosign-tag", result.envelope_digest)
    ]
    assert [a.predicate for a in evidence.verified] == [{"commits": 3}]
    assert evidence.rejected == ()

"""Attestations beside the image, in both layouts that existing tools read, and back again.

Verifiers in the wild look in one of two places: cosign's ``sha256-<hex>.att`` tag (an image
manifest with one DSSE-envelope layer per attestation), or an OCI 1.1 artifact holding a Sigstore
bundle whose ``subject`` is the image, found through the referrers API or, on registries without
it (Debian's distribution 2.8), through the ``sha256-<hex>`` fallback tag index. Writing both and
reading both here means ``cosign verify-attestation``, Sigstore-bundle tooling and Affidavit all
find the same evidence, and that reading applies one size limit and one digest check to every
blob whatever layout it came from.

A cosign layer's envelope is also embedded in its descriptor (the OCI descriptor's ``data``
field, base64) while the manifest stays small: the blob is still pushed, for the tools that read
only blobs, but a verifier that reads the manifest has the envelope with it and saves the second,
dependent round trip of a first look at a digest. Embedded bytes count only when they hash to
the descriptor's digest (``embedded``), so they are exactly the blob's content or ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from affidavit.attestations.dsse import DSSE_MEDIA_TYPE
from affidavit.attestations.evidence import Storage
from affidavit.attestations.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    ImageReference,
    RegistryClient,
    sha256_digest,
)
from affidavit.errors import InputError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
ANNOTATION_PREDICATE_TYPE = "predicateType"
ANNOTATION_BUNDLE_CONTENT = "dev.sigstore.bundle.content"
ANNOTATION_BUNDLE_PREDICATE_TYPE = "dev.sigstore.bundle.predicateType"
ANNOTATION_COSIGN_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_COSIGN_SIGNATURE = "dev.cosignproject.cosign/signature"  # empty for DSSE, as cosign
#: Envelopes up to this size are embedded in their cosign layer's descriptor...
EMBED_LAYER_BYTES = 64 * 1024
#: ... while the base64 of all a manifest embeds stays under this (registries cap manifests at
#: 4 MiB; distribution 2.8 does).
EMBED_MANIFEST_BYTES = 1024 * 1024


def embedded(layer: dict[str, Any], max_bytes: int) -> bytes | None:
    """The bytes embedded in ``layer``'s descriptor (its ``data``) when they are exactly the
    content its digest and size name and no larger than ``max_bytes``; None otherwise (read
    the blob instead: it is digest-checked the same way)."""
    data, size, digest = layer.get("data"), layer.get("size"), layer.get("digest")
    if not isinstance(data, str) or not isinstance(size, int) or not isinstance(digest, str):
        return None
    if size > max_bytes or len(data) != 4 * ((size + 2) // 3):
        return None
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(content) != size or sha256_digest(content) != digest:
        return None
    return content


def cosign_tag(digest: str) -> str:
    """cosign's attestation tag for an image digest: ``sha256-<hex>.att``."""
    return digest.replace(":", "-") + ".att"


def index_tag(digest: str) -> str:
    """The OCI referrers fallback tag for an image digest: ``sha256-<hex>``."""
    return digest.replace(":", "-")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class AttachResult:
    """Where an attestation was stored (both layouts)."""

    image: ImageReference  # with digest
    envelope_digest: str  # the DSSE layer in the cosign tag
    cosign_tag: str
    cosign_manifest_digest: str
    bundle_digest: str
    referrer_digest: str  # the OCI 1.1 artifact manifest whose subject is the image
    index_tag: str
    referrers_api: bool  # True when the registry indexed the subject itself (OCI-Subject)


@dataclass(frozen=True)
class FetchedAttestation:
    """One envelope or bundle found beside the image: its bytes, or why it could not be read."""

    storage: Storage
    media_type: str  # DSSE_MEDIA_TYPE or BUNDLE_MEDIA_TYPE
    digest: str  # of the layer blob
    predicate_type: str | None  # the (unsigned) annotation, a hint only
    data: bytes | None
    problem: str | None = None


def key_bundle(envelope_json: bytes) -> bytes:
    """A Sigstore bundle v0.3 for a key-signed envelope: public-key hint, no tlog entries."""
    try:
        envelope = json.loads(envelope_json)
        keyid = envelope["signatures"][0].get("keyid", "")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise InputError(f"cannot wrap the envelope in a Sigstore bundle: {e}") from e
    return _json(
        {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": keyid}, "tlogEntries": []},
            "dsseEnvelope": envelope,
        }
    )


def _bundle_envelope(bundle: bytes) -> tuple[bytes, str | None]:
    """The DSSE envelope inside a bundle (as compact JSON) and its certificate PEM, if any."""
    try:
        document = json.loads(bundle)
        envelope = document["dsseEnvelope"]
        material = document.get("verificationMaterial", {})
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"the Sigstore bundle has no dsseEnvelope ({e})") from e
    raw_cert = (material.get("certificate") or {}).get("rawBytes")
    if raw_cert is None:
        chain = (material.get("x509CertificateChain") or {}).get("certificates") or []
        raw_cert = chain[0].get("rawBytes") if chain else None
    pem = None
    if raw_cert:
        lines = [raw_cert[i : i + 64] for i in range(0, len(raw_cert), 64)]
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"
    return _json(envelope), pem


def _artifact(
    bundle_digest: str, size: int, subject: tuple[str, str, int], annotations: dict[str, str]
) -> bytes:
    """The OCI 1.1 artifact manifest ``attach`` writes for a bundle (media type, digest, size of
    the subject image)."""
    return _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "digest": bundle_digest, "size": size}],
            "subject": {"mediaType": subject[0], "digest": subject[1], "size": subject[2]},
            "annotations": annotations,
        }
    )


def attach(
    client: RegistryClient,
    image: ImageReference,
    predicate_type: str,
    *,
    envelope: bytes | None = None,
    bundle: bytes | None = None,
) -> AttachResult:
    """Store a signed attestation beside ``image`` (which must carry a digest), in both layouts.

    Give the DSSE ``envelope`` of a key-signed statement (its bundle is made here), or the
    Sigstore ``bundle`` of a keyless one (its envelope goes into the cosign tag).
    """
    if image.digest is None:
        raise InputError(f"image {image} has no digest; attestations are stored by digest")
    certificate: str | None = None
    if bundle is None:
        if envelope is None:
            raise InputError("attach needs an envelope or a bundle")
        bundle = key_bundle(envelope)
    elif envelope is None:
        envelope, certificate = _bundle_envelope(bundle)
    subject_digest, subject_type, subject_size = client.head_manifest(image)

    # cosign's layout: append one DSSE layer to the .att manifest (idempotent).
    att_ref = image.with_tag(cosign_tag(image.digest))
    existing = client.find_manifest(att_ref)
    layers: list[dict[str, Any]] = list(existing.json().get("layers", [])) if existing else []
    envelope_digest = client.put_blob(image, envelope)
    if any(layer.get("digest") == envelope_digest for layer in layers) and existing:
        att_digest = existing.digest
    else:
        annotations = {ANNOTATION_COSIGN_SIGNATURE: "", ANNOTATION_PREDICATE_TYPE: predicate_type}
        if certificate:
            annotations[ANNOTATION_COSIGN_CERTIFICATE] = certificate
        layer: dict[str, Any] = {
            "mediaType": DSSE_MEDIA_TYPE,
            "size": len(envelope),
            "digest": envelope_digest,
            "annotations": annotations,
        }
        inline = sum(len(str(other.get("data", ""))) for other in layers)
        data = base64.b64encode(envelope).decode()
        if len(envelope) <= EMBED_LAYER_BYTES and inline + len(data) <= EMBED_MANIFEST_BYTES:
            layer["data"] = data
        layers.append(layer)
        config = _json(
            {
                "architecture": "",
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
                "config": {},
            }
        )
        config_digest = client.put_blob(image, config)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": COSIGN_CONFIG_MEDIA_TYPE,
                    "size": len(config),
                    "digest": config_digest,
                },
                "layers": layers,
            }
        )
        att_digest, _ = client.put_manifest(att_ref, manifest, OCI_MANIFEST)

    # OCI 1.1 artifact: the bundle as the single layer, subject = the image.
    client.put_blob(image, EMPTY_BLOB)
    bundle_digest = client.put_blob(image, bundle)
    bundle_annotations = {
        ANNOTATION_BUNDLE_CONTENT: "dsse-envelope",
        ANNOTATION_BUNDLE_PREDICATE_TYPE: predicate_type,
    }
    artifact = _artifact(bundle_digest, len(bundle), (subject_type, subject_digest, subject_size),
                         bundle_annotations)  # fmt: skip
    artifact_digest = sha256_digest(artifact)
    _, indexed = client.put_manifest(image.with_digest(artifact_digest), artifact, OCI_MANIFEST)

    # The referrers tag schema, kept even when the registry indexes subjects itself.
    tag_ref = image.with_tag(index_tag(image.digest))
    current = client.find_manifest(tag_ref)
    index: dict[str, Any] = (
        current.json() if current else {"schemaVersion": 2, "mediaType": OCI_INDEX}
    )
    entries: list[dict[str, Any]] = list(index.get("manifests") or [])
    if not any(entry.get("digest") == artifact_digest for entry in entries):
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": artifact_digest,
                "size": len(artifact),
                "artifactType": BUNDLE_MEDIA_TYPE,
                "annotations": bundle_annotations,
            }
        )
        index = {**index, "mediaType": OCI_INDEX, "manifests": entries}
        client.put_manifest(tag_ref, _json(index), OCI_INDEX)
    return AttachResult(
        image=image,
        envelope_digest=envelope_digest,
        cosign_tag=att_ref.tag or "",
        cosign_manifest_digest=att_digest,
        bundle_digest=bundle_digest,
        referrer_digest=artifact_digest,
        index_tag=tag_ref.tag or "",
        referrers_api=indexed,
    )

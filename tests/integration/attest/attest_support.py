"""Helpers for the attestation tests: keys, signing, and raw writes to the real registry."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from affidavit.attestations.dsse import sign_envelope
from affidavit.attestations.evidence import KeySigner
from affidavit.attestations.keys import PrivateKeySigner, generate_key_pair, load_signer
from affidavit.attestations.registry import ImageReference, RegistryClient, sha256_digest
from affidavit.attestations.statement import make_statement
from affidavit.attestations.store import AttachResult, attach
from affidavit.envtest.process import free_port

PREDICATE_TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
REVIEW_TYPE = "https://affidavit.dev/attestations/code-review/v1"


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    signer: PrivateKeySigner

    @property
    def trusted(self) -> KeySigner:
        return KeySigner(name=self.public_path.name, public_key_pem=self.public_path.read_text())


def make_key(directory: Path, name: str, kind: str = "ecdsa-p256") -> KeyPair:
    private_pem, public_pem = generate_key_pair("ed25519" if kind == "ed25519" else "ecdsa-p256")
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    private_path.write_bytes(private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(private_path, public_path, load_signer(private_path))


def sign_for(
    image: ImageReference,
    key: KeyPair,
    predicate: dict[str, Any] | None = None,
    predicate_type: str = PREDICATE_TYPE,
    *,
    subject_digest: str | None = None,
    payload_type: str = "application/vnd.in-toto+json",
) -> bytes:
    """A DSSE envelope (bytes) over a statement about ``image`` (or another digest)."""
    assert image.digest is not None
    statement = make_statement(
        image.name, subject_digest or image.digest, predicate_type, predicate or {"commits": 3}
    )
    return sign_envelope(statement, key.signer, payload_type=payload_type).to_json()


def attest(
    client: RegistryClient,
    image: ImageReference,
    key: KeyPair,
    predicate: dict[str, Any] | None = None,
    predicate_type: str = PREDICATE_TYPE,
) -> AttachResult:
    envelope = sign_for(image, key, predicate, predicate_type)
    return attach(client, image, predicate_type, envelope=envelope)


def push_cosign_layer(
    client: RegistryClient,
    image: ImageReference,
    data: bytes,
    *,
    predicate_type: str = PREDICATE_TYPE,
    declared_size: int | None = None,
) -> str:
    """Write a cosign ``.att`` manifest holding exactly one layer of ``data`` (no checks)."""
    assert image.digest is not None
    layer_digest = client.put_blob(image, data)
    config = b"{}"
    config_digest = client.put_blob(image, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.dsse.envelope.v1+json",
                "digest": layer_digest,
                "size": len(data) if declared_size is None else declared_size,
                "annotations": {"predicateType": predicate_type},
            }
        ],
    }
    tag = image.digest.replace(":", "-") + ".att"
    client.put_manifest(
        image.with_tag(tag),
        json.dumps(manifest).encode(),
        "application/vnd.oci.image.manifest.v1+json",
    )
    return layer_digest


def strip_embedded(client: RegistryClient, image: ImageReference) -> None:
    """Rewrite the cosign ``.att`` manifest without the envelopes ``attach`` embeds in its layer
    descriptors (as cosign writes it): a verifier has to read every layer's blob."""
    assert image.digest is not None
    att = image.with_tag(image.digest.replace(":", "-") + ".att")
    manifest = client.get_manifest(att).json()
    for layer in manifest["layers"]:
        layer.pop("data", None)
    client.put_manifest(att, json.dumps(manifest).encode(), manifest["mediaType"])


def rewrite_envelopes(
    client: RegistryClient,
    image: ImageReference,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Rewrite every stored envelope in place, in both layouts (what an attacker with push
    access to the registry could do): the cosign layer and the bundle inside each referrer."""
    assert image.digest is not None
    att = image.with_tag(image.digest.replace(":", "-") + ".att")
    manifest = client.get_manifest(att).json()
    for layer in manifest["layers"]:
        envelope = json.loads(client.get_blob(image, layer["digest"]))
        data = json.dumps(change(envelope)).encode()
        layer["digest"] = client.put_blob(image, data)
        layer["size"] = len(data)
    client.put_manifest(att, json.dumps(manifest).encode(), manifest["mediaType"])
    index_ref = image.with_tag(image.digest.replace(":", "-"))
    index = client.get_manifest(index_ref).json()
    for entry in index["manifests"]:
        referrer = client.get_manifest(image.with_digest(entry["digest"])).json()
        layer = referrer["layers"][0]
        bundle = json.loads(client.get_blob(image, layer["digest"]))
        bundle["dsseEnvelope"] = change(bundle["dsseEnvelope"])
        data = json.dumps(bundle).encode()
        layer["digest"] = client.put_blob(image, data)
        layer["size"] = len(data)
        raw = json.dumps(referrer).encode()
        entry["digest"], _ = client.put_manifest(
            image.with_digest(sha256_digest(raw)),
            raw,
            referrer["mediaType"],
        )
        entry["size"] = len(raw)
    client.put_manifest(index_ref, json.dumps(index).encode(), index["mediaType"])


def closed_port() -> int:
    """A loopback port nothing listens on (:func:`free_port` hands it to nobody else)."""
    return free_port()


def missing(what: str, how: str) -> None:
    """Fail in CI (``CI=true``), skip elsewhere: a needed tool is never silently absent."""
    message = f"{what} is not installed; {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def loopback_name() -> str | None:
    """A name for this machine that resolves to a loopback address but is neither ``localhost``
    nor an IP literal (Debian maps the host name to 127.0.0.1 or 127.0.1.1 in /etc/hosts)."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        return None
    loopback = all(isinstance(a, str) and a.startswith("127.") for a in addresses)
    if name == "localhost" or not addresses or not loopback:
        return None
    return name

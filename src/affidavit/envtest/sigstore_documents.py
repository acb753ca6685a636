"""The two files a private Sigstore's clients read: ``trusted_root.json`` and ``signing_config.json``.

Why apart from starting the services (:mod:`affidavit.envtest.sigstore`): these documents are
what every verifier trusts, offline, and their shape is Sigstore's (protobuf-specs' TrustedRoot
and SigningConfig v0.2, as JSON); building them is a job of its own, with no process in it.
Each service is valid from ``since``; a log is named by the SHA-256 of its DER public key
(RFC 6962, rekor-tiles too).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["OPERATOR", "signing_config_document", "trusted_root_document"]

TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
OPERATOR = "affidavit-private-sigstore"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _der_public(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def trusted_root_document(
    *,
    rekor: tuple[str, ec.EllipticCurvePrivateKey],
    ctlog: tuple[str, ec.EllipticCurvePrivateKey],
    fulcio: tuple[str, list[x509.Certificate]],
    tsa: tuple[str, list[x509.Certificate]],
    since: datetime,
) -> dict[str, object]:
    """The trusted root naming each service by its URL and its key or certificate chain."""
    return {
        "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
        "tlogs": [_log_instance(*rekor, since)],
        "certificateAuthorities": [_authority("fulcio", *fulcio, since)],
        "ctlogs": [_log_instance(*ctlog, since)],
        "timestampAuthorities": [_authority("tsa", *tsa, since)],
    }


def _valid_for(since: datetime) -> dict[str, str]:
    return {"start": since.strftime("%Y-%m-%dT%H:%M:%SZ")}


def _log_instance(url: str, key: ec.EllipticCurvePrivateKey, since: datetime) -> dict[str, object]:
    der = _der_public(key)
    return {
        "baseUrl": url,
        "hashAlgorithm": "SHA2_256",
        "publicKey": {
            "rawBytes": _b64(der),
            "keyDetails": "PKIX_ECDSA_P256_SHA_256",
            "validFor": _valid_for(since),
        },
        # An ECDSA log's id is the SHA-256 of its DER public key (RFC 6962; rekor-tiles too).
        "logId": {"keyId": _b64(hashlib.sha256(der).digest())},
    }


def _authority(
    name: str, url: str, chain: list[x509.Certificate], since: datetime
) -> dict[str, object]:
    return {
        "subject": {"organization": OPERATOR, "commonName": name},
        "uri": url,
        "certChain": {
            "certificates": [
                {"rawBytes": _b64(c.public_bytes(serialization.Encoding.DER))} for c in chain
            ]
        },
        "validFor": _valid_for(since),
    }


def signing_config_document(
    fulcio_url: str, rekor_url: str, tsa_url: str, since: datetime
) -> dict[str, object]:
    def service(url: str, version: int) -> dict[str, object]:
        return {
            "url": url,
            "majorApiVersion": version,
            "validFor": _valid_for(since),
            "operator": OPERATOR,
        }

    return {
        "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
        "caUrls": [service(fulcio_url, 1)],
        "oidcUrls": [],
        "rekorTlogUrls": [service(rekor_url, 2)],
        "tsaUrls": [service(f"{tsa_url}/api/v1/timestamp", 1)],
        "rekorTlogConfig": {"selector": "ANY"},
        "tsaConfig": {"selector": "ANY"},
    }

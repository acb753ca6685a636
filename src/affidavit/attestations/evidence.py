"""What verification hands to the rest of Affidavit: verified statements, and what was rejected.

The policy engine and the admission webhook never see envelopes or registries; they see these
values. Keeping the seam here means the cluster side cannot accidentally trust an unverified
payload: the only way to obtain a ``VerifiedAttestation`` is through ``affidavit.attestations.verify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Storage = Literal["cosign-tag", "referrer", "tag-index", "local"]


@dataclass(frozen=True)
class KeySigner:
    """A trusted signing key (ECDSA P-256 or Ed25519 public key, PEM)."""

    name: str
    public_key_pem: str


@dataclass(frozen=True)
class KeylessSigner:
    """A trusted Sigstore keyless identity: the certificate's SAN and OIDC issuer."""

    name: str
    issuer: str
    identity: str


TrustedSigner = KeySigner | KeylessSigner


@dataclass(frozen=True)
class VerifiedAttestation:
    """A statement whose signature verified against a trusted signer and whose subject is the image."""

    predicate_type: str
    subject_name: str
    subject_digest: str  # "sha256:<hex>"
    predicate: dict[str, Any]
    envelope_digest: str  # "sha256:<hex>" of the stored envelope or bundle bytes
    signer: str  # the trusted signer's name
    storage: Storage


@dataclass(frozen=True)
class RejectedAttestation:
    """An attestation that was found but did not verify, and why (one specific reason)."""

    envelope_digest: str
    reason: str
    predicate_type: str | None = None
    storage: Storage = "cosign-tag"


@dataclass(frozen=True)
class ImageEvidence:
    """Everything found for one image digest."""

    image: str  # the reference as written in the workload
    digest: str  # "sha256:<hex>"
    verified: tuple[VerifiedAttestation, ...] = field(default_factory=tuple)
    rejected: tuple[RejectedAttestation, ...] = field(default_factory=tuple)

    def of_type(self, predicate_type: str) -> tuple[VerifiedAttestation, ...]:
        return tuple(a for a in self.verified if a.predicate_type == predicate_type)

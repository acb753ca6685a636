"""The verification core: image references, the OCI registry, signed attestations and their checks.

This is what the admission webhook needs to turn an image into verified evidence; it knows
nothing of Kubernetes or web servers (an import-linter contract). Provenance *collection* (git
history, code-review records) is the pipeline's, not the cluster's: it lives in
``affidavit.collect``, which imports this package and never the other way round.

Public face (each name from the module that owns it):

- references: ``ImageReference`` (the one way to take an image reference apart),
  ``canonical_image``, ``canonical_glob``;
- the registry: ``RegistryClient``, ``Credentials``, ``credentials_from_docker_config``,
  ``RegistryUnavailableError``, ``BudgetExceededError``;
- attaching and fetching: ``attach``, ``fetch``, ``FetchedAttestation``;
- promoting an image with its evidence to another registry: ``copy_image``, ``CopyResult``;
- signing: ``make_statement``, ``sign_envelope``, ``Signer``, ``generate_key_pair``,
  ``load_signer``, ``load_verifier``;
- verifying: ``verify_image``, ``verify_fetched``, ``verify_digest``, ``EvidenceCache``,
  ``CacheResult``, and what they produce: ``ImageEvidence``, ``VerifiedAttestation``,
  ``AssumedAttestation``, ``RejectedAttestation``, ``KeySigner``, ``KeylessSigner``,
  ``TrustedSigner``.

The names load lazily (PEP 562): ``policy`` imports ``attestations.reference`` and the CLI
imports ``attestations.predicates``, and neither should pay for (or, for ``policy``, which does
no I/O, pull in) the HTTP client and the cryptography that verification needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from affidavit.attestations.copy import CopyResult, copy_image
    from affidavit.attestations.dsse import sign_envelope
    from affidavit.attestations.evidence import (
        AssumedAttestation,
        ImageEvidence,
        KeylessSigner,
        KeySigner,
        RejectedAttestation,
        TrustedSigner,
        VerifiedAttestation,
    )
    from affidavit.attestations.evidence_cache import CacheResult, EvidenceCache
    from affidavit.attestations.fetch import fetch
    from affidavit.attestations.keys import Signer, generate_key_pair, load_signer, load_verifier
    from affidavit.attestations.reference import ImageReference, canonical_glob, canonical_image
    from affidavit.attestations.registry import RegistryClient
    from affidavit.attestations.registry_auth import Credentials, credentials_from_docker_config
    from affidavit.attestations.registry_transport import (
        BudgetExceededError,
        RegistryUnavailableError,
    )
    from affidavit.attestations.statement import make_statement
    from affidavit.attestations.store import FetchedAttestation, attach
    from affidavit.attestations.verify import verify_digest, verify_fetched, verify_image

_HOMES = {
    "CopyResult": "copy",
    "copy_image": "copy",
    "sign_envelope": "dsse",
    "AssumedAttestation": "evidence",
    "ImageEvidence": "evidence",
    "KeySigner": "evidence",
    "KeylessSigner": "evidence",
    "RejectedAttestation": "evidence",
    "TrustedSigner": "evidence",
    "VerifiedAttestation": "evidence",
    "Signer": "keys",
    "generate_key_pair": "keys",
    "load_signer": "keys",
    "load_verifier": "keys",
    "ImageReference": "reference",
    "canonical_glob": "reference",
    "canonical_image": "reference",
    "RegistryClient": "registry",
    "Credentials": "registry_auth",
    "credentials_from_docker_config": "registry_auth",
    "BudgetExceededError": "registry_transport",
    "RegistryUnavailableError": "registry_transport",
    "make_statement": "statement",
    "FetchedAttestation": "store",
    "attach": "store",
    "fetch": "fetch",
    "CacheResult": "evidence_cache",
    "EvidenceCache": "evidence_cache",
    "verify_digest": "verify",
    "verify_fetched": "verify",
    "verify_image": "verify",
}

__all__ = [
    "AssumedAttestation",
    "BudgetExceededError",
    "CacheResult",
    "CopyResult",
    "Credentials",
    "EvidenceCache",
    "FetchedAttestation",
    "ImageEvidence",
    "ImageReference",
    "KeySigner",
    "KeylessSigner",
    "RegistryClient",
    "RegistryUnavailableError",
    "RejectedAttestation",
    "Signer",
    "TrustedSigner",
    "VerifiedAttestation",
    "attach",
    "canonical_glob",
    "canonical_image",
    "copy_image",
    "credentials_from_docker_config",
    "fetch",
    "generate_key_pair",
    "load_signer",
    "load_verifier",
    "make_statement",
    "sign_envelope",
    "verify_digest",
    "verify_fetched",
    "verify_image",
]


def __getattr__(name: str) -> Any:
    """Import a public name from the module that owns it, on first use."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'affidavit.attestations' has no attribute {name!r}")
    value = getattr(import_module(f"affidavit.attestations.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

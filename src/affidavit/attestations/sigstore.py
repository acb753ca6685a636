"""Sigstore keyless signing and offline bundle verification, through sigstore-python.

Keyless signing binds an attestation to a CI identity (a workflow's OIDC token) instead of a key
someone has to guard; the result is a Sigstore bundle v0.3 holding the DSSE envelope, the Fulcio
certificate and the Rekor entry. Verification needs no network: the bundle carries its log
proofs, checked against a trusted root (sigstore-python's bundled public-good root, or a
file for a private Sigstore). sigstore-python is imported inside the functions so that key-based
users never pay for importing it, and its exceptions are wrapped here into Affidavit's family.
"""

from __future__ import annotations

from pathlib import Path

from affidavit.attestations.dsse import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE_INTOTO,
    VerifiedPayload,
)
from affidavit.errors import KeyMaterialError, SigningError, VerificationError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
NO_IDENTITY = (
    "no ambient OIDC identity: run in GitHub Actions with id-token: write, or pass --identity-token"
)


def sign_dsse_keyless(
    statement_payload: bytes, *, identity_token: str | None = None, staging: bool = False
) -> bytes:
    """Sign an in-toto Statement keyless (Fulcio + Rekor); the bundle JSON (v0.3)."""
    from sigstore import dsse as sigstore_dsse
    from sigstore.errors import Error
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken, detect_credential
    from sigstore.sign import SigningContext

    token = identity_token
    if token is None:
        try:
            token = detect_credential()
        except Error as e:
            raise SigningError(f"cannot obtain the ambient OIDC identity: {e}") from e
    if not token:
        raise SigningError(NO_IDENTITY)
    try:
        statement = sigstore_dsse.Statement(statement_payload)
    except Error as e:
        raise SigningError(f"Sigstore refuses the statement: {e}") from e
    try:
        identity = IdentityToken(token)
        config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        context = SigningContext.from_trust_config(config)
        with context.signer(identity, cache=False) as signer:
            bundle = signer.sign_dsse(statement)
    except Exception as e:  # sigstore raises its own errors, httpx, ValueError, ExpiredIdentity
        raise SigningError(
            f"Sigstore keyless signing failed: {e}",
            hint="check network access to fulcio/rekor and that the OIDC token is fresh",
        ) from e
    return bundle.to_json().encode()


def verify_bundle(
    bundle: bytes,
    *,
    issuer: str,
    identity: str,
    trusted_root: Path | None = None,
    offline: bool = True,
    name: str | None = None,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> VerifiedPayload:
    """Verify a Sigstore bundle's DSSE envelope for the certificate ``identity`` from ``issuer``.

    ``trusted_root`` is a ``trusted_root.json`` (default: the public-good root shipped with
    sigstore-python, refreshed through TUF unless ``offline``). The result's ``signer`` is
    ``name`` or, without one, the identity.
    """
    from sigstore.errors import Error
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import Bundle, InvalidBundle, TrustedRoot
    from sigstore.verify import Verifier, policy

    if len(bundle) > max_bytes:
        raise VerificationError(f"bundle is {len(bundle)} bytes, over the {max_bytes}-byte limit")
    try:
        parsed = Bundle.from_json(bundle)
    except (InvalidBundle, ValueError, Error) as e:
        raise VerificationError(f"bundle is not a valid Sigstore bundle: {e}") from e
    try:
        if trusted_root is not None:
            verifier = Verifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
        else:
            verifier = Verifier.production(offline=offline)
    except FileNotFoundError as e:
        raise KeyMaterialError(f"trusted root {trusted_root} does not exist") from e
    except (Error, ValueError) as e:
        raise KeyMaterialError(f"cannot load the Sigstore trusted root: {e}") from e
    try:
        payload_type, payload = verifier.verify_dsse(
            parsed, policy.Identity(identity=identity, issuer=issuer)
        )
    except SigstoreVerificationError as e:
        raise VerificationError(
            f"Sigstore bundle did not verify for {identity} (issuer {issuer}): {e}"
        ) from e
    except (Error, ValueError) as e:
        raise VerificationError(f"Sigstore bundle could not be verified: {e}") from e
    if payload_type != PAYLOAD_TYPE_INTOTO:
        raise VerificationError(
            f"payloadType is {payload_type!r}, expected {PAYLOAD_TYPE_INTOTO!r}"
        )
    return VerifiedPayload(
        payload=payload, payload_type=payload_type, signer=name or identity, keyid=""
    )

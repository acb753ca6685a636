"""Sigstore keyless signing and offline bundle verification, through sigstore-python.

Keyless signing binds an attestation to a CI identity (a workflow's OIDC token) instead of a key
someone has to guard; the result is a Sigstore bundle v0.3 holding the DSSE envelope, the Fulcio
certificate and the transparency-log entry (Rekor v1 with its signed entry timestamp, or Rekor
v2 with an RFC 3161 timestamp). Verification needs no network: the bundle carries its log
proofs, checked against a trusted root — sigstore-python's public-good root, or the
``trusted_root.json`` of a private Sigstore (air-gapped sites; ``affidavit.envtest.sigstore``).
Signing goes to the public instance, or wherever a signing config says. sigstore-python is
imported inside the functions so that key-based users never pay for importing it, and its
exceptions are wrapped here into Affidavit's family.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affidavit.attestations.dsse import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE_INTOTO,
    VerifiedPayload,
)
from affidavit.attestations.sigstore_identity import IdentityPolicy, certified_source
from affidavit.errors import KeyMaterialError, SigningError, VerificationError

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig
    from sigstore.verify import Verifier

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CLIENT_TRUST_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
NO_IDENTITY = (
    "no ambient OIDC identity: run in GitHub Actions with id-token: write, or pass --identity-token"
)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise KeyMaterialError(f"{what} {path} does not exist") from e
    except (OSError, ValueError) as e:
        raise KeyMaterialError(f"{what} {path} is not readable JSON: {e}") from e


def private_trust_config(trusted_root: Path, signing_config: Path) -> ClientTrustConfig:
    """A sigstore-python trust config from a private instance's two files (no TUF)."""
    from sigstore.models import ClientTrustConfig

    doc = {
        "mediaType": CLIENT_TRUST_CONFIG_MEDIA_TYPE,
        "trustedRoot": _read_json(trusted_root, "trusted root"),
        "signingConfig": _read_json(signing_config, "signing config"),
    }
    try:
        return ClientTrustConfig.from_json(json.dumps(doc))
    except Exception as e:  # pydantic ValidationError, sigstore Error
        raise KeyMaterialError(f"cannot load the Sigstore trust configuration: {e}") from e


def sign_dsse_keyless(
    statement_payload: bytes,
    *,
    identity_token: str | None = None,
    staging: bool = False,
    trusted_root: Path | None = None,
    signing_config: Path | None = None,
) -> bytes:
    """Sign an in-toto Statement keyless (Fulcio + Rekor); the bundle JSON (v0.3).

    Without ``trusted_root``/``signing_config`` (given together) it signs against the public
    instance (``staging``: its staging twin), whose configuration sigstore-python fetches
    through TUF."""
    from sigstore import dsse as sigstore_dsse
    from sigstore.errors import Error
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken, detect_credential
    from sigstore.sign import SigningContext

    if (trusted_root is None) != (signing_config is None):
        raise SigningError("a private Sigstore needs both its trusted root and signing config")
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
    if trusted_root is not None and signing_config is not None:
        config = private_trust_config(trusted_root, signing_config)
    else:
        config = None
    try:
        identity = IdentityToken(token)
        if config is None:
            config = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
        context = SigningContext.from_trust_config(config)
        # cache=True (the default) is not optional: without it sigstore-python makes a new
        # ephemeral key at every use, so Fulcio certifies one key and the envelope is signed
        # by another (every keyless signature then fails at the log).
        with context.signer(identity, cache=True) as signer:
            bundle = signer.sign_dsse(statement)
    except Exception as e:  # sigstore raises its own errors, httpx, ValueError, ExpiredIdentity
        where = "the private Sigstore in the signing config" if signing_config else "fulcio/rekor"
        raise SigningError(
            f"Sigstore keyless signing failed: {e}",
            hint=f"check network access to {where} and that the OIDC token is fresh",
        ) from e
    return bundle.to_json().encode()


NO_LOG_ENTRY = (
    "the bundle has no transparency log entry: a keyless certificate is valid for minutes, and "
    "only the log's entry (with its time) shows the signature was made while it was"
)


def _has_log_entry(bundle: bytes) -> bool:
    """Whether the bundle lists a log entry (said plainly here, not as a schema error)."""
    try:
        doc = json.loads(bundle)
    except (ValueError, RecursionError):
        return True  # Bundle.from_json names the problem
    material = doc.get("verificationMaterial") if isinstance(doc, dict) else None
    if not isinstance(material, dict):
        return True
    return bool(material.get("tlogEntries"))


# Verifiers by the digest of their trusted root's text: a webhook verifies against the same few
# roots all day, and parsing one costs more than checking a bundle.
_VERIFIERS: OrderedDict[str, Verifier] = OrderedDict()
_VERIFIERS_LOCK = threading.Lock()
_MAX_VERIFIERS = 16


def _verifier(trusted_root: Path | str | None, offline: bool) -> Verifier:
    from pydantic import ValidationError
    from sigstore.errors import Error
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier
    from sigstore_models.trustroot import v1 as trustroot_v1

    if trusted_root is None:
        try:
            return Verifier.production(offline=offline)
        except (Error, ValueError) as e:
            raise KeyMaterialError(f"cannot load the Sigstore trusted root: {e}") from e
    if isinstance(trusted_root, Path):
        try:
            text = trusted_root.read_text()
        except FileNotFoundError as e:
            raise KeyMaterialError(f"trusted root {trusted_root} does not exist") from e
        except OSError as e:
            raise KeyMaterialError(f"trusted root {trusted_root} is not readable: {e}") from e
    else:
        text = trusted_root
    key = hashlib.sha256(text.encode()).hexdigest()
    with _VERIFIERS_LOCK:
        if (cached := _VERIFIERS.get(key)) is not None:
            _VERIFIERS.move_to_end(key)
            return cached
    try:
        verifier = Verifier(trusted_root=TrustedRoot(trustroot_v1.TrustedRoot.from_json(text)))
    except (Error, ValidationError, ValueError) as e:
        raise KeyMaterialError(f"cannot load the Sigstore trusted root: {e}") from e
    with _VERIFIERS_LOCK:
        _VERIFIERS[key] = verifier
        while len(_VERIFIERS) > _MAX_VERIFIERS:
            _VERIFIERS.popitem(last=False)
    return verifier


def verify_bundle(
    bundle: bytes,
    *,
    issuer: str,
    identity: str = "",
    identity_regexp: str = "",
    refs: tuple[str, ...] = (),
    triggers: tuple[str, ...] = (),
    trusted_root: Path | str | None = None,
    offline: bool = True,
    name: str | None = None,
    max_bytes: int = MAX_ENVELOPE_BYTES,
) -> VerifiedPayload:
    """Verify a Sigstore bundle's DSSE envelope for a certificate from ``issuer`` whose subject
    is ``identity`` (or matches ``identity_regexp`` whole), certified for one of ``refs`` and
    started by one of ``triggers`` where those are given.

    Checked offline: the certificate chains to the trusted root's CA at a verified time (the
    Rekor v1 entry's signed time or an RFC 3161 timestamp) and carries a valid SCT; the log
    entry's inclusion proof and signed checkpoint (and Rekor v1's signed entry timestamp) come
    from a log the root names; the signature covers the envelope. ``trusted_root`` is a
    ``trusted_root.json`` path or its text (default: sigstore-python's public-good root, which
    is refreshed through TUF unless ``offline``). The result's ``signer`` is ``name`` or, without
    one, the trusted identity.
    """
    from sigstore.errors import Error
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.models import Bundle, InvalidBundle

    policy = IdentityPolicy(issuer, identity, identity_regexp, refs, triggers)
    if len(bundle) > max_bytes:
        raise VerificationError(f"bundle is {len(bundle)} bytes, over the {max_bytes}-byte limit")
    if not _has_log_entry(bundle):
        raise VerificationError(NO_LOG_ENTRY)
    try:
        parsed = Bundle.from_json(bundle)
    except (InvalidBundle, ValueError, Error) as e:
        raise VerificationError(f"bundle is not a valid Sigstore bundle: {e}") from e
    verifier = _verifier(trusted_root, offline)
    try:
        payload_type, payload = verifier.verify_dsse(parsed, policy)
    except VerificationError:
        raise  # the identity policy's own refusal, already in our words
    except SigstoreVerificationError as e:
        raise VerificationError(
            f"Sigstore bundle did not verify for {policy.wanted} (issuer {issuer}): {e}"
        ) from e
    except (Error, ValueError) as e:
        raise VerificationError(f"Sigstore bundle could not be verified: {e}") from e
    if payload_type != PAYLOAD_TYPE_INTOTO:
        raise VerificationError(
            f"payloadType is {payload_type!r}, expected {PAYLOAD_TYPE_INTOTO!r}"
        )
    return VerifiedPayload(
        payload=payload,
        payload_type=payload_type,
        signer=name or policy.wanted,
        keyid="",
        certified_source=certified_source(parsed.signing_certificate),
    )

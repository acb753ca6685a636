"""Turn what is stored beside an image into verified statements, or specific reasons why not.

This is the only way to obtain a ``VerifiedAttestation``: every envelope or bundle found in the
registry (both layouts) has its signature checked against the trusted signers, its payload type
and statement parsed strictly, and its subject compared with the image digest. The same envelope
found in both layouts counts once. Each failure becomes a ``RejectedAttestation`` naming one
reason, because a release manager has to act on it. ``EvidenceCache`` lets the admission webhook
answer repeated requests for the same digest without going back to the registry
(``evidence_cache``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from affidavit.attestations.dsse import (
    Envelope,
    VerifiedPayload,
    check_base64,
    envelope_from_document,
    parse_envelope,
    verify_envelope,
)
from affidavit.attestations.evidence import (
    _SEAL,
    ImageEvidence,
    KeylessSigner,
    KeySigner,
    RejectedAttestation,
    TrustedSigner,
    VerifiedAttestation,
)
from affidavit.attestations.fetch import Subject, digest_and_subject, fetch
from affidavit.attestations.keys import Verifier, verifier_for
from affidavit.attestations.registry import DEFAULT_MAX_BYTES, ImageReference, RegistryClient
from affidavit.attestations.statement import parse_statement
from affidavit.attestations.store import BUNDLE_MEDIA_TYPE, FetchedAttestation
from affidavit.cycles import cycle_collection_paused
from affidavit.errors import AffidavitError, KeyMaterialError, VerificationError

NO_TRUSTED_KEYS = "the envelope is signed with a key and no trusted keys were given"


class _Identity:
    """Same payload, type and signatures = the same attestation, whichever layout holds it.

    Compared part by part; hashed by the short parts and the payload's length only, so the
    payload (tens of KB) is never hashed or copied, and compared only with a candidate that
    matches everything else (in practice: its own copy in the other layout)."""

    __slots__ = ("_hash", "parts")

    def __init__(self, envelope: Envelope) -> None:
        signed = envelope.signatures
        signatures = (signed[0].sig,) if len(signed) == 1 else tuple(sorted(s.sig for s in signed))
        text = envelope.payload_text()  # the parsed bytes themselves where they can be
        self.parts = (envelope.payload_type, signatures, text)
        self._hash = hash((envelope.payload_type, signatures, len(text)))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Identity):
            return False
        kind, signatures, text = self.parts
        other_kind, other_signatures, other_text = other.parts
        # a memoryview compares item by item (44 us for a 24 KB payload); bytes with memcmp
        return (
            kind == other_kind
            and signatures == other_signatures
            and len(text) == len(other_text)
            and (text if type(text) is bytes else bytes(text))
            == (other_text if type(other_text) is bytes else bytes(other_text))
        )


class _Checked(NamedTuple):
    """One fetched item after parsing: its dedupe identity and its outcome."""

    identity: _Identity | str  # a str for an item that never parsed as an envelope
    verified: VerifiedAttestation | None
    rejected: RejectedAttestation | None


def _bundle_envelope(data: bytes, max_bytes: int) -> tuple[Envelope, bool]:
    """The bundle's DSSE envelope, and whether it is keyless (certificate material)."""
    try:
        bundle = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerificationError(f"Sigstore bundle is not valid JSON: {e}") from e
    except RecursionError as e:  # a hostile layer: arrays or objects nested thousands deep
        raise VerificationError("Sigstore bundle is not valid JSON: it nests too deeply") from e
    if not isinstance(bundle, dict):
        raise VerificationError(f"Sigstore bundle is a JSON {type(bundle).__name__}, not an object")
    media_type = str(bundle.get("mediaType", ""))
    if not media_type.startswith("application/vnd.dev.sigstore.bundle"):
        raise VerificationError(
            f"layer is not a Sigstore bundle: mediaType {media_type!r}, expected "
            f"{BUNDLE_MEDIA_TYPE!r}"
        )
    envelope = bundle.get("dsseEnvelope")
    if not isinstance(envelope, dict):
        raise VerificationError("Sigstore bundle holds no dsseEnvelope")
    material = bundle.get("verificationMaterial") or {}
    if not isinstance(material, dict):
        raise VerificationError(
            f"Sigstore bundle's verificationMaterial is a JSON {type(material).__name__}, "
            "not an object"
        )
    keyless = "publicKey" not in material
    if len(data) <= max_bytes and data.isascii() and b"\x7f" not in data:
        # The envelope's compact JSON would be no longer than this ASCII text (a character
        # ``json.dumps`` escapes is escaped here too, in as many bytes or more; only DEL is
        # written raw here and escaped there), so its size check passes; and a well-formed
        # envelope holds only strings, which a round trip through JSON text leaves as they are.
        # So the envelope is read from the parsed bundle, not written out and parsed again.
        with contextlib.suppress(VerificationError):  # a malformed one: refused as before
            return envelope_from_document(envelope), keyless
    raw = json.dumps(envelope, separators=(",", ":")).encode()
    return parse_envelope(raw, max_bytes=max_bytes, decode=False), keyless


class _Verifier:
    """The trusted signers of one verification run, loaded once."""

    def __init__(self, signers: Sequence[TrustedSigner], trusted_root: Path | None) -> None:
        self.trusted_root = trusted_root
        self.keys: list[Verifier] = [verifier_for(s) for s in signers if isinstance(s, KeySigner)]
        self.keyless = [s for s in signers if isinstance(s, KeylessSigner)]

    def check(self, item: FetchedAttestation, envelope: Envelope, keyless: bool) -> VerifiedPayload:
        """Verify ``envelope``, parsed once from ``item`` (a bundle's: ``keyless`` if it is)."""
        assert item.data is not None
        if keyless:
            return self._keyless(item.data)
        if not self.keys:
            raise VerificationError(
                NO_TRUSTED_KEYS,
                hint="pass the signer's public key (--key PUB)",
            )
        return verify_envelope(envelope, self.keys)

    def _keyless(self, data: bytes) -> VerifiedPayload:
        if not self.keyless:
            raise VerificationError(
                "the bundle is signed keyless (Sigstore certificate) and no trusted keyless "
                "identities were given",
                hint="pass --keyless-identity ID --keyless-issuer ISSUER",
            )
        from affidavit.attestations import sigstore  # sigstore-python is slow to import

        failure: VerificationError | None = None
        for signer in self.keyless:
            try:
                if signer.trusted_root_ref and signer.trusted_root is None:
                    name, _, key = signer.trusted_root_ref.partition("/")
                    raise VerificationError(
                        f"the trusted root of keyless signer {signer.name} (ConfigMap {name}, "
                        f"key {key}) could not be read",
                        hint="create that ConfigMap in Affidavit's namespace (the chart's "
                        "sigstore.trustedRoots does), or see the webhook's log",
                    )
                return sigstore.verify_bundle(
                    data,
                    issuer=signer.issuer,
                    identity=signer.identity,
                    identity_regexp=signer.identity_regexp,
                    refs=signer.refs,
                    triggers=signer.triggers,
                    name=signer.name,
                    trusted_root=(
                        signer.trusted_root
                        if signer.trusted_root is not None
                        else self.trusted_root
                    ),
                )
            except VerificationError as e:
                failure = failure or e
            except KeyMaterialError as e:  # this signer's root is unusable; the next may do
                failure = failure or VerificationError(
                    f"the trusted root of keyless signer {signer.name} cannot be used: {e.message}",
                    hint="fix that signer's trustedRoot (a trusted_root.json), or see the"
                    " webhook's log",
                )
        assert failure is not None
        raise failure


def _rejected(item: FetchedAttestation, reason: str, identity: _Identity | None = None) -> _Checked:
    rejected = RejectedAttestation(
        envelope_digest=item.digest,
        reason=reason,
        predicate_type=item.predicate_type,
        storage=item.storage,
    )
    return _Checked(identity or f"item:{item.storage}:{item.digest}", None, rejected)


def _check_item(
    item: FetchedAttestation,
    trusted: _Verifier,
    digest: str,
    max_bytes: int,
    done: set[_Identity | str],
) -> _Checked:
    if item.problem is not None or item.data is None:
        return _rejected(item, item.problem or "attestation layer could not be read")
    identity: _Identity | None = None
    try:
        keyless = False
        if item.media_type == BUNDLE_MEDIA_TYPE:
            envelope, keyless = _bundle_envelope(item.data, max_bytes)
        else:
            envelope = parse_envelope(item.data, max_bytes=max_bytes, decode=False)
        same = _Identity(envelope)
        if same in done:  # the same envelope already verified from the other layout (so its
            return _Checked(same, None, None)  # base64 decoded): not decoded again
        check_base64(envelope)  # a failure here is this item's own, as when parsing decoded
        identity = same
        payload = trusted.check(item, envelope, keyless)
        statement = parse_statement(payload.payload)
        subject = statement.subject_for(digest)
        if subject is None:
            named = ", ".join(sorted(statement.subject_digests())) or "without a sha256 digest"
            raise VerificationError(
                f"statement subject is {named}, not this image's {digest}; the attestation was "
                "made for another image"
            )
    except AffidavitError as e:
        return _rejected(item, e.message, identity)
    verified = VerifiedAttestation.sealed(
        _SEAL,
        predicate_type=statement.predicate_type,
        subject_name=subject.name,
        subject_digest=digest,
        # the predicate's checked JSON text, parsed on first read, or the parse already made
        predicate={} if statement.predicate_json is not None else statement.predicate,
        envelope_digest=item.digest,
        signer=payload.signer,
        storage=item.storage,
        certified_source=payload.certified_source,
        predicate_json=statement.predicate_json,
    )
    return _Checked(identity, verified, None)


def verify_fetched(
    items: Sequence[FetchedAttestation],
    ref: ImageReference,
    signers: Sequence[TrustedSigner],
    *,
    image: str | None = None,
    predicate_types: Sequence[str] | None = None,
    max_layer_bytes: int = DEFAULT_MAX_BYTES,
    sigstore_trusted_root: Path | None = None,
) -> ImageEvidence:
    """Verify already-fetched envelopes and bundles of ``ref`` (which must carry its digest)."""
    if ref.digest is None:
        raise VerificationError(f"image {ref} has no digest to verify against")
    trusted = _Verifier(signers, sigstore_trusted_root)
    groups: dict[_Identity | str, list[_Checked]] = {}
    done: set[_Identity | str] = set()
    with cycle_collection_paused():
        for item in items:
            checked = _check_item(item, trusted, ref.digest, max_layer_bytes, done)
            groups.setdefault(checked.identity, []).append(checked)
            if checked.verified is not None:
                done.add(checked.identity)
    wanted = set(predicate_types) if predicate_types else None
    verified: list[VerifiedAttestation] = []
    rejected: list[RejectedAttestation] = []
    for outcomes in groups.values():
        good = None
        for outcome in outcomes:  # (not a generator: this runs for every envelope)
            if outcome.verified is not None:
                good = outcome.verified
                break
        if good is not None:
            if wanted is None or good.predicate_type in wanted:
                verified.append(good)
            continue
        # A keyless bundle's cosign-tag twin has no certificate: its "no trusted keys" would hide
        # why the bundle itself was refused.
        bads = [c.rejected for c in outcomes if c.rejected is not None]
        bad = next((b for b in bads if b.reason != NO_TRUSTED_KEYS), bads[0] if bads else None)
        if bad is not None and (wanted is None or bad.predicate_type in (wanted | {None})):
            rejected.append(bad)
    return ImageEvidence(
        image=image or str(ref),
        digest=ref.digest,
        verified=tuple(verified),
        rejected=tuple(rejected),
    )


def verify_digest(
    client: RegistryClient,
    ref: ImageReference,
    signers: Sequence[TrustedSigner],
    *,
    image: str | None = None,
    predicate_types: Sequence[str] | None = None,
    max_layer_bytes: int = DEFAULT_MAX_BYTES,
    sigstore_trusted_root: Path | None = None,
    subject: Subject | None = None,
    check_image: bool = False,
) -> ImageEvidence:
    """Fetch and verify everything stored beside ``ref`` (which must carry its digest);
    ``subject`` and ``check_image`` as ``fetch`` takes them."""
    fetched = fetch(
        client, ref, max_layer_bytes=max_layer_bytes, subject=subject, check_image=check_image
    )
    return verify_fetched(
        fetched,
        ref,
        signers,
        image=image,
        predicate_types=predicate_types,
        max_layer_bytes=max_layer_bytes,
        sigstore_trusted_root=sigstore_trusted_root,
    )


def verify_image(
    client: RegistryClient,
    image: str,
    signers: Sequence[TrustedSigner],
    *,
    predicate_types: Sequence[str] | None = None,
    max_layer_bytes: int = DEFAULT_MAX_BYTES,
    sigstore_trusted_root: Path | None = None,
) -> ImageEvidence:
    """Resolve ``image`` (tag or digest; a missing image is a RegistryError) and verify it."""
    ref = ImageReference.parse(image)
    digest, subject = digest_and_subject(client, ref)
    return verify_digest(
        client,
        ref.with_digest(digest),
        signers,
        image=image,
        predicate_types=predicate_types,
        max_layer_bytes=max_layer_bytes,
        sigstore_trusted_root=sigstore_trusted_root,
        subject=subject,
        check_image=subject is None,
    )

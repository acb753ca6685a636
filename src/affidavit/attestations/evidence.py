"""What verification hands to the rest of Affidavit: verified statements, and what was rejected.

The policy engine and the admission webhook never see envelopes or registries; they see these
values. Keeping the seam here means the cluster side cannot accidentally trust an unverified
payload: the only way to obtain a ``VerifiedAttestation`` is through ``affidavit.attestations.verify``,
whose seal its constructor demands. A what-if (``affidavit explain --evidence``) evaluates
``AssumedAttestation``s instead: the same statement, typed as never checked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:  # the predicate models (pydantic) load when a policy first reads a predicate
    from datetime import datetime

    from msgspec import Raw
    from pydantic import BaseModel

Storage = Literal["cosign-tag", "referrer", "tag-index", "local"]


@dataclass(frozen=True)
class KeySigner:
    """A trusted signing key (ECDSA P-256 or Ed25519 public key, PEM)."""

    name: str
    public_key_pem: str


@dataclass(frozen=True)
class KeylessSigner:
    """A trusted Sigstore keyless identity: the certificate's OIDC issuer and its SAN, exact
    (``identity``) or a regular expression it must match whole (``identity_regexp``).

    ``trusted_root`` is the text of the ``trusted_root.json`` its bundles verify against (None:
    the verifier's default). ``trusted_root_ref`` names where a policy said to read it from (a
    ConfigMap); a signer that has one and no ``trusted_root`` verifies nothing (fail closed).
    ``refs`` and ``triggers`` are the certificate's Source Repository Refs and Build Triggers
    trusted (``sigstore_identity``).
    """

    name: str
    issuer: str
    identity: str = ""
    identity_regexp: str = ""
    trusted_root: str | None = None
    trusted_root_ref: str = ""
    refs: tuple[str, ...] = ()  # the refs the CI run may have been for (empty: any)
    triggers: tuple[str, ...] = ()  # the events that may have started it (empty: any)


TrustedSigner = KeySigner | KeylessSigner


@dataclass(frozen=True)
class CertifiedSource:
    """The source a keyless signature's certificate names: the repository's web address and the
    commit (``revision``, empty if not named) that the CI platform's identity token said the
    signing workflow ran for (Fulcio's Source Repository URI and Digest). It is the platform's
    word, where a predicate's ``source`` is the signing pipeline's."""

    repository: str
    revision: str

    def __str__(self) -> str:
        """``REPOSITORY at COMMIT`` (the repository alone when no commit is named)."""
        return f"{self.repository} at {self.revision}" if self.revision else self.repository


M = TypeVar("M", bound="BaseModel")


@dataclass(frozen=True)
class Attestation:
    """A statement about an image as the policy engine reads it (verified or assumed)."""

    predicate_type: str
    subject_name: str
    subject_digest: str  # "sha256:<hex>"
    predicate: dict[str, Any]
    envelope_digest: str  # "sha256:<hex>" of the stored envelope or bundle bytes
    signer: str  # the trusted signer's name
    storage: Storage
    _: KW_ONLY
    # What the keyless certificate that signed it certifies (None: signed by a key, or by an
    # identity that names no source).
    certified_source: CertifiedSource | None = None
    # The predicate's exact JSON text instead of ``predicate`` (then passed as {}): read on the
    # first access, as ``json.loads`` reads it. Verification passes it only for text it has
    # checked ``json.loads`` reads (``statement._decode_statement``).
    predicate_json: InitVar[bytes | Raw | None] = None

    def __post_init__(self, predicate_json: bytes | Raw | None) -> None:
        if predicate_json is not None:
            del self.__dict__["predicate"]
            self.__dict__["_json"] = predicate_json

    @property
    def signed_time(self) -> datetime | None:
        """When the signed predicate says it was made (see ``predicates.signed_time``)."""
        from affidavit.attestations.predicates.signed_time import signed_time

        return signed_time(self.predicate_type, self.predicate)

    # -- compact storage (the evidence cache keeps thousands; see evidence_cache.py) ----------

    def pack(self) -> tuple[int, int]:
        """Keep the predicate's JSON compressed beside it, so ``compact`` can drop the parsed
        form; returns (packed, JSON) sizes in bytes. A predicate orjson cannot write (an
        integer past 64 bits, or NaN and the infinities, which it writes as null) is never
        packed (``compact`` then keeps it parsed) and counts its JSON size for both."""
        sizes: tuple[int, int] | None = self.__dict__.get("_sizes")
        if sizes is None:
            raw: bytes | Raw | None = self.__dict__.get("_json")  # the signed text: no parse
            if raw is None:
                import orjson  # only the evidence cache packs: a plain verify never loads orjson

                try:  # orjson refuses what nests past 255 first: the walk below stays shallow
                    raw = orjson.dumps(self.predicate)
                    if _non_finite(self.predicate):  # orjson wrote null: another value
                        raise orjson.JSONEncodeError("NaN or an infinity")
                except orjson.JSONEncodeError:
                    n = len(repr(self.predicate))
                    return n, n
            import zlib  # the webhook's cache packs; a CLI verify never does

            packed = self.__dict__["_packed"] = zlib.compress(raw, 1)
            sizes = self.__dict__["_sizes"] = (len(packed), len(raw))
        return sizes

    def compact(self) -> None:
        """Drop the parsed predicate and its validated models until they are read again: the
        next ``predicate`` access parses the packed JSON (a parsed 19 KB predicate costs about
        90 KiB; packed, about 4 KiB). The predicate is immutable, so nothing can go stale."""
        if "_packed" in self.__dict__:
            self.__dict__.pop("predicate", None)
            self.__dict__.pop("_parsed", None)
            self.__dict__.pop("_json", None)

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute

        def __getattr__(self, name: str) -> Any:
            # Only reached when normal lookup fails: for ``predicate`` kept as its JSON text
            # (``predicate_json``) or packed (``compact``), until its first read.
            text = None
            if name == "predicate":
                text = self.__dict__.get("_json")
                if text is None and "_packed" in self.__dict__:
                    import zlib

                    text = zlib.decompress(self.__dict__["_packed"])
            if text is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            from affidavit.attestations.exact_json import loads_deferred

            value = self.__dict__["predicate"] = loads_deferred(bytes(text))
            return value

    def parsed(self, model: type[M]) -> M:
        """The predicate validated as ``model`` (raises pydantic's ``ValidationError``), once per
        attestation: the evidence cache hands the same attestation to every admission of the
        image, and a provenance of hundreds of commits is worth validating only once. The
        predicate is never mutated after verification, so the parse cannot go stale."""
        memo: dict[type[BaseModel], BaseModel] = self.__dict__.setdefault("_parsed", {})
        found = memo.get(model)
        if found is None:
            found = memo[model] = model.model_validate(self.predicate)
        assert isinstance(found, model)
        return found


class _Seal:
    """The verifier's capability to make a VerifiedAttestation (see ``verify._check``)."""


#: Passed only by ``affidavit.attestations.verify``; a test keeps every other module from it.
_SEAL = _Seal()


@dataclass(frozen=True)
class VerifiedAttestation(Attestation):
    """A statement whose signature verified against a trusted signer and whose subject is the image.

    Only verification makes one: the constructor demands the verifier's seal, so code building
    one from unverified bytes fails at once instead of being trusted.
    """

    _: KW_ONLY
    seal: InitVar[object] = None

    def __post_init__(self, predicate_json: bytes | Raw | None, seal: object) -> None:
        super().__post_init__(predicate_json)
        _check_seal(seal)

    @classmethod
    def sealed(
        cls,
        seal: object,
        *,
        predicate_type: str,
        subject_name: str,
        subject_digest: str,
        predicate: dict[str, Any],
        envelope_digest: str,
        signer: str,
        storage: Storage,
        certified_source: CertifiedSource | None,
        predicate_json: bytes | Raw | None,
    ) -> VerifiedAttestation:
        """What ``VerifiedAttestation(..., seal=seal)`` makes, the same seal demanded, set in one
        dict update rather than by the frozen dataclass's ``__init__`` field by field (the
        verifier builds one for every envelope it verifies)."""
        _check_seal(seal)
        attestation = object.__new__(cls)
        attestation.__dict__.update(
            predicate_type=predicate_type,
            subject_name=subject_name,
            subject_digest=subject_digest,
            envelope_digest=envelope_digest,
            signer=signer,
            storage=storage,
            certified_source=certified_source,
        )
        if predicate_json is None:
            attestation.__dict__["predicate"] = predicate
        else:  # as ``Attestation.__post_init__`` keeps it
            attestation.__dict__["_json"] = predicate_json
        return attestation


def _check_seal(seal: object) -> None:
    if seal is not _SEAL:
        raise TypeError(
            "a VerifiedAttestation comes only from affidavit.attestations.verify; "
            "evaluate unverified statements as AssumedAttestation"
        )


@dataclass(frozen=True)
class AssumedAttestation(Attestation):
    """A statement taken as given for a what-if evaluation: its signature was never checked."""


A = TypeVar("A", bound=Attestation)


def newest(attestations: Iterable[A], predicate_type: str) -> A | None:
    """The attestation of ``predicate_type`` with the latest signed time, whatever the order.

    One without any signed time counts as the oldest; equal times are ordered by envelope digest,
    so the registry's listing order (which its writers choose) never decides.
    """
    of_type = [a for a in attestations if a.predicate_type == predicate_type]
    if len(of_type) < 2:  # nothing to order: no signed time is read (the predicate's parse)
        return of_type[0] if of_type else None
    from datetime import UTC, datetime  # only here: a verify imports it for nothing else

    never = datetime.min.replace(tzinfo=UTC)
    return max(of_type, key=lambda a: (a.signed_time or never, a.envelope_digest))


@dataclass(frozen=True)
class RejectedAttestation:
    """An attestation that was found but did not verify, and why (one specific reason)."""

    envelope_digest: str
    reason: str
    predicate_type: str | None = None
    storage: Storage = "cosign-tag"


@dataclass(frozen=True)
class ImageEvidence:
    """Everything found for one image digest.

    ``assumed`` is only ever filled by a what-if (``affidavit explain --evidence``); the webhook
    and ``verify`` build evidence from verification alone.
    """

    image: str  # the reference as written in the workload
    digest: str  # "sha256:<hex>"
    verified: tuple[VerifiedAttestation, ...] = field(default_factory=tuple)
    rejected: tuple[RejectedAttestation, ...] = field(default_factory=tuple)
    assumed: tuple[AssumedAttestation, ...] = field(default_factory=tuple)

    @property
    def statements(self) -> tuple[Attestation, ...]:
        """What the policy engine weighs: the verified statements, then any assumed ones."""
        return (*self.verified, *self.assumed)

    def of_type(self, predicate_type: str) -> tuple[Attestation, ...]:
        return tuple(a for a in self.statements if a.predicate_type == predicate_type)

    def newest(self, predicate_type: str) -> Attestation | None:
        """The attestation of this type that counts: the newest by its signed time."""
        return newest(self.statements, predicate_type)


def _non_finite(value: object) -> bool:
    """Whether a parsed JSON value holds NaN or an infinity anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    return False

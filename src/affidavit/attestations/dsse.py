"""DSSE envelopes: the signed wrapper every Affidavit attestation travels in.

The Dead Simple Signing Envelope (``{"payload", "payloadType", "signatures": [{"keyid",
"sig"}]}``) is what cosign, in-toto and Sigstore sign, so an envelope made here verifies with
their tools and theirs with ours. Signatures are over the pre-authentication encoding
``PAE = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``, never over the JSON, so parsing is
strict about shape and size but the original bytes are kept for digests and re-publication.
A verification failure names one specific reason, because users act on it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pybase64

from affidavit.attestations.exact_json import fast_decode, loads_numberless
from affidavit.attestations.keys import Message, Signer, Verifier
from affidavit.attestations.shape import Shape
from affidavit.errors import VerificationError

if TYPE_CHECKING:
    from affidavit.attestations.evidence import CertifiedSource

PAYLOAD_TYPE_INTOTO = "application/vnd.in-toto+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
MAX_ENVELOPE_BYTES = 4 * 1024 * 1024
#: The signatures ``verify_envelope`` tries, each with every trusted key: cosign writes one, and
#: a handful covers any co-signing; a 4 MiB envelope could otherwise carry 37,000 junk ones and
#: hold a webhook's core for most of a minute before it is refused.
MAX_SIGNATURES = 16


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding of ``payload`` (what is actually signed)."""
    return b"".join(pae_parts(payload_type, payload))


def pae_parts(payload_type: str, payload: bytes) -> tuple[bytes, bytes]:
    """``pae`` as its header and the payload itself: a verifier that hashes them in turn does
    not copy a payload of tens of KB into one message (``Verifier.verify_parts``)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d " % (len(kind), kind, len(payload)), payload


def b64decode(text: str | memoryview) -> bytes:
    """Standard or URL-safe base64, padded or not (the DSSE spec allows all four), strictly:
    a character outside the alphabet or misplaced padding is refused (``binascii.Error``).

    On the verification path of every envelope. The standard library's strict decoder costs
    about half a signature check on a real payload; pybase64's (vectorised) about a sixtieth.
    Where pybase64 accepts, it returns the standard library's bytes; a few oddities the
    standard library accepts and pybase64 refuses (padding past a full quantum, as ``QQQQ=``)
    are left to the standard library, so what is accepted and what it decodes to are the same
    as before (``tests/unit/attestations/test_dsse_base64.py``). ``text`` may be a view of
    ASCII bytes (an envelope's payload as parsed: ``Envelope.payload_text``)."""
    if len(text) % 4 == 0:
        try:  # the standard alphabet only: URL-safe text is refused here, decoded below
            return pybase64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error is one; a non-ASCII str raises ValueError
            pass
    return b64decode_stdlib(text if isinstance(text, str) else str(text, "ascii"))


def b64decode_stdlib(text: str) -> bytes:
    """``b64decode`` by the standard library alone (the reference the fast path is tested
    against, and the decoder of what it refuses)."""
    altchars = b"-_" if "-" in text or "_" in text else None
    padded = text + "=" * (-len(text) % 4)
    return base64.b64decode(padded, altchars=altchars, validate=True)


def _b64_or_none(signature: Signature) -> bytes | None:
    """``signature`` decoded, or None where it is not base64."""
    try:
        return b64decode(signature.sig)
    except (binascii.Error, ValueError):
        return None


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data`` (how envelopes and bundles are named in evidence)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Signature:
    """One DSSE signature; ``keyid`` is an unauthenticated hint (cosign leaves it empty)."""

    sig: str
    keyid: str = ""


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope; ``raw`` is the exact bytes it was parsed from, when it was parsed.

    A plain dataclass checked by ``parse_envelope`` (``shape``), not a pydantic model: it is
    built for every envelope verified. ``dataclasses.replace`` makes a changed copy that keeps
    neither the original bytes nor the decoded payload.

    An envelope decoded by msgspec from plain ASCII JSON keeps its payload as a view of the
    parsed bytes (``_payload_text``: the base64 text's exact bytes, tens of KB, not copied into
    a str) and makes ``payload`` from it only when it is read.
    """

    payload: str
    payload_type: str
    signatures: tuple[Signature, ...]
    _raw: bytes | None = field(default=None, init=False, repr=False, compare=False)
    # The payload decoded once (parsing checks it decodes; verifying needs the bytes).
    _payload: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def raw(self) -> bytes | None:
        return self._raw

    def payload_text(self) -> bytes | memoryview:
        """The payload's base64 text as bytes (a view of the parsed JSON where there is one)."""
        view: memoryview | None = self.__dict__.get("_payload_text")
        if view is not None:
            return view
        return self.payload.encode("utf-8", "surrogatepass")  # JSON may hold lone surrogates

    def payload_bytes(self) -> bytes:
        """The decoded payload (the signed statement bytes), decoded once."""
        if self._payload is not None:
            return self._payload
        view: memoryview | None = self.__dict__.get("_payload_text")
        try:
            decoded = b64decode(self.payload if view is None else view)
        except (binascii.Error, ValueError) as e:
            raise VerificationError("envelope payload is not base64") from e
        object.__setattr__(self, "_payload", decoded)
        return decoded

    def signature_bytes(self) -> tuple[bytes | None, ...]:
        """Each signature decoded (None where it is not base64), decoded once: parsing checks
        they decode (``check_base64``), verifying needs the bytes."""
        decoded: tuple[bytes | None, ...] | None = self.__dict__.get("_signatures")
        if decoded is None:
            decoded = self.__dict__["_signatures"] = tuple(map(_b64_or_none, self.signatures))
        return decoded

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any attribute

        def __getattr__(self, name: str) -> Any:
            # Only reached when normal lookup fails: ``payload`` kept as a view until read.
            view = self.__dict__.get("_payload_text") if name == "payload" else None
            if view is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            text = self.__dict__["payload"] = str(view, "ascii")
            return text

    def to_dict(self) -> dict[str, object]:
        """The envelope as DSSE's JSON object."""
        return {
            "payload": self.payload,
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": s.sig} for s in self.signatures],
        }

    def to_json(self) -> bytes:
        """The envelope's JSON: the original bytes when parsed, else compact JSON."""
        if self._raw is not None:
            return self._raw
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def digest(self) -> str:
        """``sha256:<hex>`` of ``to_json()``."""
        return sha256_digest(self.to_json())


@dataclass(frozen=True)
class VerifiedPayload:
    """A payload whose signature verified; ``signer`` is the trusted key's (or identity's) name,
    ``certified_source`` the source a keyless certificate names (see ``CertifiedSource``)."""

    payload: bytes
    payload_type: str
    signer: str
    keyid: str
    certified_source: CertifiedSource | None = None


def parse_envelope(
    data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES, decode: bool = True
) -> Envelope:
    """Parse DSSE envelope bytes strictly, with a size limit checked before anything else.

    ``decode=False`` leaves the base64 checks (``check_base64``) to the caller: a verifier that
    meets the same envelope in both layouts decodes the copy it has already verified no more."""
    if len(data) > max_bytes:
        raise VerificationError(
            f"envelope is {len(data)} bytes, over the {max_bytes}-byte limit",
            hint="attestations are small; an oversized layer is refused rather than parsed",
        )
    envelope = _decode_envelope(data)
    if envelope is None:  # anything the fast decode does not take: the exact path decides
        try:
            document = loads_numberless(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise VerificationError(f"envelope is not valid JSON: {e}") from e
        except RecursionError as e:  # a hostile layer: arrays or objects nested thousands deep
            raise VerificationError("envelope is not valid JSON: it nests too deeply") from e
        envelope = envelope_from_document(document)
    if decode:
        check_base64(envelope)
    object.__setattr__(envelope, "_raw", bytes(data))
    return envelope


def _decode_envelope(data: bytes) -> Envelope | None:
    """The envelope ``envelope_from_document(json.loads(data))`` makes, decoded in one pass by
    msgspec into exactly the envelope's fields (``documents``); None for anything it does not
    take, or while msgspec is not worth importing (``exact_json.documents``).

    A well-formed envelope only: msgspec reads escaped and repeated keys and the strings' escapes
    as ``json`` does, and refuses what it would read differently (a lone surrogate escape, a
    byte-order mark, text that is not UTF-8); each refusal, like every malformed envelope, goes
    to the exact path, which decides with its own message (``tests/unit/attestations``).

    ASCII text with no escape anywhere is what signers write; for it the payload's tens of KB
    are skimmed, not scanned by msgspec (``_skim_envelope``), nor for backslashes or ASCII."""
    skimmed = _skim_envelope(data)
    if skimmed is not None:
        return skimmed
    if not data.isascii() or b"\\" in data:
        return None  # the payload's text may not be its JSON bytes: the exact path reads it
    document = fast_decode(data, "envelope")
    if document is None or not document.signatures:
        return None
    view = memoryview(document.payload)  # the payload's JSON token, as it is in ``data``
    if len(view) < 2 or view[0] != 0x22:  # not a string
        return None
    return _envelope(document, view[1:-1], None)


def _envelope(document: Any, text: memoryview, decoded: bytes | None) -> Envelope:
    """The ``Envelope`` of a decoded ``document`` whose payload's text is ``text`` (and decodes
    to ``decoded``, where known), built as its constructor would build it less ``payload``,
    made from the view when read (``Envelope.__getattr__``): one dict update, not a frozen
    dataclass's attribute-by-attribute ``__init__`` (an envelope is built for every one
    verified)."""
    signatures = tuple(map(_signature, document.signatures))
    envelope = object.__new__(Envelope)
    envelope.__dict__.update(
        payload_type=document.payload_type,
        signatures=signatures,
        _raw=None,
        _payload=decoded,
        _payload_text=text,
    )
    return envelope


def _signature(document: Any) -> Signature:
    """``Signature(document.sig, document.keyid)``, built as ``_envelope`` builds the envelope."""
    signature = object.__new__(Signature)
    signature.__dict__.update(sig=document.sig, keyid=document.keyid)
    return signature


#: What stands in for the payload's text while the rest is decoded: an escape, which text with
#: no backslash holds nowhere else.
_SKIM_MARK = b"\\u0000"
_SKIM_TOKEN = b'"' + _SKIM_MARK + b'"'


def _skim_envelope(data: bytes) -> Envelope | None:
    """``_decode_envelope`` of ASCII ``data`` with no backslash, its payload decoded, without
    reading the payload's text as JSON, nor scanning it for either but by decoding it; None
    where this does not decide (and for ``data`` that is not ASCII or holds a backslash).

    Without a backslash no string can hold a quote, so the text between the first quote after
    the first ``"payload"`` and the next quote is found by ``bytes.find`` (memchr), not scanned
    a character at a time. An escape is put in its place and what is left (a few hundred bytes)
    is checked to be ASCII with no backslash but the escape's; the text taken out is as well if
    strict base64 decodes it (below), so then ``data`` is. msgspec decodes what is left as the
    envelope. A backslash is only valid JSON inside a string, so if that decodes, the text taken
    out was a string's; and if the payload msgspec reads is the escape, it was the payload's,
    and the last of that key's values, as ``json`` takes it. When strict base64 decodes the
    text, it holds only characters a string may hold as they are (no quote, backslash or
    control character), so the whole is as valid as what msgspec decoded, and the same
    envelope, its payload decoded as ``Envelope.payload_bytes`` decodes it. Anything else (the
    first ``"payload"`` not the key, a repeated key, a payload that is not base64): None, and
    msgspec reads the whole."""
    key = data.find(b'"payload"')
    opening = data.find(b'"', key + 9) if key >= 0 else -1
    closing = data.find(b'"', opening + 1) if opening >= 0 else -1
    if closing < 0:
        return None
    rest = data[: opening + 1] + _SKIM_MARK + data[closing:]
    if not rest.isascii() or rest.count(b"\\") != 1:  # the mark's backslash only; the text
        return None  # taken out holds neither a backslash nor anything but ASCII if it decodes
    document = fast_decode(rest, "envelope")
    if document is None or not document.signatures or bytes(document.payload) != _SKIM_TOKEN:
        return None
    text = memoryview(data)[opening + 1 : closing]
    try:
        decoded = b64decode(text)
    except (binascii.Error, ValueError):  # msgspec, then the exact path, decide
        return None
    return _envelope(document, text, decoded)


def envelope_from_document(document: object) -> Envelope:
    """The envelope a parsed DSSE JSON document holds, checked as strictly as ``parse_envelope``
    checks it (which calls this); the envelope keeps no original bytes.

    For an envelope parsed as part of a larger document (a Sigstore bundle's ``dsseEnvelope``).
    """
    if not isinstance(document, dict):
        raise VerificationError(
            f"envelope is not a DSSE envelope: a JSON {type(document).__name__}, not an object"
        )
    if not document.get("signatures"):
        raise VerificationError("envelope has no signatures")
    shape = Shape()
    payload = shape.string(document, "payload", "payload")
    payload_type = shape.string(document, "payloadType", "payloadType")
    signatures = []
    for index, item in enumerate(shape.array(document, "signatures", "signatures")):
        where = f"signatures.{index}"
        entry = shape.item(item, where, "Signature")
        if entry is not None:
            keyid = shape.string(entry, "keyid", f"{where}.keyid", default="")
            sig = shape.string(entry, "sig", f"{where}.sig")
            shape.no_extra(entry, ("keyid", "sig"), f"{where}.")
            signatures.append(Signature(sig=sig, keyid=keyid))
    shape.no_extra(document, ("payload", "payloadType", "signatures"))
    if shape.problems:
        raise VerificationError(f"envelope is not a DSSE envelope: {'; '.join(shape.problems)}")
    return Envelope(payload, payload_type, tuple(signatures))


def check_base64(envelope: Envelope) -> None:
    """Decode the payload (kept) and check every signature decodes.

    Raises:
        VerificationError: "envelope payload is not base64", or which signature is not.
    """
    envelope.payload_bytes()  # raises "envelope payload is not base64"
    if None in envelope.signature_bytes():
        index = envelope.signature_bytes().index(None)
        raise VerificationError(f"envelope signature {index} is not base64")


def sign_envelope(
    payload: bytes, signer: Signer, *, payload_type: str = PAYLOAD_TYPE_INTOTO
) -> Envelope:
    """Sign ``payload`` into a one-signature envelope."""
    signature = signer.sign(pae(payload_type, payload))
    return Envelope(
        payload=base64.b64encode(payload).decode(),
        payload_type=payload_type,
        signatures=(Signature(keyid=signer.keyid, sig=base64.b64encode(signature).decode()),),
    )


def verify_envelope(
    envelope: Envelope,
    verifiers: Sequence[Verifier],
    *,
    expected_payload_type: str = PAYLOAD_TYPE_INTOTO,
) -> VerifiedPayload:
    """The payload of the first signature that a trusted key verifies, or one specific error.

    Key ids are hints only (cosign writes none), so every signature is tried with every key.
    """
    if envelope.payload_type != expected_payload_type:
        raise VerificationError(
            f"payloadType is {envelope.payload_type!r}, expected {expected_payload_type!r}"
        )
    if not verifiers:
        raise VerificationError(
            "no trusted keys to verify the envelope with", hint="pass --key PUBLIC_KEY.pem"
        )
    if len(envelope.signatures) > MAX_SIGNATURES:
        raise VerificationError(
            f"envelope has {len(envelope.signatures):,} signatures; at most {MAX_SIGNATURES}"
            " are tried, so it is refused unread",
            hint="sign the statement into an envelope of its own (one signature per signer)",
        )
    payload = envelope.payload_bytes()
    message = Message(pae_parts(envelope.payload_type, payload))
    for raw in envelope.signature_bytes():
        if raw is None:  # not base64
            continue
        for verifier in verifiers:
            if verifier.verify_message(raw, message):
                verified = object.__new__(VerifiedPayload)  # set as _envelope sets an envelope
                verified.__dict__.update(
                    payload=payload,
                    payload_type=envelope.payload_type,
                    signer=verifier.name,
                    keyid=verifier.keyid,
                    certified_source=None,
                )
                return verified
    names = ", ".join(v.name for v in verifiers)
    raise VerificationError(
        f"no signature verified with the trusted keys ({names}): the payload was changed after"
        " signing or was signed by another key"
    )

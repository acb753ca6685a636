"""The in-toto Statement that binds a predicate to an image digest.

Every attestation Affidavit signs or reads is an in-toto Statement (``_type``
``https://in-toto.io/Statement/v1``). Making the bytes here, deterministically (sorted keys,
compact separators, UTF-8), means the same inputs always sign the same payload, and parsing them
here, strictly, means a verifier never acts on a statement it does not fully understand.

``cosign attest`` still writes ``https://in-toto.io/Statement/v0.1`` statements, whose shape is
the same as v1 for the fields used here; they are accepted when parsing so that Affidavit can
verify what cosign pushes, and never produced.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from affidavit.attestations.exact_json import fast_decode, loads_deferred, loads_exact
from affidavit.attestations.reference import is_digest

if TYPE_CHECKING:
    from msgspec import Raw
from affidavit.attestations.shape import Shape
from affidavit.errors import InputError, VerificationError

INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
INTOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
ACCEPTED_STATEMENT_TYPES = (INTOTO_STATEMENT_V1, INTOTO_STATEMENT_V01)


@dataclass(frozen=True)
class Subject:
    """One artifact the statement is about: for Affidavit, the image (repository, manifest digest)."""

    name: str
    digest: dict[str, str]


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto Statement (the signed bytes themselves stay with the envelope).

    A plain dataclass checked by ``parse_statement``: one is built for every attestation
    verified. The predicate (tens of KB) is either parsed already (``predicate_json`` None) or
    kept as its exact JSON text, checked to be JSON that ``json.loads`` reads, and parsed on the
    first read of ``predicate`` (``_decode_statement`` says why that read cannot fail).
    """

    type: str
    subject: tuple[Subject, ...]
    predicate_type: str
    predicate_json: bytes | Raw | None = field(default=None, repr=False)
    _predicate: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def checked(
        cls, kind: str, subject: tuple[Subject, ...], predicate_type: str, predicate_json: Raw
    ) -> Statement:
        """``Statement(kind, subject, predicate_type, predicate_json)``, set in one dict update
        rather than by the frozen dataclass's ``__init__`` field by field: the verifier builds
        one for every envelope it verifies (``_decode_statement``)."""
        statement = object.__new__(cls)
        statement.__dict__.update(
            type=kind,
            subject=subject,
            predicate_type=predicate_type,
            predicate_json=predicate_json,
            _predicate=None,
        )
        return statement

    @property
    def predicate(self) -> dict[str, Any]:
        """The predicate as ``json.loads`` reads it (parsed once, on the first read)."""
        if self._predicate is None:
            assert self.predicate_json is not None
            object.__setattr__(self, "_predicate", loads_deferred(bytes(self.predicate_json)))
        assert self._predicate is not None
        return self._predicate

    def subject_digests(self) -> set[str]:
        """Every ``sha256:<hex>`` digest the statement names."""
        return {
            f"sha256:{s.digest['sha256'].lower()}" for s in self.subject if "sha256" in s.digest
        }

    def is_about(self, digest: str) -> bool:
        """True when ``digest`` (``sha256:<hex>``) is one of the statement's subjects."""
        return self.subject_for(digest) is not None

    def subject_for(self, digest: str) -> Subject | None:
        """The first subject whose sha256 is ``digest`` (``sha256:<hex>``), the hex compared
        in either case (as ``is_about`` and ``subject_digests`` read it), or None."""
        algorithm, _, wanted = digest.lower().partition(":")
        if algorithm != "sha256":
            return None
        for subject in self.subject:
            hex_digest = subject.digest.get("sha256")
            if hex_digest is not None and (hex_digest == wanted or hex_digest.lower() == wanted):
                return subject
        return None


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_statement(
    subject_name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any]
) -> bytes:
    """The Statement v1 bytes for ``predicate`` about the image ``subject_name@digest``."""
    if not is_digest(digest):
        raise InputError(
            f"image digest {digest!r} is not of the form sha256:<64 lowercase hex>",
            hint="pass the manifest digest, e.g. REGISTRY/REPO@sha256:<hex> (`crane digest` prints it)",
        )
    if not subject_name:
        raise InputError("the subject name (image repository) is empty")
    if not predicate_type:
        raise InputError("the predicate type is empty", hint="pass --type URI")
    statement = {
        "_type": INTOTO_STATEMENT_V1,
        "subject": [{"name": subject_name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": dict(predicate),
    }
    return canonical_json(statement)


_DIGITS = b"0123456789"


def _long_digit_run(data: bytes, limit: int) -> bool:
    """Whether ``data`` holds more than ``limit`` digits in a row.

    Any such run covers one of the positions ``0, limit, 2*limit, ...``, so only the runs
    through those few positions are measured (a full scan of a real predicate costs a tenth of
    a signature check)."""
    for p in range(0, len(data), limit):
        if (
            48 <= data[p] <= 57
            and _run_through(data, p, 64) >= 64  # most runs are short: two small slices
            and _run_through(data, p, limit + 1) > limit
        ):
            return True
    return False


def _run_through(data: bytes, p: int, most: int) -> int:
    """The length of the run of digits through ``data[p]``, or ``most`` or more if longer."""
    left, right = data[max(0, p - most) : p], data[p : p + most]
    return len(left) - len(left.rstrip(_DIGITS)) + len(right) - len(right.lstrip(_DIGITS))


def _decode_statement(payload: bytes) -> Statement | None:
    """The statement ``parse_statement`` makes, without building the predicate's objects; None
    for anything this does not take (the exact path then decides, with its own messages), or
    while msgspec is not worth importing (``exact_json.documents``).

    msgspec decodes exactly the statement's fields (reading escaped and repeated keys as
    ``json`` does) and keeps the predicate as its exact JSON text, which it has checked is well
    formed (its grammar, escapes and nesting). What ``json.loads`` would still refuse there is
    refused here too, so the predicate's parse on first read cannot fail: bytes that are not
    UTF-8 (``json`` decodes with ``surrogatepass``, so encoded surrogates pass both), and an
    integer past the interpreter's digit limit. msgspec refuses, and leaves to the exact path,
    what ``json`` reads and it does not (NaN, a lone surrogate escape, a byte-order mark). Its
    check counts nesting against the same recursion limit as ``json``'s parse, which
    ``loads_deferred`` raises if the first read happens deeper in a stack than this did."""
    document = fast_decode(payload, "statement")
    if document is None:
        return None
    predicate = document.predicate  # a view of ``payload``: not copied
    if (
        document.type not in ACCEPTED_STATEMENT_TYPES
        or not document.subject
        or not document.predicate_type
        or memoryview(predicate)[0] != 0x7B  # "{": the predicate is an object
    ):
        return None
    # Both checks over the whole payload, which holds the predicate (its other strings were
    # decoded strictly by msgspec).
    if not payload.isascii():
        try:
            payload.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None
    limit = sys.get_int_max_str_digits()
    if limit and _long_digit_run(payload, limit):
        return None
    subjects = tuple(map(_subject, document.subject))
    return Statement.checked(document.type, subjects, document.predicate_type, predicate)


def _subject(document: Any) -> Subject:
    """``Subject(document.name, document.digest)``, set in one dict update (as
    ``Statement.checked``)."""
    subject = object.__new__(Subject)
    subject.__dict__.update(name=document.name, digest=document.digest)
    return subject


def parse_statement(payload: bytes) -> Statement:
    """Parse and check a DSSE payload as an in-toto Statement (v1, or cosign's v0.1)."""
    fast = _decode_statement(payload)
    if fast is not None:
        return fast
    prefix = "statement is not an in-toto Statement v1: "
    try:
        document = loads_exact(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise VerificationError(prefix + f"not valid JSON ({e})") from e
    except RecursionError as e:  # signed, but arrays or objects nested thousands deep
        raise VerificationError(prefix + "not valid JSON (it nests too deeply)") from e
    if not isinstance(document, dict):
        raise VerificationError(prefix + f"a JSON {type(document).__name__}, not an object")
    kind = document.get("_type")
    if kind not in ACCEPTED_STATEMENT_TYPES:
        raise VerificationError(
            prefix + f"_type is {kind!r}, expected {INTOTO_STATEMENT_V1!r}",
        )
    shape = Shape()
    subjects = []
    for index, item in enumerate(shape.array(document, "subject", "subject", min_length=1)):
        where = f"subject.{index}"
        entry = shape.item(item, where, "Subject")
        if entry is not None:
            name = shape.string(entry, "name", f"{where}.name")
            digest = shape.strings(entry, "digest", f"{where}.digest")
            shape.no_extra(entry, ("name", "digest"), f"{where}.")
            subjects.append(Subject(name, digest))
    predicate_type = shape.string(document, "predicateType", "predicateType", min_length=1)
    predicate = shape.mapping(document, "predicate", "predicate")
    shape.no_extra(document, ("_type", "subject", "predicateType", "predicate"))
    if shape.problems:
        raise VerificationError(prefix + "; ".join(shape.problems))
    return Statement(kind, tuple(subjects), predicate_type, _predicate=predicate)

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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from affidavit.attestations.exact_json import loads_exact
from affidavit.attestations.shape import Shape
from affidavit.errors import InputError, VerificationError

INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
INTOTO_STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
ACCEPTED_STATEMENT_TYPES = (INTOTO_STATEMENT_V1, INTOTO_STATEMENT_V01)

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Subject:
    """One artifact the statement is about: for Affidavit, the image (repository, manifest digest)."""

    name: str
    digest: dict[str, str]


@dataclass(frozen=True)
class Statement:
    """A parsed in-toto Statement (the signed bytes themselves stay with the envelope).

    A plain dataclass checked by ``parse_statement`` (``shape``): one is built for every
    attestation verified, and the predicate (tens of KB) is kept as parsed, never copied.
    """

    type: str
    subject: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any]

    def subject_digests(self) -> set[str]:
        """Every ``sha256:<hex>`` digest the statement names."""
        return {
            f"sha256:{s.digest['sha256'].lower()}" for s in self.subject if "sha256" in s.digest
        }

    def is_about(self, digest: str) -> bool:
        """True when ``digest`` (``sha256:<hex>``) is one of the statement's subjects."""
        return digest.lower() in self.subject_digests()


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, compact separators, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def make_statement(
    subject_name: str, digest: str, predicate_type: str, predicate: Mapping[str, Any]
) -> bytes:
    """The Statement v1 bytes for ``predicate`` about the image ``subject_name@digest``."""
    if not _DIGEST.match(digest):
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


def parse_statement(payload: bytes) -> Statement:
    """Parse and check a DSSE payload as an in-toto Statement (v1, or cosign's v0.1)."""
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
    return Statement(kind, tuple(subjects), predicate_type, predicate)

"""msgspec decoders of exactly the fields of the two documents every verification reads.

A DSSE envelope and its in-toto statement decoded by msgspec into these structs cost a fraction
of ``json``'s parse and shape check, and the statement's predicate (tens of KB) is kept as its
JSON text (``msgspec.Raw``) instead of being built into Python objects. Anything a struct does
not take (an unknown or missing field, a wrong type, JSON that msgspec reads differently from
``json`` or not at all) raises, and the caller's exact path decides: ``dsse._decode_envelope``,
``statement._decode_statement``.

Importing msgspec costs what a few hundred KB of those documents save, so this module is loaded
only through ``exact_json.documents``: once msgspec is loaded anyway (the ledger's scan) or once
the process has verified enough documents to pay for it. A one-attestation ``affidavit verify``
never imports it.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

__all__ = ["DecodeError", "Raw", "envelope", "statement"]

DecodeError = msgspec.DecodeError
Raw = msgspec.Raw


class SignatureDocument(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    sig: str
    keyid: str = ""


class EnvelopeDocument(
    msgspec.Struct, forbid_unknown_fields=True, gc=False, rename={"payload_type": "payloadType"}
):
    payload: msgspec.Raw  # the base64 text's JSON token, a view: tens of KB not copied
    payload_type: str
    signatures: list[SignatureDocument]


class SubjectDocument(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    name: str
    digest: dict[str, str]


class StatementDocument(
    msgspec.Struct,
    forbid_unknown_fields=True,
    gc=False,
    rename={"type": "_type", "predicate_type": "predicateType"},
):
    type: str
    subject: list[SubjectDocument]
    predicate_type: str
    predicate: msgspec.Raw


envelope: Callable[[bytes], EnvelopeDocument] = msgspec.json.Decoder(EnvelopeDocument).decode
statement: Callable[[bytes], StatementDocument] = msgspec.json.Decoder(StatementDocument).decode

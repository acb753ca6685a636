"""``json.loads`` with the same results, faster, for the payloads verified on every admission.

A real provenance statement is tens of KB of JSON, and parsing it with the standard library cost
more than checking its signature (``benchmarks/bench_verify.py``). orjson parses it in about half
the time, but refuses what ``json`` accepts beyond RFC 8259 (NaN, lone surrogates, UTF-16 text)
and reads integers past 64 bits as floats; for those inputs ``json`` itself decides, so nothing a
verifier reads changes.

Importing orjson costs what ``json`` spends parsing about 2 MB of statements (14 ms of CPU
beside the rest of ``affidavit verify``'s imports; it loads ``uuid`` and more to know their
types): a one-attestation verify parses two documents and would pay it for nothing. So ``json``
parses until the process has parsed ``ORJSON_AFTER_BYTES`` (or orjson is loaded already, as in
the webhook), then orjson: as in renting until the rent paid would have bought, never more than
about twice the better choice's cost. The results are the same either way.
"""

from __future__ import annotations

import json
import sys
import threading
from types import ModuleType
from typing import Any

# An integer literal of 19+ digits may exceed 64 bits, which orjson reads as a float. Found by
# mapping every digit to "0" and anything else to "." (one C pass; a regex backtracks).
_DIGITS = bytes(48 if 48 <= b <= 57 else 46 for b in range(256))
_LONG_RUN = b"0" * 19
#: Bytes parsed with ``json`` before orjson is worth importing.
ORJSON_AFTER_BYTES = 2 * 1024 * 1024
_parsed = 0
_orjson: ModuleType | None = None
#: Bytes of envelopes and statements verified by the exact path before msgspec's decoders
#: (``documents``) are worth importing: they save about 10 us a KB, the import costs a few ms.
MSGSPEC_AFTER_BYTES = 512 * 1024
_verified = 0
_documents: ModuleType | None = None


def _fast(size: int) -> ModuleType | None:
    """orjson, once loaded here or elsewhere or once the process has parsed enough to pay for
    its import; else None (parse with ``json``)."""
    global _orjson, _parsed
    if _orjson is not None:
        return _orjson
    _parsed += size
    loaded = sys.modules.get("orjson")
    if loaded is None and _parsed <= ORJSON_AFTER_BYTES:
        return None
    import orjson

    _orjson = orjson
    return orjson


def loads_exact(data: bytes) -> Any:
    """What ``json.loads(data)`` returns (or raises), by orjson where that is the same."""
    orjson = _orjson or _fast(len(data))
    if orjson is not None and _LONG_RUN not in data.translate(_DIGITS):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def loads_numberless(data: bytes) -> Any:
    """``loads_exact`` for documents whose every valid form holds no number (a DSSE envelope:
    strings, a list of objects of strings), without the scan for long integer literals.

    Where orjson reads a number differently from ``json`` the document is refused either way
    (a number is never a valid value there, and the refusal does not quote it), so only the
    inputs orjson refuses outright need ``json``."""
    orjson = _orjson or _fast(len(data))
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


_LIMIT_RAISED = threading.Lock()


def loads_deferred(data: bytes) -> Any:
    """``loads_exact`` of JSON that a check has already found well formed, parsed later (a
    statement's predicate: ``statement._decode_statement``).

    ``json`` counts nesting against the interpreter's recursion limit from wherever it is
    called, so the same text can parse at one stack depth and not at a deeper one. The check
    counted it the same way when it passed; if the first read comes from deeper in a stack and
    runs out, the parse is done once more with the limit doubled (one thread at a time)."""
    try:
        return loads_exact(data)
    except RecursionError:
        with _LIMIT_RAISED:
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(2 * limit)
            try:
                return loads_exact(data)
            finally:
                sys.setrecursionlimit(limit)


def documents(size: int) -> ModuleType | None:
    """msgspec's decoders of envelopes and statements (``affidavit.attestations.documents``),
    once msgspec is loaded here or elsewhere or once the process has verified
    ``MSGSPEC_AFTER_BYTES`` of documents the exact path parsed; else None (parse exactly)."""
    global _documents, _verified
    if _documents is not None:
        return _documents
    _verified += size
    if "msgspec" not in sys.modules and _verified <= MSGSPEC_AFTER_BYTES:
        return None
    from affidavit.attestations import documents as module

    _documents = module
    return module


def fast_decode(data: bytes, kind: str) -> Any:
    """``data`` decoded by msgspec as the document ``kind`` (``"envelope"`` or ``"statement"``,
    structs of ``affidavit.attestations.documents``); None while msgspec is not worth importing
    (``documents``) or when it refuses ``data``: the caller's exact path then decides."""
    decoders = _documents or documents(len(data))
    if decoders is None:
        return None
    try:
        return getattr(decoders, kind)(data)
    except (decoders.DecodeError, ValueError, RecursionError):
        return None

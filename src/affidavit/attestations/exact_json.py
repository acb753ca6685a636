"""``json.loads`` with the same results, faster, for the payloads verified on every admission.

A real provenance statement is tens of KB of JSON, and parsing it with the standard library cost
more than checking its signature (``benchmarks/bench_verify.py``). orjson parses it in about half
the time, but refuses what ``json`` accepts beyond RFC 8259 (NaN, lone surrogates, UTF-16 text)
and reads integers past 64 bits as floats; for those inputs ``json`` itself decides, so nothing a
verifier reads changes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# An integer literal of 19+ digits may exceed 64 bits, which orjson reads as a float. Found by
# mapping every digit to "0" and anything else to "." (one C pass; a regex backtracks).
_DIGITS = bytes(48 if 48 <= b <= 57 else 46 for b in range(256))
_LONG_RUN = b"0" * 19


def loads_exact(data: bytes) -> Any:
    """What ``json.loads(data)`` returns (or raises), by orjson where that is the same."""
    if _LONG_RUN not in data.translate(_DIGITS):
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
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

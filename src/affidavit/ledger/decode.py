"""The chain scan's one parse of a stored decision: its indexed fields decoded, the rest kept raw.

Parsing every decision into Python objects (orjson: a dict, its lists and nested dicts) was the
largest part of a report's per-row cost after the hash. The scan needs only the fields the
indexed columns must agree with, plus the images (the ``decision_images`` rows must agree with
them) and whatever values a reader counts. So the text is decoded by msgspec into a small struct:
the six indexed fields as strings, and each other value a reader names as its exact JSON bytes
(``msgspec.Raw``, no objects built). The whole text is still validated as JSON.

The decoded values are those ``json.loads`` gives: msgspec unescapes keys, keeps the last of
duplicate keys and decodes strings as ``json`` does (tested in
``tests/unit/ledger/test_ledger_decode.py``). Anything it refuses (a non-string field, NaN, a
lone surrogate escape, a BOM, a text that is no object) goes to the scan's exact path
(``loads_exact`` and ``check_row``), which decides as before. A value's raw bytes decode to the
same value wherever they appear, so a reader may key what it works out of a value on those bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from affidavit.attestations.exact_json import loads_exact

__all__ = ["COLUMNS", "NULL", "DecodeError", "decoder", "images_in", "images_of_raw", "raw_value"]

#: The decision's fields its indexed columns repeat (decoded; must be JSON strings).
COLUMNS = ("id", "outcome", "namespace", "kind", "name", "time")
#: What a value absent from the decision reads as (absent and null mean the same to readers).
NULL = msgspec.Raw(b"null")
DecodeError = msgspec.DecodeError


def decoder(raw: Sequence[str]) -> Callable[[bytes], Any]:
    """Decode a stored decision into a struct: the ``COLUMNS`` as ``str``, the top-level values
    named in ``raw`` as ``msgspec.Raw`` (``NULL`` when absent); raises ``DecodeError``."""
    fields: list[Any] = [(name, str) for name in COLUMNS]
    fields += [(name, msgspec.Raw, NULL) for name in dict.fromkeys(raw) if name not in COLUMNS]
    struct = msgspec.defstruct("StoredDecision", fields, gc=False)
    return msgspec.json.Decoder(struct).decode


def raw_value(raw: msgspec.Raw) -> Any:
    """The value of raw JSON bytes as ``json.loads`` gives it."""
    return loads_exact(bytes(raw))


def images_of_raw(raw: bytes) -> list[tuple[Any, ...]]:
    """The ``decision_images`` rows a decision's raw ``images`` value implies."""
    return images_in(loads_exact(raw))


def images_in(items: Any) -> list[tuple[Any, ...]]:
    """The ``decision_images`` rows a decision's parsed ``images`` value implies (as
    ``records.images_of`` on the parsed decision; anything but a list implies none)."""
    if type(items) is not list:
        return []
    out: list[tuple[Any, ...]] = []
    for item in items:
        if type(item) is dict:
            ref = item.get("ref")
            if type(ref) is str:
                digest = item.get("digest")
                out.append((ref, digest if type(digest) is str else None))
    return out

"""decisions.jsonl lines are written by orjson for speed; they must be the bytes ``json.dumps``
(sorted keys, no spaces, UTF-8 kept) writes, which the pack's README re-verifies with Python's
``json`` module, for any text the database can hand back (valid Unicode)."""

from __future__ import annotations

import json

import pytest

from affidavit.audit.stretch import stored_line as _stored_line
from affidavit.ledger.scan import ScanRow

TEXTS = [
    '{"name":"plain"}',
    'quote " backslash \\ slash /',
    "controls \x00\x01\x1f\x7f \n\r\t\b\f",
    "unicode é 中 😀 \u2028\u2029 </script>",
]


@pytest.mark.parametrize("decision", TEXTS)
def test_a_line_is_what_json_dumps_writes(decision: str) -> None:
    row: ScanRow = (
        7, "d-1", "2026-03-01T00:00:00Z", "allowed", "ns", "Pod", "p", True, False,
        decision, "0" * 64, "f" * 64, None,
    )  # fmt: skip
    expected = {
        "seq": 7,
        "id": "d-1",
        "time": "2026-03-01T00:00:00Z",
        "outcome": "allowed",
        "namespace": "ns",
        "kind": "Pod",
        "name": "p",
        "decision": decision,
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }
    text = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert _stored_line(row) == (text + "\n").encode()

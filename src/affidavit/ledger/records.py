"""What the ledger hands out, and the check each stored row must pass to be in the chain.

:class:`LedgerRecord` and :class:`ChainReport` are the ledger's public values (the audit reads
them without touching SQL); :func:`check_row` is the rule that makes the chain tamper-evident,
kept apart from the storage code so the rule is readable on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from affidavit.ledger.canonical import chain_hash

__all__ = ["ChainReport", "LedgerRecord", "check_row", "record_from_row"]


@dataclass(frozen=True)
class LedgerRecord:
    """One stored decision: its place in the chain and the full decision as JSON data."""

    seq: int
    id: str
    time: datetime  # UTC, timezone-aware
    outcome: str
    namespace: str
    kind: str
    name: str
    decision: dict[str, Any]
    canonical: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainReport:
    """The result of walking the chain: ``first_broken_seq`` is None when it is intact."""

    checked: int
    head_seq: int
    first_broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None and self.reason is None


def check_row(rec: LedgerRecord, expected_seq: int, expected_prev: str) -> str | None:
    if rec.seq != expected_seq:
        return f"seq {expected_seq} is missing: the chain jumps to seq {rec.seq}"
    if rec.prev_hash != expected_prev:
        return (
            f"prev_hash {rec.prev_hash[:12]}… does not match the hash of seq {rec.seq - 1} "
            f"({expected_prev[:12]}…)"
        )
    if chain_hash(rec.prev_hash, rec.canonical) != rec.hash:
        return "the stored decision JSON does not match its hash (the row was edited)"
    data = rec.decision
    cols = {"id": rec.id, "outcome": rec.outcome, "namespace": rec.namespace, "kind": rec.kind}
    for column, value in cols.items():
        if str(data.get(column) or "") != value:
            return f"column {column}={value!r} disagrees with the hashed decision"
    return None


def record_from_row(row: Mapping[str, Any] | RowMapping) -> LedgerRecord:
    canonical = str(row["decision"])
    try:
        data = json.loads(canonical)
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    time: datetime = row["time"]
    return LedgerRecord(
        seq=int(row["seq"]),
        id=str(row["id"]),
        time=time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC),
        outcome=str(row["outcome"]),
        namespace=str(row["namespace"]),
        kind=str(row["kind"]),
        name=str(row["name"]),
        decision=data,
        canonical=canonical,
        prev_hash=str(row["prev_hash"]),
        hash=str(row["hash"]),
    )

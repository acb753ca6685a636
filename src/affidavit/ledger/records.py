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

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import chain_hash

Image = tuple[str, str | None]

__all__ = [
    "ChainReport",
    "LedgerRecord",
    "check_row",
    "images_of",
    "parse_time",
    "record_from_row",
]


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
    #: The largest signed checkpoint size the rows were checked against (None: none given).
    checkpoint_size: int | None = None

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None and self.reason is None


def parse_time(value: str) -> datetime:
    """An RFC 3339 decision time as naive UTC (how the ``time`` column stores it)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise LedgerError(f"decision time {value!r} is not RFC 3339") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(tzinfo=None)


def images_of(data: Mapping[str, Any]) -> list[Image]:
    """The ``decision_images`` rows a decision's JSON implies, in JSON order."""
    out: list[Image] = []
    for item in data.get("images") or ():
        if isinstance(item, Mapping) and isinstance(item.get("ref"), str):
            digest = item.get("digest")
            out.append((item["ref"], digest if isinstance(digest, str) else None))
    return out


def check_row(
    rec: LedgerRecord, expected_seq: int, expected_prev: str, images: list[Image]
) -> str | None:
    """Why ``rec`` is not the next link of the chain, or None when it is.

    The hash covers ``prev_hash`` and the canonical JSON; every other stored field (the indexed
    columns and the ``decision_images`` rows given as ``images``) is derived from that JSON and
    must agree with it, so no column can be edited on its own.
    """
    where = f"row seq {rec.seq} (decision {rec.id})"
    if rec.seq != expected_seq:
        return f"seq {expected_seq} is missing: the chain jumps to seq {rec.seq}"
    if rec.prev_hash != expected_prev:
        return (
            f"{where}: prev_hash {rec.prev_hash[:12]}… does not match the hash of seq "
            f"{rec.seq - 1} ({expected_prev[:12]}…): rows were reordered, removed or rehashed"
        )
    if chain_hash(rec.prev_hash, rec.canonical) != rec.hash:
        return f"{where}: the stored decision JSON does not match its hash (the row was edited)"
    data = rec.decision
    cols = {
        "id": rec.id,
        "outcome": rec.outcome,
        "namespace": rec.namespace,
        "kind": rec.kind,
        "name": rec.name,
    }
    for column, value in cols.items():
        if str(data.get(column) or "") != value:
            return f"{where}: column {column}={value!r} disagrees with the hashed decision"
    try:
        hashed_time = parse_time(str(data.get("time")))
    except LedgerError:
        return f"{where}: the hashed decision has no RFC 3339 time"
    if rec.time.replace(tzinfo=None) != hashed_time:
        return (
            f"{where}: column time={rec.time.isoformat()} disagrees with the hashed decision "
            f"({data.get('time')})"
        )
    expected = sorted(images_of(data), key=_image_key)
    if sorted(images, key=_image_key) != expected:
        return (
            f"{where}: its decision_images rows {_images_text(images)} disagree with the "
            f"hashed decision's images {_images_text(expected)}"
        )
    return None


def _image_key(image: Image) -> tuple[str, str]:
    return image[0], image[1] or ""


def _images_text(images: list[Image]) -> str:
    return "[" + ", ".join(f"{r}@{d}" if d else r for r, d in sorted(images, key=_image_key)) + "]"


def stored_text(value: object) -> str:
    """A stored decision as text. The writer stores text; SQLite also keeps a BLOB in a TEXT
    column (a row rewritten by another client): its bytes are the same JSON when they are UTF-8,
    and a hash mismatch otherwise (``check_row``), shown with U+FFFD where they are not."""
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def record_from_row(row: Mapping[str, Any] | RowMapping) -> LedgerRecord:
    canonical = stored_text(row["decision"])
    try:
        data = json.loads(canonical)
    except (ValueError, RecursionError):  # RecursionError: an edit nested it too deeply
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

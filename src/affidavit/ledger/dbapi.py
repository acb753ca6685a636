"""The ledger writer's DB-API level: statements compiled once, rows read back as records.

Why a module of its own: ``writer`` runs its statements on the driver's cursor, not through
SQLAlchemy's execution layer (building and compiling Core statements per decision cost more than
the write), so what that needs (compiled SQL with its parameter layout, a stored row turned into
a ``LedgerRecord``, a connection dropped for good) lives here, apart from the group commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import Engine

from affidavit.attestations.exact_json import loads_exact
from affidavit.ledger.records import LedgerRecord

#: DB-API parameters: positional (SQLite's qmark) or named (psycopg's pyformat).
Params = Sequence[Any] | Mapping[str, Any]


class Statement:
    """A Core statement compiled for one dialect: its SQL and how to lay out its parameters."""

    def __init__(self, stmt: Any, engine: Engine) -> None:
        compiled = stmt.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self._order: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positional else None
        )

    def params(self, values: Mapping[str, Any]) -> Params:
        if self._order is None:
            return values
        return tuple(values[name] for name in self._order)


def record_of(row: Mapping[str, Any], canonical: str) -> LedgerRecord:
    """``record_from_row`` for a row built here (naive UTC time, canonical JSON as written)."""
    data = loads_exact(canonical.encode())
    return LedgerRecord(
        seq=row["seq"],
        id=row["id"],
        time=row["time"].replace(tzinfo=UTC),
        outcome=row["outcome"],
        namespace=row["namespace"],
        kind=row["kind"],
        name=row["name"],
        decision=data if isinstance(data, dict) else {},
        canonical=canonical,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def discard(conn: Any) -> None:
    """Close a pooled connection for good: the pool opens a new one in its place."""
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()

"""One transaction of the chain: the batch a group commit holds, appended and committed.

Why apart from the group commit (:mod:`affidavit.ledger.writer`): which decisions share a
transaction, who leads it and who waits is one job; what a transaction writes is another, and
the one that must stay exactly as the chain's verification reads it. Here are the statements,
SQLAlchemy Core built from the schema's tables and compiled once per engine into the driver's
SQL, run on the DB-API cursor (building, caching and compiling five statements per decision
cost more than the write itself); and the one connection kept between transactions (the pool's
checkout, ping and reset-on-return cost as much CPU as the statements), pinged when it was idle
for ``IDLE_PING`` seconds and dropped when a transaction fails, so a restarted database costs
no decision. What is written: the columns, the canonical JSON and
``sha256(prev_hash + canonical)``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, bindparam, insert, select, update

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import chain_hash
from affidavit.ledger.dbapi import Params, Statement, discard, record_of
from affidavit.ledger.records import LedgerRecord, images_of, parse_time
from affidavit.ledger.schema import decision_images, decisions, ledger_head

if TYPE_CHECKING:
    from affidavit.ledger.writer import Pending

__all__ = ["HEAD_ID", "IDLE_PING", "ChainAppend"]

HEAD_ID = 1
#: A kept connection unused for this many seconds is pinged before its next transaction.
IDLE_PING = 1.0


class ChainAppend:
    """Appends a batch of decisions to the chain of ``engine`` in one transaction."""

    def __init__(self, engine: Engine, *, sqlite: bool, url: str) -> None:
        self._engine, self._sqlite, self.url = engine, sqlite, url
        #: The driver's errors: any failure, and a unique key already taken (a replay).
        self.dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self.integrity_error: type[Exception] = engine.dialect.loaded_dbapi.IntegrityError
        head = select(ledger_head.c.seq, ledger_head.c.hash).where(
            ledger_head.c.id == bindparam("head_id")
        )
        self._head = Statement(head if sqlite else head.with_for_update(), engine)
        self._existing = Statement(
            select(
                decisions.c.seq, decisions.c.decision, decisions.c.prev_hash, decisions.c.hash
            ).where(decisions.c.id == bindparam("decision_id")),
            engine,
        )
        self._insert = Statement(insert(decisions), engine)
        self._insert_images = Statement(insert(decision_images), engine)
        self._move_head = Statement(
            update(ledger_head)
            .where(ledger_head.c.id == bindparam("head_id"))
            .values(seq=bindparam("new_seq"), hash=bindparam("new_hash")),
            engine,
        )
        time_type = decisions.c.time.type.dialect_impl(engine.dialect)
        bind_time = time_type.bind_processor(engine.dialect)
        self._bind_time: Callable[[Any], Any] = bind_time or (lambda value: value)
        self._conn: Any = None  # the kept DB-API connection (a pool fairy)
        self._used = 0.0  # when it last finished a transaction (monotonic)

    def close(self) -> None:
        """Give the kept connection back."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self) -> Any:
        """The kept connection, pinged when it was idle, or a new one from the pool."""
        conn, self._conn = self._conn, None
        if conn is not None and time.monotonic() - self._used > IDLE_PING:
            try:
                cur = conn.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
                cur.close()
            except self.dbapi_error:
                discard(conn)  # gone (a restarted database): the pool opens another
                conn = None
        return conn if conn is not None else self._engine.raw_connection()

    def transaction(self, batch: list[Pending], check: bool) -> list[LedgerRecord]:
        """Write the batch and commit; return the records new to the chain, in order."""
        conn = self._connection()
        try:
            cur: Any = conn.cursor()  # DB-API: qmark or pyformat parameters
            if self._sqlite:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(self._head.sql, self._head.params({"head_id": HEAD_ID}))
            head = cur.fetchone()
            if head is None:
                raise LedgerError(
                    f"ledger database {self.url} has a damaged schema: the ledger_head table "
                    "has no head row"
                )
            seq, prev_hash = int(head[0]), str(head[1])
            rows: list[Params] = []
            images: list[Params] = []
            stored: list[LedgerRecord] = []
            new: dict[str, Pending] = {}
            for item in batch:
                if (check or item.decision_id in new) and self._seen(cur, item, new):
                    continue
                seq += 1
                digest = chain_hash(prev_hash, item.canonical)
                row = self._row(item, seq, prev_hash, digest)
                rows.append(self._insert.params({**row, "time": self._bind_time(row["time"])}))
                images.extend(
                    self._insert_images.params({"seq": seq, "ref": ref, "digest": dg})
                    for ref, dg in images_of(item.data)
                )
                item.record = record_of(row, item.canonical)
                stored.append(item.record)
                new[item.decision_id] = item
                prev_hash = digest
            if rows:
                cur.executemany(self._insert.sql, rows)
                if images:
                    cur.executemany(self._insert_images.sql, images)
                cur.execute(
                    self._move_head.sql,
                    self._move_head.params(
                        {"head_id": HEAD_ID, "new_seq": seq, "new_hash": prev_hash}
                    ),
                )
            conn.commit()
            self._conn, self._used = conn, time.monotonic()  # kept for the next transaction
            return stored
        except BaseException:
            for item in batch:
                item.record = item.error = None
            with contextlib.suppress(self.dbapi_error):
                conn.rollback()
            discard(conn)  # whatever failed, the next transaction starts afresh
            raise

    def _seen(self, cur: Any, item: Pending, new: Mapping[str, Pending]) -> bool:
        """Whether the decision is in the chain already (same content: its record is set).

        A decision id in the chain with other content is that item's error, not the batch's.
        """
        earlier = new.get(item.decision_id)
        if earlier is not None and earlier.record is not None:
            rec = earlier.record
            found: Sequence[Any] | None = (rec.seq, rec.canonical, rec.prev_hash, rec.hash)
        else:
            cur.execute(
                self._existing.sql, self._existing.params({"decision_id": item.decision_id})
            )
            found = cur.fetchone()
        if found is None:
            return False
        seq, canonical, prev_hash, digest = found
        if canonical == item.canonical:
            # Every column but the chain's is derived from the canonical JSON: rebuild them.
            item.record = record_of(
                self._row(item, int(seq), str(prev_hash), str(digest)), canonical
            )
            return True
        item.error = LedgerError(
            f"decision id {item.decision_id} is already in the ledger (seq {seq}) "
            "with different content",
            hint="decision ids must be unique; this points to a bug or a replayed write",
        )
        return True

    @staticmethod
    def _row(item: Pending, seq: int, prev_hash: str, digest: str) -> dict[str, Any]:
        data = item.data
        return {
            "seq": seq,
            "id": item.decision_id,
            "time": parse_time(str(data["time"])),
            "outcome": str(data["outcome"]),
            "namespace": str(data.get("namespace") or ""),
            "kind": str(data.get("kind") or ""),
            "name": str(data.get("name") or ""),
            "decision": item.canonical,
            "prev_hash": prev_hash,
            "hash": digest,
        }

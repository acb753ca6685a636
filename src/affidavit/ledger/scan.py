"""One pass over the whole ledger: verify every row and hand the period's facts to a reader.

An audit report over a million decisions cannot afford to read the chain twice, build a Python
object per decision, or hold the period in memory. So the scan reads every row once, in chain
order (a server-side cursor on PostgreSQL, a plain cursor on SQLite, both inside one read
transaction so the head and the rows agree), checks it while it streams, and yields one small
tuple per row. The checks are those of :func:`affidavit.ledger.records.check_row`, split where
they are cheapest:

- the hash and the link are computed here, in Python, over the exact stored text
  (``sha256(prev_hash + decision)``): the database is never trusted to hash;
- the database's own JSON parser compares the indexed columns, the time and the
  ``decision_images`` rows with the JSON the hash covers, as one boolean per row. That
  comparison is conservative (equal values in the writer's format): a row it does not pass is
  re-checked by ``check_row`` itself, which decides and names the fault exactly as before.

What a reader needs from each decision of the period (``facts``: top-level values and
projections of arrays) is extracted by the same parser, and parsed here once per distinct text.
A database that cannot run the fast scan (a row whose stored JSON is malformed) raises
:class:`FastScanUnavailable` before anything is lost, and the caller scans again with
``fast=False``: every row parsed and checked in Python, slower and exactly as strict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, SQLAlchemyError

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import GENESIS_HASH
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.extract import (
    IMAGE_ROWS,
    Facts,
    facts_of,
    image_key,
    pg_sql,
    rfc3339,
    shape,
    sqlite_sql,
    sqlite_text,
)
from affidavit.ledger.records import ChainReport, check_row, images_of, record_from_row
from affidavit.ledger.schema import decision_images, decisions, ledger_head

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger

__all__ = ["ChainScan", "Facts", "FastScanUnavailable", "ScanRow"]

_CACHE_LIMIT = 50_000


class FastScanUnavailable(LedgerError):
    """The database could not run the fast scan (malformed JSON in a row); scan with fast=False."""


ScanRow = tuple[
    int, str, str, str, str, str, str, bool, bool, str, str, str, tuple[Any, ...] | None
]


#: Every decision's images are compared with its ``decision_images`` rows.
def _head(led: Ledger, conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)).first()
    if row is None:
        raise led._damaged("the ledger_head table has no head row")
    return int(row.seq), str(row.hash)


@dataclass
class ChainScan:
    """Iterate to walk the chain; afterwards ``report`` says whether (and where) it broke.

    ``since``/``until`` bound the period (``until`` exclusive, None: open); every row of the
    ledger is still read and verified, because the chain is only as good as its whole length.
    Rows from the first fault on are yielded with ``damaged`` set, so a reader can mark every
    figure they feed.
    """

    ledger: Ledger
    checkpoints: Sequence[Checkpoint] = ()
    since: datetime | None = None
    until: datetime | None = None
    facts: Facts = field(default_factory=Facts)
    fast: bool = True
    report: ChainReport | None = None
    head: tuple[int, str] = (0, GENESIS_HASH)
    #: rows that failed the check (the first is the report's; later ones are counted here)
    faults: int = 0
    _shaped: dict[tuple[bool, str], Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ScanRow]:
        led = self.ledger
        dbapi_error: type[Exception] = led.dbapi_error
        try:
            with led.read_snapshot() as conn:
                yield from self._walk(conn)
        except FastScanUnavailable:
            raise
        except (dbapi_error, DataError, OperationalError, ProgrammingError) as e:
            if self.fast and "json" in str(e).lower():
                raise FastScanUnavailable(
                    f"ledger database {led.url} holds a row whose stored JSON the database "
                    "cannot parse; scanning again row by row"
                ) from e
            raise led._unreachable(e) from e
        except SQLAlchemyError as e:
            raise led._unreachable(e) from e

    def _bounds(self, postgres: bool) -> dict[str, Any]:
        low = self.since or datetime(1, 1, 2, tzinfo=UTC)
        high = self.until or datetime(9999, 12, 30, tzinfo=UTC)
        if postgres:
            return {
                "since": low.astimezone(UTC).replace(tzinfo=None),
                "until": high.astimezone(UTC).replace(tzinfo=None),
            }
        return {"since": sqlite_text(low), "until": sqlite_text(high)}

    def _exact(self, conn: Connection, seq: int, expected_seq: int, prev: str) -> str | None:
        """``check_row`` on one row, read again through the ordinary typed query."""
        row = conn.execute(select(decisions).where(decisions.c.seq == seq)).one()
        images = conn.execute(
            select(decision_images.c.ref, decision_images.c.digest).where(
                decision_images.c.seq == seq
            )
        ).all()
        rec = record_from_row(row._mapping)
        return check_row(rec, expected_seq, prev, [(str(r), d) for r, d in images])

    def _read(self, in_period: bool, extracted: str | None, canonical: str) -> Any:
        key = (in_period, extracted or "")
        shaped = self._shaped.get(key)
        if shaped is None:
            values = json.loads(extracted) if extracted else None
            nested = "[" in (extracted or "")[1:]  # an array inside: make it a tuple
            shaped = (
                shape(values, self.facts, in_period, nested) if isinstance(values, list) else None
            )
            if shaped is None:  # more elements than extracted: parse this decision here
                try:
                    data = json.loads(canonical)
                except ValueError:
                    data = {}
                data = data if isinstance(data, dict) else {}
                images = tuple(sorted(images_of(data), key=image_key))
                return (images, facts_of(data, self.facts) if in_period else None)
            if len(self._shaped) > _CACHE_LIMIT:
                self._shaped.clear()
            self._shaped[key] = shaped
        return shaped

    def _walk(self, conn: Connection) -> Iterator[ScanRow]:
        head_seq, head_hash = _head(self.ledger, conn)
        self.head = (head_seq, head_hash)
        signed = {cp.size: cp for cp in self.checkpoints}
        newest = max(self.checkpoints, key=lambda cp: cp.size) if self.checkpoints else None
        size = newest.size if newest else None
        genesis = signed.get(0)
        if genesis is not None and genesis.head_hash != GENESIS_HASH:
            self.report = ChainReport(
                0, head_seq, 1, f"checkpoint {genesis.source} (size 0) is not genesis"
            )
            return
        rows, image_rows = self._cursors(conn)
        image = next(image_rows, None)
        orphan: int | None = None
        expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
        first_broken: int | None = None
        reason: str | None = None
        sha256 = hashlib.sha256
        for row in rows:
            seq, canonical, prev, digest = row[0], row[8], row[9], row[10]
            in_period = bool(row[7])
            stored: list[tuple[Any, ...]] = []
            while image is not None and image[0] <= seq:
                if image[0] < seq:
                    orphan = image[0] if orphan is None else orphan
                else:
                    stored.append((image[1], image[2]))
                image = next(image_rows, None)
            images, facts = self._read(in_period, row[12], canonical)
            if not (
                row[11]
                and seq == expected_seq
                and prev == expected_prev
                and (
                    stored == list(images)  # one image (the usual case) or already in order
                    or sorted(stored, key=image_key) == list(images)
                )
                and sha256((prev + canonical).encode()).hexdigest() == digest
            ):
                problem = self._exact(conn, seq, expected_seq, expected_prev)
                if problem is not None:
                    self.faults += 1
                    if first_broken is None:
                        first_broken, reason = seq, problem
            if signed and first_broken is None:
                cp = signed.get(seq)
                if cp is not None and cp.head_hash != digest:
                    first_broken, reason = (
                        seq,
                        f"checkpoint {cp.source} signs size {cp.size} with head hash "
                        f"{cp.head_hash[:12]}… but row seq {seq} (decision {row[1]}) hashes to "
                        f"{digest[:12]}…: history up to seq {cp.size} was rewritten and "
                        "re-chained after it was checkpointed",
                    )
            if first_broken is None:
                checked += 1
            expected_prev, expected_seq = digest, seq + 1
            yield (
                seq,
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                in_period,
                first_broken is not None,
                canonical,
                prev,
                digest,
                facts,
            )
        if image is not None and orphan is None:
            orphan = image[0]
        end = expected_seq - 1
        if first_broken is None and (head_seq != end or head_hash != expected_prev):
            first_broken = expected_seq if head_seq >= expected_seq else head_seq
            reason = (
                f"the head records seq {head_seq} but the chain ends at seq {end}: "
                "rows were removed from the end or the head was edited"
            )
        if first_broken is None and newest is not None and end < newest.size:
            first_broken = end + 1
            reason = (
                f"checkpoint {newest.source} signs size {newest.size} but the ledger ends at seq "
                f"{end}: decisions {end + 1}..{newest.size} were removed and the head rewound "
                "(truncation)"
            )
        if first_broken is None and orphan is not None:
            first_broken = orphan
            reason = f"decision_images rows name seq {orphan}, which is not in the decisions table"
        self.report = ChainReport(checked, head_seq, first_broken, reason, size)

    def _cursors(self, conn: Connection) -> tuple[Iterator[Any], Iterator[Any]]:
        """The decisions (with the check and the facts) and the image rows, both in seq order."""
        postgres = self.ledger.is_postgres
        dbapi: Any = conn.connection.dbapi_connection
        side = dbapi.cursor(name="affidavit_scan_images") if postgres else dbapi.cursor()
        images = _fetch(side, IMAGE_ROWS, {})
        if not self.fast:
            return self._slow_rows(conn), images
        params = self._bounds(postgres)
        if postgres:
            main = dbapi.cursor(name="affidavit_scan")
            return _fetch(main, pg_sql(self.facts), params), images
        return _fetch(dbapi.cursor(), sqlite_sql(self.facts), params), images

    def _slow_rows(self, conn: Connection) -> Iterator[Any]:
        """The same rows as the fast query, parsed and compared in Python (``ok`` from the rule)."""
        low, high = self.since, self.until
        result = conn.execution_options(stream_results=True, yield_per=500).execute(
            select(decisions).order_by(decisions.c.seq)
        )
        for row in result:
            rec = record_from_row(row._mapping)
            in_period = (low is None or rec.time >= low) and (high is None or rec.time < high)
            yield (
                rec.seq,
                rec.id,
                rfc3339(rec.time),
                rec.outcome,
                rec.namespace,
                rec.kind,
                rec.name,
                in_period,
                rec.canonical,
                rec.prev_hash,
                rec.hash,
                False,  # every row goes through check_row
                None,  # and is parsed here
            )


def _fetch(cursor: Any, sql: str, params: Mapping[str, Any]) -> Iterator[Any]:
    """Rows of ``sql`` in batches (a named cursor on PostgreSQL streams from the server)."""
    try:
        cursor.execute(sql, params)
        while True:
            batch = cursor.fetchmany(2000)
            if not batch:
                return
            yield from batch
    finally:
        cursor.close()

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

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, SQLAlchemyError

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import GENESIS_HASH
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.records import ChainReport, check_row, record_from_row
from affidavit.ledger.schema import decision_images, decisions, ledger_head

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger

__all__ = ["ChainScan", "Facts", "FastScanUnavailable", "ScanRow"]

_CACHE_LIMIT = 200_000


class FastScanUnavailable(LedgerError):
    """The database could not run the fast scan (malformed JSON in a row); scan with fast=False."""


@dataclass(frozen=True)
class Facts:
    """What to extract from each decision of the period.

    ``fields``: top-level keys (their JSON values, in order). ``arrays``: for a top-level array,
    the keys to take from each of its objects (a tuple per element).
    """

    fields: tuple[str, ...] = ()
    arrays: tuple[tuple[str, tuple[str, ...]], ...] = ()


#: One row: seq, id, RFC 3339 time, outcome, namespace, kind, name, in the period, damaged
#: (at or after the first fault), the stored line's parts (decision, prev_hash, hash), and the
#: facts (the ``fields`` tuple, then one tuple of tuples per array); facts are None outside the
#: period.
ScanRow = tuple[
    int, str, str, str, str, str, str, bool, bool, str, str, str, tuple[Any, ...] | None
]


def _rfc3339(value: datetime) -> str:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _sqlite_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def _path(key: str) -> str:
    if not key.replace("_", "").isalnum():
        raise ValueError(f"fact key {key!r} is not a plain JSON key")
    return f"'$.{key}'"


def _sqlite_sql(facts: Facts) -> str:
    rfc = (
        "CASE WHEN substr(d.time, 20) = '.000000' "
        "THEN replace(substr(d.time, 1, 19), ' ', 'T') || 'Z' "
        "ELSE replace(d.time, ' ', 'T') || 'Z' END"
    )
    images = (
        "(SELECT json_group_array(json_object('digest', i.digest, 'ref', i.ref)) "
        "FROM decision_images i WHERE i.seq = d.seq)"
    )
    ok = (
        "json_extract(d.decision, '$.id', '$.outcome', '$.namespace', '$.kind', '$.name', "
        f"'$.time', '$.images') = json_array(d.id, d.outcome, d.namespace, d.kind, d.name, "
        f"{rfc}, json({images}))"
    )
    period = "(d.time >= :since AND d.time < :until)"
    extra = []
    if facts.fields:
        paths = ", ".join(_path(k) for k in facts.fields)
        one = f"json_array(json_extract(d.decision, {paths}))" if len(facts.fields) == 1 else ""
        extra.append(
            f"CASE WHEN {period} THEN {one or f'json_extract(d.decision, {paths})'} END"
        )
    for array, keys in facts.arrays:
        inner = ", ".join(_path(k) for k in keys)
        element = (
            f"json_array(json_extract(e.value, {inner}))"
            if len(keys) == 1
            else f"json_extract(e.value, {inner})"
        )
        extra.append(
            f"CASE WHEN {period} THEN (SELECT json_group_array(json({element})) "
            f"FROM json_each(d.decision, {_path(array)}) e) END"
        )
    columns = "".join(f", {c}" for c in extra)
    return (
        f"SELECT d.seq, d.id, {rfc}, d.outcome, d.namespace, d.kind, d.name, {period}, "
        f"d.decision, d.prev_hash, d.hash, {ok}{columns} "
        "FROM decisions d WHERE d.seq <= :head ORDER BY d.seq"
    )


def _pg_sql(facts: Facts) -> str:
    rfc = (
        "to_char(d.time, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', d.time)"
        " = d.time THEN '' ELSE to_char(d.time, '.US') END || 'Z'"
    )
    images = (
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('digest', i.digest, 'ref', i.ref) "
        "ORDER BY i.ctid), '[]'::jsonb) FROM decision_images i WHERE i.seq = d.seq)"
    )
    ok = (
        "jsonb_build_array(x.j->'id', x.j->'outcome', x.j->'namespace', x.j->'kind', "
        "x.j->'name', x.j->'time', x.j->'images') = jsonb_build_array(d.id, d.outcome, "
        f"d.namespace, d.kind, d.name, {rfc}, {images})"
    )
    period = "(d.time >= :since AND d.time < :until)"
    extra = []
    if facts.fields:
        values = ", ".join(f"x.j->'{k}'" for k in facts.fields if _path(k))
        extra.append(f"CASE WHEN {period} THEN jsonb_build_array({values})::text END")
    for array, keys in facts.arrays:
        _path(array)
        inner = ", ".join(f"e->'{k}'" for k in keys if _path(k))
        extra.append(
            f"CASE WHEN {period} AND jsonb_typeof(x.j->'{array}') = 'array' THEN "
            f"(SELECT coalesce(jsonb_agg(jsonb_build_array({inner})), '[]'::jsonb) "
            f"FROM jsonb_array_elements(x.j->'{array}') e)::text "
            f"WHEN {period} THEN '[]' END"
        )
    columns = "".join(f", {c}" for c in extra)
    return (
        f"SELECT d.seq, d.id, {rfc}, d.outcome, d.namespace, d.kind, d.name, {period}, "
        f"d.decision, d.prev_hash, d.hash, {ok}{columns} "
        "FROM decisions d CROSS JOIN LATERAL (SELECT d.decision::jsonb AS j) x "
        "WHERE d.seq <= :head ORDER BY d.seq"
    )


def _head(led: Ledger, conn: Connection) -> tuple[int, str]:
    row = conn.execute(select(ledger_head.c.seq, ledger_head.c.hash)).first()
    if row is None:
        raise led._damaged("the ledger_head table has no head row")
    return int(row.seq), str(row.hash)


def _orphans(conn: Connection) -> list[int]:
    """Seqs that ``decision_images`` names but ``decisions`` lacks (foreign keys off)."""
    q = (
        select(decision_images.c.seq)
        .where(decision_images.c.seq.not_in(select(decisions.c.seq)))
        .distinct()
        .order_by(decision_images.c.seq)
    )
    return [int(s) for s in conn.scalars(q)]


def _facts_of(data: Mapping[str, Any], facts: Facts) -> tuple[Any, ...]:
    """The facts of a parsed decision, shaped as the fast scan shapes them."""
    out: list[Any] = [tuple(data.get(k) for k in facts.fields)] if facts.fields else []
    for array, keys in facts.arrays:
        items = data.get(array)
        out.append(
            tuple(
                tuple(item.get(k) if isinstance(item, Mapping) else None for k in keys)
                for item in (items if isinstance(items, list) else ())
            )
        )
    return tuple(out)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass
class ChainScan:
    """Iterate to walk the chain; afterwards ``report`` says whether (and where) it broke.

    ``since``/``until`` bound the period (``until`` exclusive, None: open); every row of the
    ledger is still read and verified, because the chain is only as good as its whole length.
    """

    ledger: Ledger
    checkpoints: Sequence[Checkpoint] = ()
    since: datetime | None = None
    until: datetime | None = None
    facts: Facts = field(default_factory=Facts)
    fast: bool = True
    report: ChainReport | None = None
    head: tuple[int, str] = (0, GENESIS_HASH)
    faults: int = 0
    _parsed: dict[str, Any] = field(default_factory=dict)

    def _parse(self, value: str | None) -> Any:
        if value is None:
            return None
        cached = self._parsed.get(value)
        if cached is None:
            if len(self._parsed) > _CACHE_LIMIT:
                self._parsed.clear()
            cached = self._parsed[value] = _freeze(json.loads(value))
        return cached

    def __iter__(self) -> Iterator[ScanRow]:
        led = self.ledger
        try:
            with led.read_snapshot() as conn:
                yield from self._walk(conn)
        except FastScanUnavailable:
            raise
        except (DataError, OperationalError, ProgrammingError) as e:
            if self.fast and ("JSON" in str(e) or "json" in str(e)):
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
        return {"since": _sqlite_text(low), "until": _sqlite_text(high)}

    def _exact(self, conn: Connection, seq: int, expected_seq: int, prev: str) -> str | None:
        row = conn.execute(select(decisions).where(decisions.c.seq == seq)).one()
        images = conn.execute(
            select(decision_images.c.ref, decision_images.c.digest).where(
                decision_images.c.seq == seq
            )
        ).all()
        rec = record_from_row(row._mapping)
        return check_row(rec, expected_seq, prev, [(str(r), d) for r, d in images])

    def _walk(self, conn: Connection) -> Iterator[ScanRow]:
        led = self.ledger
        head_seq, head_hash = _head(led, conn)
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
        postgres = led.is_postgres
        params = {**self._bounds(postgres), "head": head_seq}
        rows = self._rows(conn, postgres, params)
        expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
        first_broken: int | None = None
        reason: str | None = None
        sha256 = hashlib.sha256
        parse = self._parse
        nfacts = len(self.facts.arrays) + (1 if self.facts.fields else 0)
        for row in rows:
            seq, prev, digest, canonical, ok = row[0], row[9], row[10], row[8], row[11]
            if not (
                ok
                and seq == expected_seq
                and prev == expected_prev
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
            in_period = bool(row[7])
            facts = None
            if in_period and nfacts:
                facts = tuple(parse(v) for v in row[12 : 12 + nfacts])
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
        if first_broken is None:
            orphans = _orphans(conn)
            if orphans:
                first_broken = orphans[0]
                reason = (
                    f"decision_images rows name seq {orphans[0]}, which is not in the "
                    "decisions table"
                )
        self.report = ChainReport(checked, head_seq, first_broken, reason, size)

    def _rows(self, conn: Connection, postgres: bool, params: dict[str, Any]) -> Iterator[Any]:
        if self.fast:
            sql = _pg_sql(self.facts) if postgres else _sqlite_sql(self.facts)
            result = conn.execution_options(stream_results=True, yield_per=2000).execute(
                text(sql), params
            )
            yield from result
            return
        yield from self._slow_rows(conn, params)

    def _slow_rows(self, conn: Connection, params: dict[str, Any]) -> Iterator[Any]:
        """The same rows as the fast query, parsed and compared in Python (``ok`` from the rule)."""
        low, high = self.since, self.until
        result = conn.execution_options(stream_results=True, yield_per=500).execute(
            select(decisions).where(decisions.c.seq <= params["head"]).order_by(decisions.c.seq)
        )
        for row in result:
            rec = record_from_row(row._mapping)
            images = conn.execute(
                select(decision_images.c.ref, decision_images.c.digest).where(
                    decision_images.c.seq == rec.seq
                )
            ).all()
            stored = sorted(((str(r), d) for r, d in images), key=lambda i: (i[0], i[1] or ""))
            ok = check_row(rec, rec.seq, rec.prev_hash, stored) is None
            in_period = (low is None or rec.time >= low) and (high is None or rec.time < high)
            facts = _facts_of(rec.decision, self.facts) if in_period else ()
            texts = [json.dumps(f) for f in facts]
            yield (
                rec.seq,
                rec.id,
                _rfc3339(rec.time),
                rec.outcome,
                rec.namespace,
                rec.kind,
                rec.name,
                in_period,
                rec.canonical,
                rec.prev_hash,
                rec.hash,
                ok,
                *texts,
            )

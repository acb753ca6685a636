"""One pass over the whole ledger: verify every row and hand the period's facts to a reader.

An audit report over a million decisions cannot afford to read the chain twice, build a Python
object per decision, or hold the period in memory. So the scan reads every row once, in chain
order, through the driver's own cursor (a server-side cursor on PostgreSQL, a plain cursor on
SQLite, both inside one read transaction so the head and the rows agree), checks it while it
streams, and yields one small tuple per row. Per row it does the least that still checks
everything :func:`affidavit.ledger.records.check_row` checks:

- one sha256 over the exact stored text (``prev_hash + decision``): the database is never
  trusted to hash;
- one parse of that same text (:mod:`affidavit.ledger.decode`: msgspec decodes the indexed
  fields and keeps the values a reader counts as raw JSON bytes, the images' among them),
  against which every indexed column, the time and the ``decision_images`` rows are compared
  as plain values. A text the decode refuses is parsed whole as before
  (:func:`affidavit.attestations.exact_json.loads_exact`). The comparison is conservative
  (equal values in the writer's format): a row it does not pass is re-checked by ``check_row``
  itself, which decides and names the fault exactly as before.

The database's JSON functions are not used: measured, they parse several times slower than the
scan does, and the text must reach the scan for the hash anyway (:mod:`affidavit.ledger.extract`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, cast, select
from sqlalchemy.exc import DataError, OperationalError, ProgrammingError, SQLAlchemyError

from affidavit.attestations.exact_json import loads_exact
from affidavit.ledger.canonical import GENESIS_HASH
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.decode import DecodeError, decoder, images_in, images_of_raw
from affidavit.ledger.extract import (
    PG_IMAGE_ROWS,
    PG_ROWS,
    SEP,
    SEQ_MAX,
    SEQ_MIN,
    SQLITE_IMAGE_ROWS,
    SQLITE_ROWS,
    image_key,
    rfc3339,
    sqlite_text,
)
from affidavit.ledger.records import ChainReport, check_row, record_from_row, stored_text
from affidavit.ledger.schema import decision_images, decisions, ledger_head

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger

__all__ = ["ChainScan", "Facts", "ScanRow", "Span", "close_chain"]

#: What a reader takes from each parsed decision of the period (None: nothing).
Facts = Callable[[dict[str, Any]], Any]

#: Rows fetched from the cursor at a time (a server-side cursor's round trips).
_BATCH = 5000
#: Distinct ``images`` values whose implied image rows are remembered (then forgotten at once).
_CACHE = 20_000

ScanRow = tuple[
    int, str, str, str, str, str, str, bool, bool, str, str, str, tuple[Any, ...] | None
]


@dataclass(frozen=True)
class Span:
    """What a scan of one seq range found, for joining ranges scanned apart into one chain.

    The range's first row was taken on trust as to its link (``entry``: its seq and prev_hash):
    the join checks it against the previous range's ``exit`` (last seq and hash).
    """

    rows: int
    entry: tuple[int, str] | None
    #: whether the first row failed the check on its own (with its link taken on trust)
    entry_fault: bool
    exit: tuple[int, str] | None
    checked: int
    first_broken: int | None
    reason: str | None
    faults: int
    orphan: int | None


def close_chain(
    checked: int,
    first_broken: int | None,
    reason: str | None,
    end: tuple[int, str],
    head: tuple[int, str],
    checkpoints: Sequence[Checkpoint],
    orphan: int | None,
) -> ChainReport:
    """The chain's verdict once its last row (``end``: seq and hash) is read: the head must sit
    there, the largest signed checkpoint must not lie beyond it, no image row may be orphaned."""
    head_seq, head_hash = head
    newest = max(checkpoints, key=lambda cp: cp.size) if checkpoints else None
    last, last_hash = end
    if first_broken is None and (head_seq != last or head_hash != last_hash):
        first_broken = last + 1 if head_seq >= last + 1 else head_seq
        reason = (
            f"the head records seq {head_seq} but the chain ends at seq {last}: "
            "rows were removed from the end or the head was edited"
        )
    if first_broken is None and newest is not None and last < newest.size:
        first_broken = last + 1
        reason = (
            f"checkpoint {newest.source} signs size {newest.size} but the ledger ends at seq "
            f"{last}: decisions {last + 1}..{newest.size} were removed and the head rewound "
            "(truncation)"
        )
    if first_broken is None and orphan is not None:
        first_broken = orphan
        reason = f"decision_images rows name seq {orphan}, which is not in the decisions table"
    size = newest.size if newest else None
    return ChainReport(checked, head_seq, first_broken, reason, size)


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
    figure they feed. ``facts`` is called with each parsed decision of the period (the parse the
    columns were checked against) and its answer is the row's last member.
    """

    ledger: Ledger
    checkpoints: Sequence[Checkpoint] = ()
    since: datetime | None = None
    until: datetime | None = None
    facts: Facts | None = None
    report: ChainReport | None = None
    head: tuple[int, str] = (0, GENESIS_HASH)
    #: rows that failed the check (the first is the report's; later ones are counted here)
    faults: int = 0
    #: a seq range (None: open): its first row's link is taken on trust, and the scan ends in
    #: ``span`` instead of ``report`` (:mod:`affidavit.ledger.ranges` joins the ranges)
    lo: int | None = None
    hi: int | None = None
    span: Span | None = None

    def __iter__(self) -> Iterator[ScanRow]:
        led = self.ledger
        dbapi_error: type[Exception] = led.dbapi_error
        try:
            with led.read_snapshot() as conn:
                yield from self._walk(conn)
        except (dbapi_error, DataError, OperationalError, ProgrammingError) as e:
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

    def _exact(
        self, conn: Connection, seq: int, expected_seq: int, prev: str
    ) -> tuple[str | None, bool, tuple[str, str, str, str, str, str]]:
        """``check_row`` on one row, read again through the ordinary typed query; whether its
        (parsed) time is in the period, and its id, outcome, namespace, kind, name and time
        (in RFC 3339) as stored."""
        try:
            row = conn.execute(select(decisions).where(decisions.c.seq == seq)).one()
            rec = record_from_row(row._mapping)
        except ValueError:  # the time column holds no time (SQLite keeps any text there)
            return self._timeless(conn, seq)
        images = conn.execute(
            select(decision_images.c.ref, decision_images.c.digest).where(
                decision_images.c.seq == seq
            )
        ).all()
        problem = check_row(rec, expected_seq, prev, [(str(r), d) for r, d in images])
        low, high = self.since, self.until
        in_period = (low is None or rec.time >= low) and (high is None or rec.time < high)
        stored = (rec.id, rec.outcome, rec.namespace, rec.kind, rec.name, rfc3339(rec.time))
        return problem, in_period, stored

    @staticmethod
    def _timeless(
        conn: Connection, seq: int
    ) -> tuple[str, bool, tuple[str, str, str, str, str, str]]:
        """``_exact`` for a row whose time column the typed query cannot read: named as edited,
        outside any period, its columns as stored."""
        raw = conn.execute(
            select(
                decisions.c.id,
                decisions.c.outcome,
                decisions.c.namespace,
                decisions.c.kind,
                decisions.c.name,
                cast(decisions.c.time, String),
            ).where(decisions.c.seq == seq)
        ).one()
        id_, outcome, ns, kind, name, time = (str(v) for v in raw)
        problem = (
            f"row seq {seq} (decision {id_}): the time column holds {time[:40]!r}, which is not "
            "a time (the row was edited)"
        )
        return problem, False, (id_, outcome, ns, kind, name, time)

    def _walk(self, conn: Connection) -> Iterator[ScanRow]:
        head_seq, head_hash = _head(self.ledger, conn)
        self.head = (head_seq, head_hash)
        signed = {cp.size: cp for cp in self.checkpoints}
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
        sha256, loads, facts = hashlib.sha256, loads_exact, self.facts
        # a reader that takes its facts from raw values (see affidavit.ledger.decode)
        raw_facts: Callable[[Any], Any] | None = getattr(facts, "raw", None)
        # rows outside the period need only what the check compares: fewer raw values to keep
        decode_lean = decoder(("images",))
        decode = decoder(("images", *getattr(facts, "keys", ()))) if raw_facts else decode_lean
        images_seen: dict[bytes, list[tuple[Any, ...]]] = {}
        join = SEP.join
        none: list[tuple[Any, ...]] = []
        ranged = self.lo is not None or self.hi is not None
        trust = self.lo is not None  # the first row's link is then checked by the join
        entry: tuple[int, str] | None = None
        entry_fault = False
        count = 0
        for seq, columns, in_period, canonical, prev, digest in rows:
            # The image rows of this seq: usually exactly one, compared without a list.
            single: tuple[Any, ...] | None = None
            stored = none
            if image is not None and image[0] <= seq:
                following = next(image_rows, None) if image[0] == seq else image
                if following is not image and (following is None or following[0] != seq):
                    single, image = image, following
                else:  # several image rows, or rows naming a seq that is not there
                    stored = []
                    if following is not image:
                        stored.append((image[1], image[2]))
                        image = following
                    while image is not None and image[0] <= seq:
                        if image[0] < seq:
                            orphan = image[0] if orphan is None else orphan
                        else:
                            stored.append((image[1], image[2]))
                        image = next(image_rows, None)
            if count == 0 and ranged:
                entry = (seq, prev)
                if trust:
                    expected_prev, expected_seq = prev, seq
            count += 1
            lean = not in_period  # (the exact check may yet find the row in the period)
            try:
                fast = decode_lean(canonical) if lean else decode(canonical)
            except DecodeError:
                fast = None
            if fast is not None:
                data = None
                raw_images = bytes(fast.images)
                listed = images_seen.get(raw_images)
                if listed is None:
                    if len(images_seen) >= _CACHE:
                        images_seen.clear()
                    listed = images_seen[raw_images] = images_of_raw(raw_images)
                # one image row, one image: compared here (no call, no pair built)
                same_images = (
                    len(listed) == 1 and listed[0][0] == single[1] and listed[0][1] == single[2]
                    if single is not None
                    else _same_images(listed, None, stored)
                )
                id_, outcome, ns, kind, name = (
                    fast.id,
                    fast.outcome,
                    fast.namespace,
                    fast.kind,
                    fast.name,
                )
                rfc = fast.time
                # one text each side; no separator inside a value, so each column is equal
                joined = join((id_, outcome, ns, kind, name, rfc))
                same_columns = columns == joined and joined.count(SEP) == 5
            else:
                data = _parsed(loads, _text(canonical))
                parts: list[str] = columns.split(SEP) if columns is not None else []
                if len(parts) == 6:
                    id_, outcome, ns, kind, name, rfc = parts
                    same_images, same_columns = _agrees(data, single, stored, parts)
                else:
                    same_images = same_columns = False
            if not (
                seq == expected_seq
                and prev == expected_prev
                and same_images
                and same_columns
                # a BLOB (SQLite keeps one in the TEXT column): msgspec does not check the UTF-8
                # of the values it skips, so bytes that are not UTF-8 go to the exact check
                and (type(canonical) is str or _utf8(canonical))
                # (msgspec reads a str as its UTF-8 bytes: the text is encoded once, here)
                and sha256(
                    (prev + canonical).encode()
                    if type(canonical) is str
                    else prev.encode() + canonical
                ).hexdigest()
                == digest
            ):
                problem, in_period, stored_columns = self._exact(
                    conn, seq, expected_seq, expected_prev
                )
                id_, outcome, ns, kind, name, rfc = stored_columns
                if problem is not None:
                    self.faults += 1
                    entry_fault = entry_fault or count == 1
                    if first_broken is None:
                        first_broken, reason = seq, problem
            if signed and first_broken is None:
                cp = signed.get(seq)
                if cp is not None and cp.head_hash != digest:
                    first_broken, reason = (
                        seq,
                        f"checkpoint {cp.source} signs size {cp.size} with head hash "
                        f"{cp.head_hash[:12]}… but row seq {seq} (decision {id_}) hashes to "
                        f"{digest[:12]}…: history up to seq {cp.size} was rewritten and "
                        "re-chained after it was checkpointed",
                    )
            if first_broken is None:
                checked += 1
            expected_prev, expected_seq = digest, seq + 1
            if type(canonical) is not str:  # a BLOB (SQLite): the pack writes text
                canonical = stored_text(canonical)
            period = bool(in_period)
            fact = None
            if period and facts is not None:
                if data is not None:
                    fact = facts(data)
                elif raw_facts is not None and not lean:
                    fact = raw_facts(fast)
                else:
                    fact = facts(_parsed(loads, _text(canonical)))
            yield (
                seq,
                id_,
                rfc,
                outcome,
                ns,
                kind,
                name,
                period,
                first_broken is not None,
                canonical,
                prev,
                digest,
                fact,
            )
        if image is not None and orphan is None:
            orphan = image[0]
        if ranged:
            last = (expected_seq - 1, expected_prev) if count else None
            self.span = Span(
                count, entry, entry_fault, last, checked, first_broken, reason, self.faults, orphan
            )
            return
        end = (expected_seq - 1, expected_prev)
        self.report = close_chain(
            checked, first_broken, reason, end, self.head, self.checkpoints, orphan
        )

    def _cursors(self, conn: Connection) -> tuple[Iterator[Any], Iterator[Any]]:
        """The decisions and the image rows, both in seq order, through the driver's cursors."""
        postgres = self.ledger.is_postgres
        dbapi: Any = conn.connection.dbapi_connection
        seqs = {
            "lo": SEQ_MIN if self.lo is None else self.lo,
            "hi": SEQ_MAX if self.hi is None else self.hi,
        }
        params = self._bounds(postgres) | seqs
        if postgres:  # named: server-side, streamed in batches, never the whole result
            images = _fetch(dbapi.cursor(name="affidavit_scan_images"), PG_IMAGE_ROWS, seqs)
            return _fetch(dbapi.cursor(name="affidavit_scan"), PG_ROWS, params), images
        images = _fetch(dbapi.cursor(), SQLITE_IMAGE_ROWS, seqs)
        return _fetch(dbapi.cursor(), SQLITE_ROWS, params), images


def _text(canonical: Any) -> Any:
    """The stored decision as the bytes the whole parse reads (as stored when not a str)."""
    return canonical.encode() if type(canonical) is str else canonical


def _utf8(stored: Any) -> bool:
    """Whether a decision stored as bytes is UTF-8 text (the text the exact check reads)."""
    try:
        bytes(stored).decode()
    except UnicodeDecodeError:
        return False
    return True


def _parsed(loads: Callable[[bytes], Any], text: bytes) -> dict[str, Any]:
    """The decision as ``json.loads`` gives it ({} when it is not a JSON object)."""
    try:
        data = loads(text)
    except (ValueError, RecursionError):  # RecursionError: an edit nested it too deeply
        data = None
    return data if type(data) is dict else {}


def _same_images(
    listed: list[tuple[Any, ...]], single: tuple[Any, ...] | None, stored: list[tuple[Any, ...]]
) -> bool:
    """Whether the stored image rows (one, ``single``, or ``stored``) are the (ref, digest) rows
    the decision's JSON implies (``listed``), in any order."""
    if single is not None:
        return len(listed) == 1 and listed[0] == (single[1], single[2])
    if stored:
        return stored == listed or sorted(stored, key=image_key) == sorted(listed, key=image_key)
    return not listed


def _agrees(
    data: dict[str, Any],
    single: tuple[Any, ...] | None,
    stored: list[tuple[Any, ...]],
    columns: Sequence[str],
) -> tuple[bool, bool]:
    """Whether the image rows (one, ``single``, or ``stored``) and the ``columns`` (id, outcome,
    namespace, kind, name, time in RFC 3339) plainly agree with the parsed decision."""
    get = data.get
    same_images = _same_images(images_in(get("images")), single, stored)
    id_, outcome, ns, kind, name, rfc = columns
    same_columns = (
        get("id") == id_
        and get("outcome") == outcome
        and get("namespace") == ns
        and get("kind") == kind
        and get("name") == name
        and get("time") == rfc
    )
    return same_images, same_columns


def _fetch(cursor: Any, sql: str, params: Mapping[str, Any]) -> Iterator[Any]:
    """Rows of ``sql`` fetched in batches (a named cursor on PostgreSQL streams from the
    server), handed out one by one in C (no Python frame resumed per row)."""
    return chain.from_iterable(_batches(cursor, sql, params))


def _batches(cursor: Any, sql: str, params: Mapping[str, Any]) -> Iterator[list[Any]]:
    try:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(_BATCH):
            yield batch
    finally:
        cursor.close()

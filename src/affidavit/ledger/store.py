"""The decision ledger: an append-only, hash-chained table of admission decisions.

Every decision the webhook takes is appended here, so an auditor can later ask "what did we
admit, on which evidence" and trust the answer: each row's hash covers the previous row's hash
and the decision's canonical JSON, so editing, deleting or reordering a row breaks the chain at
that row. Appends are serialised across processes (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
``SELECT ... FOR UPDATE`` on the head row) so concurrent webhook replicas extend one chain.
The record types and the per-row check live in :mod:`affidavit.ledger.records`, the walk
(rows, head, signed checkpoints) in :mod:`affidavit.ledger.verify`. Reading commands open the
ledger ``read_only``: they never create a database or repair a damaged schema.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, SQLAlchemyError

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import GENESIS_HASH, DecisionLike, canonical_pair
from affidavit.ledger.checkpoint import Checkpoint, Checkpointer
from affidavit.ledger.faults import damaged, not_a_time, unreachable
from affidavit.ledger.records import (
    ChainReport,
    Image,
    LedgerRecord,
    record_from_row,
)
from affidavit.ledger.schema import (
    TABLES,
    decision_images,
    decisions,
    ledger_head,
    metadata,
    sqlite_on_begin,
    sqlite_on_connect,
    sqlite_on_connect_read_only,
)
from affidavit.ledger.selects import admitting, matching
from affidavit.ledger.verify import walk_chain
from affidavit.ledger.writer import HEAD_ID, ChainWriter, Pending

log = logging.getLogger("affidavit.ledger")


class Ledger:
    """A decision ledger at a SQLAlchemy URL (``sqlite:///path.db`` or ``postgresql+psycopg://…``).

    Construction does not connect: the webhook must start (and buffer decisions) even when the
    database is down. The schema is created on first successful use by a writer; a
    ``read_only`` ledger (every reading command) never creates or repairs anything: a missing
    SQLite file or a damaged schema is an error naming it. ``lock_timeout`` is how long a write
    waits for another writer's lock (SQLite's busy timeout, PostgreSQL's ``lock_timeout``): the
    webhook keeps it well inside its request budget and buffers past it.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        lock_timeout: float = 30.0,
        read_only: bool = False,
        checkpointer: Checkpointer | None = None,
    ) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as e:
            raise LedgerError(
                f"ledger URL {url!r} is not a database URL",
                hint="use sqlite:///PATH.db or postgresql+psycopg://USER@HOST:PORT/DB",
            ) from e
        self.url = parsed.render_as_string(hide_password=True)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._postgres = parsed.get_backend_name() == "postgresql"
        if not (self._sqlite or self._postgres):
            raise LedgerError(
                f"ledger URL {self.url!r} names an unsupported database "
                f"{parsed.get_backend_name()!r}",
                hint="use sqlite:///PATH.db or postgresql+psycopg://USER@HOST:PORT/DB",
            )
        if lock_timeout <= 0:
            raise LedgerError(f"ledger lock timeout {lock_timeout:g}s must be positive")
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        self.checkpointer = checkpointer
        if checkpointer is not None:
            checkpointer.hash_at = self.hash_at
        if read_only and self._sqlite:
            path = parsed.database or ""
            if path in ("", ":memory:") or not Path(path).is_file():
                raise LedgerError(
                    f"ledger database {path or ':memory:'} does not exist",
                    hint="check the --ledger path; reading commands never create a ledger",
                )
        connect_args: dict[str, Any] = {}
        if self._sqlite:
            connect_args["timeout"] = lock_timeout
        else:
            # libpq counts whole seconds (and waits at least 2)
            connect_args["connect_timeout"] = max(1, math.ceil(connect_timeout))
            connect_args["options"] = f"-c lock_timeout={max(1, round(lock_timeout * 1000))}"
        try:
            self._engine: Engine = create_engine(
                parsed, connect_args=connect_args, pool_pre_ping=True
            )
        except (ArgumentError, ImportError) as e:
            raise LedgerError(f"cannot use ledger URL {self.url!r}: {e}") from e
        if self._sqlite:
            on_connect = sqlite_on_connect_read_only if read_only else sqlite_on_connect
            event.listen(self._engine, "connect", on_connect)
            event.listen(self._engine, "begin", sqlite_on_begin)
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        #: Appends, concurrent ones sharing transactions (its ``commits`` tell how many).
        self.writer = ChainWriter(
            self._engine,
            sqlite=self._sqlite,
            wait=lock_timeout,
            url=self.url,
            unreachable=self._unreachable,
            observe=self._checkpoint,
        )

    # -- plumbing ---------------------------------------------------------------------------

    def _unreachable(self, e: Exception) -> LedgerError:
        return unreachable(self.url, e, lock_timeout=self.lock_timeout, read_only=self.read_only)

    def _damaged(self, what: str) -> LedgerError:
        return damaged(self.url, what)

    def _check_schema(self, conn: Connection) -> bool:
        """True when every table exists; False when none does; raise when only some do."""
        present = set(inspect(conn).get_table_names())
        missing = [t for t in TABLES if t not in present]
        if not missing:
            if conn.execute(select(ledger_head.c.id)).first() is None:
                raise self._damaged("the ledger_head table has no head row")
            return True
        if len(missing) == len(TABLES) and not self.read_only:
            return False
        if len(missing) == len(TABLES):
            raise LedgerError(
                f"ledger database {self.url} holds no ledger (no decisions table)",
                hint="check the --ledger URL; reading commands never create a ledger",
            )
        raise self._damaged(f"table {', '.join(missing)} is missing")

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        # Bounded like the database's own lock: callers must not queue behind a stuck first use.
        if not self._schema_lock.acquire(timeout=self.lock_timeout):
            raise LedgerError(
                f"ledger database {self.url} is still being opened by another thread after "
                f"{self.lock_timeout:g}s"
            )
        try:
            if self._schema_ready:
                return
            try:
                conn_cm = self._engine.connect().execution_options(
                    affidavit_immediate=not self.read_only
                )
                with conn_cm as conn, conn.begin():
                    if not self._check_schema(conn):
                        metadata.create_all(conn)
                        conn.execute(
                            insert(ledger_head).values(id=HEAD_ID, seq=0, hash=GENESIS_HASH)
                        )
            except IntegrityError:
                pass  # another process created the tables or the head row first
            except LedgerError:
                raise
            except SQLAlchemyError as e:
                raise self._unreachable(e) from e
            self._schema_ready = True
        finally:
            self._schema_lock.release()

    def close(self) -> None:
        self.writer.close()
        self._engine.dispose()

    def url_for_worker(self) -> str:
        """The URL with its password, for a process reading the same database (never shown)."""
        return self._engine.url.render_as_string(hide_password=False)

    def after_fork(self) -> None:
        """In a forked process: leave the pooled connections to the parent that opened them."""
        self._engine.dispose(close=False)

    # -- writing ----------------------------------------------------------------------------

    def append(
        self, decision: DecisionLike | Mapping[str, Any], canonical: str | None = None
    ) -> LedgerRecord:
        """Append one decision at the head of the chain; idempotent for a repeated identical id.

        Concurrent appends share a transaction (:mod:`affidavit.ledger.writer`); each returns
        once its decision is committed, or raises ``LedgerError`` within the lock wait.
        ``canonical``: the decision's canonical JSON, when the caller has it (a dict decision).
        """
        if self.read_only:
            raise LedgerError(f"ledger {self.url} was opened read-only")
        if canonical is None or not isinstance(decision, Mapping):
            decision, canonical = canonical_pair(decision)
        data = decision
        self._ensure_schema()
        return self.writer.append(data, canonical, str(data["id"]))

    def submit(
        self, decision: Mapping[str, Any], canonical: str, notify: Callable[[Pending], None]
    ) -> Pending | None:
        """``append`` without waiting (``ChainWriter.submit``); None before the schema is known
        to be there (the first append creates it: use ``append``) or when read-only."""
        if self.read_only or not self._schema_ready:
            return None
        return self.writer.submit(decision, canonical, str(decision["id"]), notify)

    def _checkpoint(self, record: LedgerRecord) -> None:
        if self.checkpointer is None:
            return
        try:
            self.checkpointer.observe(record.seq, record.hash)
        except Exception as e:  # the decision is stored; the next checkpoint covers it
            log.warning("cannot publish a ledger checkpoint: %s", getattr(e, "message", None) or e)

    # -- reading ----------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the last appended decision; ``(0, GENESIS_HASH)`` when empty."""
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == HEAD_ID)
                ).first()
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e
        if row is None:
            raise self._damaged("the ledger_head table has no head row")
        return int(row.seq), str(row.hash)

    def hash_at(self, seq: int) -> str | None:
        """The hash of decision ``seq``, or None when there is none (checkpoint continuity)."""
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                found = conn.execute(select(decisions.c.hash).where(decisions.c.seq == seq)).first()
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e
        return None if found is None else str(found.hash)

    def count(self) -> int:
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e

    def get(self, decision_id: str) -> LedgerRecord | None:
        rows = self._select(select(decisions).where(decisions.c.id == decision_id))
        return rows[0] if rows else None

    def after(self, seq: int, limit: int = 100) -> list[LedgerRecord]:
        """Decisions with ``seq`` greater than the given one, oldest first (for event reporters)."""
        query = (
            select(decisions).where(decisions.c.seq > seq).order_by(decisions.c.seq).limit(limit)
        )
        return self._select(query)

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        namespace: str | None = None,
        outcome: str | None = None,
        image: str | None = None,
        limit: int | None = 1000,
        kind: str | None = None,
        names: Sequence[str] = (),
        newest_first: bool = False,
    ) -> list[LedgerRecord]:
        """Decisions matching every given filter, oldest first (``newest_first``: the reverse).

        ``since`` is inclusive and ``until`` exclusive. ``image`` matches a reference as written
        (``reg/app:1.0``), a digest (``sha256:…``) or a repository (``reg/app``: any tag/digest).
        ``kind`` and ``names`` select workloads (a Deployment and the names of its children).
        """
        q = matching(
            since=since,
            until=until,
            namespace=namespace,
            outcome=outcome,
            image=image,
            limit=limit,
            kind=kind,
            names=names,
            newest_first=newest_first,
        )
        return self._select(q)

    def admitted(
        self, namespace: str, ref: str, digest: str, workloads: Sequence[tuple[str, str]] = ()
    ) -> bool:
        """Whether a decision in ``namespace`` admitted ``ref`` at ``digest``.

        Admitted: any outcome but ``denied`` (allowed, warned, audited, excepted), where one
        that admitted despite violations (warned, audited, excepted) counts only for the
        workloads it was about (``workloads``: the ``(kind, name)`` pairs asked for): an
        AccountabilityException may name one workload, a policy may enforce since, and such an
        admission says the digest's evidence fell short. ``ref`` is the reference as
        recorded (a tag, ``reg/app:1.0``); a decision recorded under the pinned form
        ``ref@digest`` counts too, as it judged the same digest under the same name. One indexed
        lookup (``decision_images.ref``), for the webhook's check of pinned children.
        """
        query = admitting(namespace, ref, digest, workloads)
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                return conn.execute(query).first() is not None
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e

    def _select(self, query: Any) -> list[LedgerRecord]:
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                return [record_from_row(r._mapping) for r in conn.execute(query)]
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e
        except ValueError as e:  # SQLite keeps any text in the time column
            raise not_a_time(self.url, e) from e

    @property
    def is_postgres(self) -> bool:
        return self._postgres

    @property
    def dbapi_error(self) -> type[Exception]:
        """The driver's own error class (for code that reads through a raw cursor)."""
        error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        return error

    @contextmanager
    def read_snapshot(self) -> Iterator[Connection]:
        """One read transaction, one snapshot: the head and every row read in it agree, however
        many decisions writers append meanwhile (PostgreSQL: REPEATABLE READ; SQLite: WAL)."""
        self._ensure_schema()
        isolation = {"isolation_level": "REPEATABLE READ"} if self._postgres else {}
        with self._engine.connect().execution_options(**isolation) as conn, conn.begin():
            yield conn

    def iter_all(self, batch: int = 500) -> Iterator[LedgerRecord]:
        """Every decision in chain order, fetched in batches."""
        last = 0
        while True:
            rows = self.after(last, batch)
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    # -- verifying --------------------------------------------------------------------------

    def images(self, first: int, last: int) -> dict[int, list[Image]]:
        """The ``decision_images`` rows of seqs ``first..last``, per seq."""
        q = select(decision_images.c.seq, decision_images.c.ref, decision_images.c.digest).where(
            decision_images.c.seq >= first, decision_images.c.seq <= last
        )
        self._ensure_schema()
        out: dict[int, list[Image]] = {}
        try:
            with self._engine.connect() as conn:
                for seq, ref, digest in conn.execute(q):
                    out.setdefault(int(seq), []).append((str(ref), digest))
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e
        return out

    def orphan_images(self) -> list[int]:
        """Seqs that ``decision_images`` names but ``decisions`` lacks (foreign keys off)."""
        q = (
            select(decision_images.c.seq)
            .where(decision_images.c.seq.not_in(select(decisions.c.seq)))
            .distinct()
            .order_by(decision_images.c.seq)
        )
        self._ensure_schema()
        try:
            with self._engine.connect() as conn:
                return [int(s) for s in conn.scalars(q)]
        except SQLAlchemyError as e:
            raise self._unreachable(e) from e

    def verify_chain(self, checkpoints: Sequence[Checkpoint] = ()) -> ChainReport:
        """Walk the chain from the genesis and name the first row that does not hold.

        Every column and image row is checked against the hashed JSON; with ``checkpoints``
        (already signature-checked) the row at each signed size must carry the signed hash and
        the head must not be below the largest signed size.
        """
        return walk_chain(self, checkpoints)


__all__: Sequence[str] = ("ChainReport", "Ledger", "LedgerRecord")

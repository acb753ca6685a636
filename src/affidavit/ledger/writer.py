"""Extending the chain: group commit (what one transaction writes: :mod:`affidavit.ledger.append`).

Why: every admission waits for its decision to be durable before it is answered, and a durable
commit (an fsync of SQLite's WAL, a WAL flush on PostgreSQL) costs more than the rest of a warm
review. So concurrent decisions share one transaction (group commit): the first caller to find the
writer idle leads and writes every decision queued so far, in arrival order, in one transaction;
callers arriving meanwhile queue for the next transaction, led by the first of them. A caller gets
its record (seq, hash) only once the transaction holding it has committed; a lone caller leads at
once, so a quiet webhook pays no wait for company.

A decision can also be ``submit``ted with no thread waiting on it (the webhook's event loop, which
judges warm reviews itself and must never block): it queues like any other, the writer's own
thread leads the transactions that start with such a decision, and a callback reports its
record or error once its transaction is over; its submitter bounds the wait and ``withdraw``s it.

No caller waits for the chain longer than the ledger's lock wait: one still queued then is taken
out and gets the ``LedgerError`` a held lock gives, so the webhook buffers its decision as before.
One whose transaction is already running gets that error as well; should that transaction commit
after all, the buffer's later replay appends nothing (appends are idempotent by decision id).

Only the leader of a transaction uses the one connection the writer keeps between them
(``ChainAppend``), so the writes of one ledger never contend with each other for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from affidavit.errors import LedgerError
from affidavit.ledger.append import HEAD_ID, ChainAppend
from affidavit.ledger.records import LedgerRecord

log = logging.getLogger("affidavit.ledger")

__all__ = ["HEAD_ID", "ChainWriter", "Pending"]


@dataclass(eq=False)  # each one is itself: found in the queue by identity
class Pending:
    """One decision waiting for the chain, and what became of it."""

    data: Mapping[str, Any]
    canonical: str
    decision_id: str
    #: Set when the record or error is (or the caller is to lead); a thread waits on it.
    done: threading.Event | None = None
    record: LedgerRecord | None = None
    error: LedgerError | None = None
    #: Set when this caller is to lead the next transaction.
    lead: bool = False
    #: For a decision submitted without a waiting thread (``ChainWriter.submit``): called on
    #: the writer's own thread once ``record`` or ``error`` is set.
    notify: Callable[[Pending], None] | None = None


class ChainWriter:
    """Appends decisions to the chain of ``engine``, concurrent callers sharing transactions.

    ``unreachable`` maps a database error to the ledger's ``LedgerError``; ``observe`` is called
    with each stored record, in chain order, once its transaction has committed.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        sqlite: bool,
        wait: float,
        url: str,
        unreachable: Callable[[Exception], LedgerError],
        observe: Callable[[LedgerRecord], None] | None = None,
    ) -> None:
        self.wait, self.url = wait, url
        self._unreachable, self._observe = unreachable, observe
        #: What one transaction writes (its kept connection, its statements).
        self.chain = ChainAppend(engine, sqlite=sqlite, url=url)
        self._lock = threading.Lock()
        self._queue: deque[Pending] = deque()
        self._writing = False
        #: Set when the writer's own thread is to lead (a submitted decision is first in line).
        self._wake = threading.Event()
        self._leader: threading.Thread | None = None
        self._closed = False
        #: Transactions committed, and the decisions they stored (their ratio: the group size).
        self.commits = 0
        self.committed = 0

    @property
    def busy(self) -> bool:
        """Whether a transaction is being written (or about to be, by a promoted caller)."""
        with self._lock:
            return self._writing

    @property
    def queued(self) -> int:
        """Callers waiting for the next transaction."""
        with self._lock:
            return len(self._queue)

    # -- group commit -----------------------------------------------------------------------

    def append(self, data: Mapping[str, Any], canonical: str, decision_id: str) -> LedgerRecord:
        """Append one decision; return its record once committed, or raise ``LedgerError``."""
        done = threading.Event()
        mine = Pending(data, canonical, decision_id, done=done)
        deadline = time.monotonic() + self.wait
        with self._lock:
            self._queue.append(mine)
            if not self._writing:
                self._writing = mine.lead = True
        while not mine.lead:
            signalled = done.wait(max(0.0, deadline - time.monotonic()))
            with self._lock:
                if mine.lead and signalled and time.monotonic() < deadline:
                    break  # promoted: lead the next transaction
                if mine.lead:  # promoted as its wait ran out: pass the lead on
                    mine.lead = False
                    self._queue.remove(mine)
                    self._promote_next()
                    raise self.late()
                if done.is_set():
                    break
                if mine in self._queue:
                    self._queue.remove(mine)
                raise self.late()  # still queued, or its transaction is running (see above)
        if mine.lead:
            self._lead()
        if mine.error is not None:
            raise mine.error
        assert mine.record is not None
        return mine.record

    def late(self) -> LedgerError:
        """What a decision gets that was not committed within the ledger's wait."""
        return LedgerError(
            f"ledger database {self.url} did not commit the decision within {self.wait:g}s "
            "(the transaction ahead of it is still writing)",
            hint="find what slows the ledger's writes or holds its write lock; the webhook "
            "buffers decisions until it is released",
        )

    def _promote_next(self) -> None:
        """Hand the lead to the first queued caller, or mark the writer idle (``_lock`` held)."""
        if not self._queue:
            self._writing = False
        elif self._queue[0].notify is not None:
            self._wake_leader()  # nobody waits on that decision: the writer's thread leads
        else:
            nxt = self._queue[0]
            nxt.lead = True
            assert nxt.done is not None
            nxt.done.set()

    def _lead(self) -> None:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            for item in batch:
                item.lead = False
        try:
            if batch:  # empty when the submitted decisions were withdrawn meanwhile
                self._write(batch)
        finally:
            with self._lock:
                self._promote_next()
            for item in batch:
                if item.done is not None:
                    item.done.set()
                if item.notify is not None:
                    if item.record is None and item.error is None:  # the write crashed
                        item.error = LedgerError("the ledger writer failed; decision not written")
                    try:
                        item.notify(item)
                    except Exception:
                        log.exception("notifying a ledger decision's waiter failed")

    # -- submitted decisions (no thread waits on them) ----------------------------------------

    def submit(
        self,
        data: Mapping[str, Any],
        canonical: str,
        decision_id: str,
        notify: Callable[[Pending], None],
    ) -> Pending:
        """Queue one decision for the next transaction without waiting for it.

        ``notify(pending)`` is called on the writer's own thread once the transaction holding it
        has committed (``record`` set) or failed (``error`` set). Thus an event loop can await
        its decisions with no thread blocked per decision: this writer's one thread leads the
        transactions that start with a submitted decision. The caller bounds its wait itself,
        and ``withdraw``s a decision it stops waiting for.
        """
        mine = Pending(data, canonical, decision_id, notify=notify)
        with self._lock:
            if self._closed:
                raise self.late()
            self._queue.append(mine)
            if not self._writing:
                self._writing = True
                self._wake_leader()
        return mine

    def withdraw(self, pending: Pending) -> bool:
        """Take a submitted decision out of the queue; False when its transaction has begun
        (it may still commit: a later replay of it appends nothing, see the module)."""
        with self._lock:
            if pending in self._queue:
                self._queue.remove(pending)
                return True
            return False

    def _wake_leader(self) -> None:
        """Hand the next transaction to the writer's thread, started on first use (``_lock``
        held)."""
        if self._leader is None:
            self._leader = threading.Thread(
                target=self._leading, name="affidavit-ledger-writer", daemon=True
            )
            self._leader.start()
        self._wake.set()

    def _leading(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self._lead()
            except Exception:  # a bug; the decisions it held were told (see ``_lead``)
                log.exception("ledger writer crashed")

    # -- one transaction --------------------------------------------------------------------

    def _write(self, batch: list[Pending], check: bool = False) -> None:
        """Store ``batch`` in one transaction; set each item's record or error.

        New decisions are inserted without looking their ids up first: the ``id`` column is
        unique, so a decision already stored (a replay) fails the transaction, and then each
        decision is written alone, looked up first (``check``)."""
        try:
            stored = self.chain.transaction(batch, check)
        except LedgerError as e:
            for item in batch:
                item.error = e
            return
        except self.chain.integrity_error as e:
            if len(batch) > 1 or not check:  # find the one that does not fit, each alone
                for item in batch:
                    self._write([item], check=True)
                return
            detail = str(e).strip().splitlines()[0]
            batch[0].error = LedgerError(
                f"decision {batch[0].decision_id} could not be appended: {detail}"
            )
            return
        except (SQLAlchemyError, self.chain.dbapi_error) as e:
            error = self._unreachable(e)
            for item in batch:
                item.error = error
            return
        self.commits += 1
        self.committed += len(stored)
        if self._observe is not None:
            for record in stored:
                self._observe(record)

    def close(self) -> None:
        """Give the kept connection back and stop the writer's thread (the ledger is closing)."""
        with self._lock:
            self._closed = True
            self._wake.set()
        self.chain.close()

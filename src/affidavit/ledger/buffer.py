"""A bounded in-memory buffer in front of the ledger, so a database outage does not stop admission.

The webhook must answer the kube-apiserver within its timeout whether or not the ledger database
is up. When an append fails, the decision waits here (in order) and is flushed, oldest first,
as soon as the database answers again. The buffer is bounded: when it is full, ``record`` raises
``LedgerError`` and the webhook fails closed, because a decision nobody can audit later must not
admit a workload.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import DecisionLike, decision_to_dict
from affidavit.ledger.store import Ledger, LedgerRecord

log = logging.getLogger("affidavit.ledger")

BUFFERED_NOTE = "ledger unavailable, decision buffered"


@dataclass(frozen=True)
class RecordResult:
    """Where a decision went: ``stored`` (with its record) or ``buffered`` (with the reason)."""

    status: Literal["stored", "buffered"]
    record: LedgerRecord | None = None
    reason: str | None = None


class BufferedLedger:
    """Appends to a ``Ledger``; while it is unreachable, keeps up to ``capacity`` decisions."""

    def __init__(
        self, ledger: Ledger, *, capacity: int = 10_000, retry_interval: float = 2.0
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.ledger = ledger
        self.capacity = capacity
        #: After a failure, requests skip the database for this long (a background ``flush``
        #: keeps trying), so an unreachable database costs one connect timeout, not one per request.
        self.retry_interval = retry_interval
        self._failed_at: float | None = None
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def record(self, decision: DecisionLike | Mapping[str, Any]) -> RecordResult:
        """Store the decision, or buffer it; raise ``LedgerError`` if the buffer is full."""
        data = decision_to_dict(decision)
        with self._lock:
            backing_off = (
                self._failed_at is not None
                and time.monotonic() - self._failed_at < self.retry_interval
            )
            if not backing_off and self._flush_locked():
                try:
                    return RecordResult("stored", record=self.ledger.append(data))
                except LedgerError as e:
                    self._note_failure(e)
            if len(self._pending) >= self.capacity:
                raise LedgerError(
                    f"ledger unavailable and its buffer is full ({self.capacity} decisions): "
                    f"{self.last_error}",
                    hint="restore the ledger database; until then requests are denied",
                )
            self._pending.append(data)
            log.warning(
                "%s: id=%s pending=%d (%s)",
                BUFFERED_NOTE,
                data.get("id"),
                len(self._pending),
                self.last_error,
            )
            return RecordResult("buffered", reason=self.last_error)

    def flush(self) -> int:
        """Try to write buffered decisions; return how many are still pending."""
        with self._lock:
            if self._flush_locked():
                self._failed_at = None
            return len(self._pending)

    def _flush_locked(self) -> bool:
        """Drain the buffer in order; True when it is empty (the database is answering)."""
        while self._pending:
            try:
                self.ledger.append(self._pending[0])
            except LedgerError as e:
                self._note_failure(e)
                return False
            self._pending.popleft()
            if not self._pending:
                log.info("ledger reachable again; buffered decisions flushed")
        self.last_error = None
        self._failed_at = None
        return True

    def _note_failure(self, e: LedgerError) -> None:
        self.last_error = e.message
        self._failed_at = time.monotonic()

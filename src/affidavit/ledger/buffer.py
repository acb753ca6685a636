"""A bounded, durable buffer in front of the ledger, so a database outage does not stop admission.

The webhook must answer the kube-apiserver within its timeout whether or not the ledger database
is up. A request appends straight to the ledger only while nothing is waiting; when that append
fails (database down, or locked past the ledger's short lock timeout), or older decisions are
still waiting, the decision is buffered in order. Only the background ``flush`` writes the
backlog: a request never pays for an outage it did not see.

With a ``path``, the buffer is also a local append-only file (JSON lines, fsynced before the
request is answered), replayed on start and truncated once flushed, so a webhook killed during
an outage loses no decision it answered. Replaying a decision the ledger already holds is a
no-op (appends are idempotent by decision id). The buffer is bounded: when it is full,
``record`` raises ``LedgerError`` and the webhook fails closed, because a decision nobody can
audit later must not admit a workload.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from affidavit.errors import LedgerError
from affidavit.ledger.canonical import DecisionLike, canonical_pair
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

    def __init__(self, ledger: Ledger, *, capacity: int = 10_000, path: Path | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.ledger = ledger
        self.capacity = capacity
        self.path = path
        self._pending: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # guards _pending and the file; never held across the DB
        self._flushing = threading.Lock()  # one flush at a time
        self._file: IO[bytes] | None = None
        self.last_error: str | None = None
        if path is not None:
            self._open(path)

    # -- the durable file -------------------------------------------------------------------

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+b")
        except OSError as e:
            raise LedgerError(
                f"cannot open the ledger buffer file {path}: {e.strerror or e}",
                hint="give --ledger-buffer-file a writable path on the Pod's volume",
            ) from e
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.close()
            raise LedgerError(
                f"the ledger buffer file {path} is in use by another process",
                hint="each webhook process needs a buffer file of its own",
            ) from e
        self._file = handle
        handle.seek(0)
        lines = handle.read().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                if number == len(lines):  # a write cut short by a crash: never answered
                    log.warning("ledger buffer %s: dropped a torn last line", path)
                    continue
                raise LedgerError(
                    f"the ledger buffer file {path} has an unreadable line {number}",
                    hint="move the file aside to start; its decisions are not in the ledger",
                ) from None
            if not isinstance(data, dict) or "id" not in data:
                raise LedgerError(f"the ledger buffer file {path} line {number} is no decision")
            self._pending.append(data)
        if self._pending:
            self.last_error = f"{len(self._pending)} decisions replayed from {path}"
            log.warning("ledger buffer: %s, flushing in the background", self.last_error)

    def _persist(self, canonical: str) -> None:
        """Append one decision (its canonical JSON) to the file and fsync it (``_lock`` held).

        Written to the descriptor, not through a userspace buffer, and cut back on failure: a
        decision that cannot be persisted is refused, so no byte of it may stay behind (part of
        a line makes the file unreadable at the next start; a whole one, kept in a buffer and
        written with the next decision, would replay a decision nobody was given).
        """
        if self._file is None:
            return
        fd = self._file.fileno()
        line = memoryview(canonical.encode() + b"\n")
        size = os.fstat(fd).st_size
        try:
            while line:
                line = line[os.write(fd, line) :]
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, size)
            except OSError as cut:
                log.error("ledger buffer %s: a refused decision's bytes remain: %s", self.path, cut)
            raise LedgerError(
                f"ledger unavailable and its buffer file {self.path} cannot be written: "
                f"{e.strerror or e}",
                hint="restore the ledger database or free the buffer's volume; until then "
                "requests are denied",
            ) from e

    def _truncate(self) -> None:
        """Empty the file once everything in it is in the ledger (``_lock`` held)."""
        if self._file is None:
            return
        try:
            self._file.truncate(0)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:  # harmless: a replay of stored decisions is a no-op
            log.warning("ledger buffer %s not truncated: %s", self.path, e)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # -- the request path -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def record(self, decision: DecisionLike | Mapping[str, Any]) -> RecordResult:
        """Store the decision, or buffer it; raise ``LedgerError`` if the buffer is full.

        Never writes the backlog: while decisions are waiting, a new one waits behind them.
        """
        data, canonical = canonical_pair(decision)
        if not self.pending:
            try:
                return RecordResult("stored", record=self.ledger.append(data, canonical))
            except LedgerError as e:
                self.last_error = e.message
        return self.keep(data, canonical)

    def keep(self, data: Mapping[str, Any], canonical: str) -> RecordResult:
        """Buffer a decision the ledger did not store (or that must wait behind the backlog);
        raise ``LedgerError`` if the buffer is full. ``canonical``: its canonical JSON."""
        with self._lock:
            if len(self._pending) >= self.capacity:
                raise LedgerError(
                    f"ledger unavailable and its buffer is full ({self.capacity} decisions): "
                    f"{self.last_error}",
                    hint="restore the ledger database; until then requests are denied",
                )
            self._persist(canonical)
            self._pending.append(dict(data))
            count = len(self._pending)
        log.warning(
            "%s: id=%s pending=%d (%s)", BUFFERED_NOTE, data.get("id"), count, self.last_error
        )
        return RecordResult("buffered", reason=self.last_error)

    # -- the background flusher -------------------------------------------------------------

    def flush(self) -> int:
        """Write buffered decisions, oldest first; return how many are still pending."""
        with self._flushing:
            while True:
                with self._lock:
                    if not self._pending:
                        return 0
                    head = self._pending[0]
                try:
                    self.ledger.append(head)
                except LedgerError as e:
                    self.last_error = e.message
                    return self.pending
                with self._lock:
                    self._pending.popleft()
                    if not self._pending:
                        self._truncate()
                        self.last_error = None
                        log.info("ledger reachable again; buffered decisions flushed")

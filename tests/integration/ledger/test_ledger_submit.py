"""Decisions submitted to the ledger's writer without a waiting thread (``Ledger.submit``, used by
the webhook's event loop): they share transactions with appending threads in one chain, each is
told its own record (or error) on the writer's thread once its transaction is over, a withdrawn
one is never written, and none is submitted before the ledger's first append has made sure of its
schema. The SQLite write lock is held by a real second connection to line them up."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ledger_decisions import make_decision

from affidavit.ledger import Ledger, LedgerRecord
from affidavit.ledger.canonical import canonical_pair
from affidavit.ledger.writer import Pending
from affidavit.policy.decision import Decision


class _Told:
    """The outcomes the writer's thread reports, and which thread reported them."""

    def __init__(self) -> None:
        self.items: list[Pending] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, pending: Pending) -> None:
        with self.lock:
            self.items.append(pending)
            self.threads.add(threading.current_thread().name)


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _submit(led: Ledger, decision: Decision, told: _Told) -> Pending:
    data, canonical = canonical_pair(decision)
    pending = led.submit(data, canonical, told)
    assert pending is not None
    return pending


def test_submitted_and_appended_decisions_share_commits_in_one_chain(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=20)
    data, canonical = canonical_pair(make_decision(did="first"))
    assert led.submit(data, canonical, _Told()) is None  # the schema is not known to exist yet
    led.append(make_decision(did="first"))
    commits = led.writer.commits
    told = _Told()
    held = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    held.execute("BEGIN EXCLUSIVE")
    appended: list[LedgerRecord] = []
    try:
        lead = _submit(led, make_decision(did="s-lead"), told)  # the writer's thread leads
        _until(lambda: led.writer.busy and led.writer.queued == 0, "the first transaction")
        submitted = [_submit(led, make_decision(did=f"s-{i}"), told) for i in range(5)]
        thread = threading.Thread(target=lambda: appended.append(led.append(make_decision())))
        thread.start()
        _until(lambda: led.writer.queued == 6, "the decisions queued behind it")
    finally:
        held.execute("ROLLBACK")
        held.close()
    thread.join()
    _until(lambda: len(told.items) == 6, "every submitted decision told")
    assert told.threads == {"affidavit-ledger-writer"}
    assert led.writer.commits - commits == 2  # the leader's, then one for the seven behind it
    assert [p.error for p in told.items] == [None] * 6
    records = {p.decision_id: p.record for p in told.items}
    lead_record = records[lead.decision_id]
    assert lead_record is not None and lead_record.seq == 2
    for pending in submitted:
        assert led.get(pending.decision_id) == records[pending.decision_id]
    seqs = sorted(r.seq for r in [*records.values(), *appended] if r is not None)
    assert seqs == list(range(2, 9))
    assert led.verify_chain().ok


def test_a_withdrawn_decision_is_never_written(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=20)
    led.append(make_decision(did="first"))
    told = _Told()
    held = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    held.execute("BEGIN EXCLUSIVE")
    try:
        _submit(led, make_decision(did="lead"), told)
        _until(lambda: led.writer.busy and led.writer.queued == 0, "the first transaction")
        gone = _submit(led, make_decision(did="gone"), told)
        kept = _submit(led, make_decision(did="kept"), told)
        assert led.writer.withdraw(gone) is True
        assert led.writer.withdraw(gone) is False  # not in the queue any more
    finally:
        held.execute("ROLLBACK")
        held.close()
    _until(lambda: len(told.items) == 2, "the two others told")
    assert [p.decision_id for p in told.items] == ["lead", "kept"]
    assert led.writer.withdraw(kept) is False  # its transaction is over
    assert led.get("gone") is None
    assert [r.id for r in led.after(0)] == ["first", "lead", "kept"]


def test_a_submitted_decision_is_told_the_error_of_a_lock_held_past_the_wait(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    led = Ledger(url, lock_timeout=0.2)
    led.append(make_decision(did="first"))
    told = _Told()
    held = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    held.execute("BEGIN EXCLUSIVE")
    try:
        _submit(led, make_decision(did="blocked"), told)
        _until(lambda: len(told.items) == 1, "the decision told")
    finally:
        held.execute("ROLLBACK")
        held.close()
    (pending,) = told.items
    assert pending.record is None and pending.error is not None
    assert pending.error.message == (
        f"ledger database {url} stayed locked by another writer for more than 0.2s "
        "(database is locked)"
    )
    assert led.get("blocked") is None
    # the writer is free again: the next decision is written at once
    _submit(led, make_decision(did="next"), told)
    _until(lambda: len(told.items) == 2, "the next decision told")
    assert told.items[1].record is not None and told.items[1].record.seq == 2

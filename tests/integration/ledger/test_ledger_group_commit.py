"""Group commit: concurrent appends share one transaction (one durable commit) and still extend a
single chain, each caller getting its own seq and hash; a decision that does not fit (an id
already stored with other content) fails alone; and a caller queued behind a transaction that
outlives the ledger's wait is buffered within that wait instead of stalling. The SQLite write
lock is held by a real second connection to line the callers up."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ledger_decisions import make_decision

from affidavit.errors import LedgerError
from affidavit.ledger import BufferedLedger, Ledger, LedgerRecord, RecordResult
from affidavit.policy.decision import Decision


class _Held:
    """Another process's write transaction on the ledger file, until ``release``."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN EXCLUSIVE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def _run(fn: Callable[[], object], out: list[object]) -> threading.Thread:
    def target() -> None:
        try:
            out.append(fn())
        except LedgerError as e:
            out.append(e)

    thread = threading.Thread(target=target)
    thread.start()
    return thread


def _line_up(
    led: Ledger, db: Path, first: Decision, rest: list[Decision]
) -> tuple[list[object], list[object]]:
    """Append ``first`` while the lock is held, then ``rest`` behind it; release; both results."""
    held = _Held(db)
    leader: list[object] = []
    followers: list[object] = []
    threads = [_run(lambda: led.append(first), leader)]
    try:
        # the first caller has taken its transaction and waits for the lock
        _until(lambda: led.writer.busy and led.writer.queued == 0, "the first transaction")
        for d in rest:
            threads.append(_run(lambda d=d: led.append(d), followers))  # type: ignore[misc]
        _until(lambda: led.writer.queued == len(rest), "the callers queued behind it")
    finally:
        held.release()
    for t in threads:
        t.join()
    return leader, followers


def test_concurrent_appends_share_one_commit_and_one_chain(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=20)
    led.append(make_decision(did="before"))
    commits = led.writer.commits
    rest = [make_decision(did=f"queued-{i}") for i in range(9)]
    leader, followers = _line_up(led, db, make_decision(did="leader"), rest)
    # one transaction for the leader, one shared by the nine queued behind it
    assert led.writer.commits - commits == 2
    records = [r for r in leader + followers if isinstance(r, LedgerRecord)]
    assert len(records) == 10
    assert sorted(r.seq for r in records) == list(range(2, 12))
    for record in records:
        assert led.get(record.id) == record  # what each caller got is what was stored
    ids = [r.id for r in led.after(0)]
    assert ids[:2] == ["before", "leader"]
    assert sorted(ids[2:]) == sorted(d.id for d in rest)
    assert led.verify_chain().ok


def test_a_decision_that_does_not_fit_fails_alone(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=20)
    led.append(make_decision(did="taken"))
    clash = make_decision(did="taken", namespace="other")  # same id, other content
    rest = [make_decision(did="a"), clash, make_decision(did="b")]
    _, followers = _line_up(led, db, make_decision(did="leader"), rest)
    errors = [r for r in followers if isinstance(r, LedgerError)]
    assert [e.message for e in errors] == [
        "decision id taken is already in the ledger (seq 1) with different content"
    ]
    assert sorted(r.id for r in followers if isinstance(r, LedgerRecord)) == ["a", "b"]
    assert led.count() == 4
    assert led.verify_chain().ok


def test_a_replayed_decision_in_a_shared_commit_returns_its_stored_record(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=20)
    once = make_decision(did="once")
    stored = led.append(once)
    # the buffer replays a decision the ledger already holds, twice in one transaction
    _, followers = _line_up(led, db, make_decision(did="leader"), [once, once])
    assert followers == [stored, stored]
    assert led.count() == 2


def test_callers_queued_past_the_wait_are_buffered_within_it(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    led = Ledger(url, lock_timeout=0.3)
    buffered = BufferedLedger(led, capacity=100)
    assert buffered.record(make_decision(did="before")).status == "stored"
    held = _Held(db)
    results: list[object] = []
    try:
        threads = [
            _run(lambda i=i: buffered.record(make_decision(did=f"d{i}")), results)  # type: ignore[misc]
            for i in range(6)
        ]
        for t in threads:
            t.join()
    finally:
        held.release()
    assert all(isinstance(r, RecordResult) and r.status == "buffered" for r in results)
    reasons = {r.reason for r in results if isinstance(r, RecordResult)}
    assert reasons <= {
        f"ledger database {url} stayed locked by another writer for more than 0.3s "
        "(database is locked)",
        f"ledger database {url} did not commit the decision within 0.3s (the transaction "
        "ahead of it is still writing)",
    }
    assert buffered.flush() == 0
    assert sorted(r.id for r in led.after(1)) == [f"d{i}" for i in range(6)]
    assert led.verify_chain().ok


@pytest.mark.parametrize("callers", [1, 8])
def test_every_caller_gets_its_own_link(tmp_path: Path, callers: int) -> None:
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", lock_timeout=20)
    results: list[object] = []
    threads = [
        _run(lambda: [led.append(make_decision()) for _ in range(25)], results)
        for _ in range(callers)
    ]
    for t in threads:
        t.join()
    records = [r for batch in results if isinstance(batch, list) for r in batch]
    assert len(records) == 25 * callers
    assert sorted(r.seq for r in records) == list(range(1, 25 * callers + 1))
    assert led.verify_chain().ok

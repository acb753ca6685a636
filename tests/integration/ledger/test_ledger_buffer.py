"""The ledger buffer: decisions taken while the database is away (or locked past the ledger's short
lock wait) are kept in order, in a file that survives a restart, written only by the background
flush when it returns, and the buffer fails closed when full."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from ledger_decisions import make_decision

from affidavit.envtest.process import free_port
from affidavit.errors import LedgerError
from affidavit.ledger import BufferedLedger, Ledger, canonical_json
from affidavit.ledger.canonical import decision_to_dict


def test_closed_port_buffers_then_fails_closed_when_full() -> None:
    port = free_port()  # handed to nobody else meanwhile: it stays closed
    led = Ledger(f"postgresql+psycopg://affidavit@127.0.0.1:{port}/ledger", connect_timeout=1)
    buffered = BufferedLedger(led, capacity=2)
    first = buffered.record(make_decision())
    assert first.status == "buffered"
    assert first.reason is not None
    assert first.reason.startswith(
        f"ledger database postgresql+psycopg://affidavit@127.0.0.1:{port}/ledger is unreachable: "
    )
    assert buffered.record(make_decision()).status == "buffered"
    with pytest.raises(LedgerError) as e:
        buffered.record(make_decision())
    assert e.value.message.startswith(
        "ledger unavailable and its buffer is full (2 decisions): ledger database "
    )
    assert e.value.hint == "restore the ledger database; until then requests are denied"
    assert buffered.pending == 2


def test_unreachable_ledger_error_is_actionable() -> None:
    led = Ledger("sqlite:////nonexistent-dir-affidavit/ledger.db")
    with pytest.raises(LedgerError) as e:
        led.head()
    assert e.value.message == (
        "ledger database sqlite:////nonexistent-dir-affidavit/ledger.db is unreachable: "
        "unable to open database file"
    )
    assert e.value.hint is not None and "--ledger URL" in e.value.hint


def test_buffered_decisions_are_flushed_in_order_by_flush_not_by_a_request(
    tmp_path: Path,
) -> None:
    home = tmp_path / "not-yet"
    led = Ledger(f"sqlite:///{home / 'ledger.db'}")
    buffered = BufferedLedger(led, capacity=10)
    ids = [make_decision(did=f"early-{i}") for i in range(3)]
    assert [buffered.record(d).status for d in ids] == ["buffered"] * 3
    home.mkdir()  # the database comes back
    # A request does not write the backlog: it waits behind it, in order.
    later = buffered.record(make_decision(did="later"))
    assert later.status == "buffered"
    assert buffered.pending == 4
    assert led.count() == 0
    assert buffered.flush() == 0  # the background flusher's job
    assert [r.id for r in led.after(0)] == ["early-0", "early-1", "early-2", "later"]
    assert led.verify_chain().ok
    assert buffered.record(make_decision(did="after")).status == "stored"
    assert led.count() == 5


def _hold_exclusive(db: Path, held: threading.Event, release: threading.Event) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    held.set()
    release.wait(60)
    conn.execute("ROLLBACK")
    conn.close()


def test_a_held_lock_buffers_within_the_ledger_wait_instead_of_stalling(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    led = Ledger(f"sqlite:///{db}", lock_timeout=0.2)
    buffered = BufferedLedger(led, capacity=10)
    assert buffered.record(make_decision(did="before")).status == "stored"
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_exclusive, args=(db, held, release))
    holder.start()
    try:
        assert held.wait(10)
        # The lock is released only after record returns: with a 30 s wait this would be
        # "stored" once the holder gave up; the ledger's short wait buffers it instead.
        result = buffered.record(make_decision(did="during"))
    finally:
        release.set()
        holder.join()
    assert result.status == "buffered"
    assert result.reason == (
        f"ledger database sqlite:///{db} stayed locked by another writer for more than 0.2s "
        "(database is locked)"
    )
    assert buffered.flush() == 0
    assert [r.id for r in led.after(0)] == ["before", "during"]
    assert led.verify_chain().ok


def test_the_buffer_file_survives_a_restart_and_is_truncated_once_flushed(tmp_path: Path) -> None:
    home = tmp_path / "db-away"
    path = tmp_path / "buffer.jsonl"
    led = Ledger(f"sqlite:///{home / 'ledger.db'}")
    first = BufferedLedger(led, capacity=10, path=path)
    assert [first.record(make_decision(did=f"d{i}")).status for i in range(3)] == ["buffered"] * 3
    assert len(path.read_bytes().splitlines()) == 3
    first.close()  # the process dies with the database still away
    with path.open("ab") as f:
        f.write(b'{"id": "torn')  # a write cut short by the crash (never answered)
    home.mkdir()
    second = BufferedLedger(led, capacity=10, path=path)
    assert second.pending == 3
    assert second.flush() == 0
    assert [r.id for r in led.after(0)] == ["d0", "d1", "d2"]
    assert path.read_bytes() == b""
    assert led.verify_chain().ok
    second.close()


def test_replaying_decisions_already_stored_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "buffer.jsonl"
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    decision = make_decision(did="twice")
    led.append(decision)
    # killed after the flush wrote the decision but before the file was truncated
    path.write_bytes(canonical_json(decision_to_dict(decision)).encode() + b"\n")
    buffered = BufferedLedger(led, path=path)
    assert buffered.flush() == 0
    assert led.count() == 1
    assert led.verify_chain().ok


def test_a_buffer_file_in_use_by_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "buffer.jsonl"
    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    first = BufferedLedger(led, path=path)
    with pytest.raises(LedgerError) as e:
        BufferedLedger(led, path=path)
    assert e.value.message == f"the ledger buffer file {path} is in use by another process"
    first.close()

"""The ledger buffer: decisions taken while the database is away are kept in order, flushed when
it returns, and the buffer fails closed when full."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledger_decisions import make_decision

from affidavit.errors import LedgerError
from affidavit.ledger import BufferedLedger, Ledger


def test_closed_port_buffers_then_fails_closed_when_full() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    led = Ledger(f"postgresql+psycopg://affidavit@127.0.0.1:{port}/ledger", connect_timeout=1)
    buffered = BufferedLedger(led, capacity=2, retry_interval=0)
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


def test_buffered_decisions_are_flushed_in_order_when_the_database_returns(
    tmp_path: Path,
) -> None:
    home = tmp_path / "not-yet"
    led = Ledger(f"sqlite:///{home / 'ledger.db'}")
    buffered = BufferedLedger(led, capacity=10, retry_interval=0)
    ids = [make_decision(did=f"early-{i}") for i in range(3)]
    assert [buffered.record(d).status for d in ids] == ["buffered"] * 3
    home.mkdir()  # the database comes back
    later = buffered.record(make_decision(did="later"))
    assert later.status == "stored"
    assert later.record is not None and later.record.seq == 4
    assert buffered.pending == 0
    assert [r.id for r in led.after(0)] == ["early-0", "early-1", "early-2", "later"]
    assert led.verify_chain().ok


def test_backoff_skips_the_database_until_flush(tmp_path: Path) -> None:
    home = tmp_path / "later"
    led = Ledger(f"sqlite:///{home / 'ledger.db'}")
    buffered = BufferedLedger(led, capacity=10, retry_interval=3600)
    assert buffered.record(make_decision()).status == "buffered"
    home.mkdir()
    assert buffered.record(make_decision()).status == "buffered"  # still backing off
    assert buffered.flush() == 0
    assert buffered.record(make_decision()).status == "stored"
    assert led.count() == 3

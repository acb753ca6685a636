"""The chain writer keeps one database connection between transactions (no pool checkout, ping
and reset per decision), yet a connection the server closed while it was idle costs no decision:
it is pinged before its next transaction and replaced. PostgreSQL terminates the writer's own
session from another connection, as a restart or an idle-connection reaper does."""

from __future__ import annotations

import time

import pytest
from ledger_decisions import make_decision
from sqlalchemy import create_engine, text

from affidavit.errors import LedgerError
from affidavit.ledger import Ledger
from affidavit.ledger import append as append_module

# SQLite has no server to close a connection: these run on PostgreSQL only (not skipped on SQLite)
POSTGRESQL_ONLY = pytest.mark.parametrize("ledger_url", ["postgresql"], indirect=True)


def test_transactions_share_the_writers_connection(ledger: Ledger) -> None:
    first = ledger.append(make_decision())
    backend = _backend_of(ledger)
    second = ledger.append(make_decision())
    assert _backend_of(ledger) == backend
    assert (first.seq, second.seq) == (1, 2)
    assert ledger.verify_chain().ok


@POSTGRESQL_ONLY
def test_a_connection_the_server_closed_while_idle_is_replaced(
    ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.append(make_decision(did="before"))
    backend = _backend_of(ledger)
    other = create_engine(ledger_url)
    with other.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend}).scalar()
    other.dispose()
    monkeypatch.setattr(append_module, "IDLE_PING", 0.0)
    time.sleep(0.05)
    record = ledger.append(make_decision(did="after"))  # no LedgerError: pinged, reconnected
    assert record.seq == 2
    assert _backend_of(ledger) != backend
    assert [r.id for r in ledger.after(0)] == ["before", "after"]


def _backend_of(ledger: Ledger) -> object:
    """The identity of the writer's kept connection: PostgreSQL's backend pid, or the SQLite
    DB-API connection object."""
    conn = ledger.writer.chain._conn  # what is kept is the point of the test
    assert conn is not None
    if not ledger.is_postgres:
        return id(conn.dbapi_connection)
    cur = conn.cursor()
    cur.execute("SELECT pg_backend_pid()")
    pid = cur.fetchone()[0]
    cur.close()
    conn.commit()
    return pid


@POSTGRESQL_ONLY
def test_a_connection_that_failed_a_transaction_is_not_used_again(
    ledger: Ledger, ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(append_module, "IDLE_PING", 1e9)  # never pinged: the transaction fails
    ledger.append(make_decision(did="before"))
    other = create_engine(ledger_url)
    with other.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": _backend_of(ledger)})
    other.dispose()
    with pytest.raises(LedgerError, match="terminating connection due to administrator command"):
        ledger.append(make_decision(did="lost"))
    assert ledger.append(make_decision(did="after")).seq == 2

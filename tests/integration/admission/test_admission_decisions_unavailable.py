"""The decisions API when its ledger cannot be read: a 503 that says so, and nothing of the
database behind it (its host, name or file, the driver's words), since these routes take no
client certificate and anyone who reaches the port reads the answer; the log names the cause.

In-process (the ASGI app), with the real PostgreSQL driver pointed at a loopback port where
nothing listens, and with a SQLite file that is no database."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from affidavit.admission.decisions_api import add_decision_routes
from affidavit.ledger import Ledger


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Client:
    """GETs through the app itself (httpx's ASGI transport)."""

    def __init__(self, ledger: Ledger | None) -> None:
        self.app = FastAPI()
        add_decision_routes(self.app, lambda: ledger)

    def get(self, path: str) -> httpx.Response:
        async def one() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as c:
                return await c.get(path)

        return asyncio.run(one())


def _client(ledger: Ledger | None) -> _Client:
    return _Client(ledger)


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_an_unreadable_ledger_is_a_503_that_names_nothing_behind_it(
    where: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if where == "postgresql":
        secret = f"127.0.0.1:{_closed_port()}"
        url = f"postgresql+psycopg://affidavit:pw@{secret}/ledger_db"
    else:
        path = tmp_path / "private-ledger-dir" / "ledger.db"
        path.parent.mkdir()
        path.write_bytes(b"not a database" * 100)
        secret, url = "private-ledger-dir", f"sqlite:///{path}"
    client = _client(Ledger(url))
    with caplog.at_level(logging.WARNING, logger="affidavit.admission"):
        for path_ in ("/decisions/some-id", "/decisions?namespace=shop"):
            answer = client.get(path_)
            assert answer.status_code == 503
            assert answer.json() == {
                "error": "the webhook's ledger cannot be read now; its log names the cause"
            }
            assert secret not in answer.text
    assert any(secret in r.getMessage() for r in caplog.records)  # the operator's log has it


def test_no_ledger_is_said_as_it_is() -> None:
    answer = _client(None).get("/decisions/some-id")
    assert (answer.status_code, answer.json()) == (
        503,
        {"error": "this webhook runs without a ledger (--ledger ''): no decisions"},
    )


def test_reads_past_the_limit_are_refused_at_once_and_the_api_has_its_own_connections(
    postgres_url: str,
) -> None:
    """The routes take no client certificate and a read may scan the whole table: with one
    engine, a flood of reads held the connections admission's own reads wait for (a pinned
    child's digest is confirmed in the ledger). Now the API reads through a ledger of its own,
    at most ``AT_ONCE`` at a time; more are told to retry, at once, not queued.

    Real PostgreSQL: a table lock held by another session keeps the API's reads waiting."""
    import sqlalchemy

    from affidavit.admission.decisions_api import AT_ONCE, reading_ledger

    writer = Ledger(postgres_url)
    writer.query(limit=1)  # the schema exists
    opened = reading_ledger(postgres_url)
    api = opened()
    assert api is not writer and api is opened()  # its own engine, opened once
    app = FastAPI()
    add_decision_routes(app, opened)
    engine = sqlalchemy.create_engine(postgres_url)

    async def flood() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://webhook") as c:
            held = [asyncio.create_task(c.get("/decisions?namespace=shop")) for _ in range(AT_ONCE)]
            await asyncio.sleep(1.0)  # each holds its turn, waiting on the lock
            late = await c.get("/decisions/some-id")
            release.set()
            return [late.status_code, *[(await t).status_code for t in held]]

    release = asyncio.Event()
    with engine.connect() as locker:
        locker.execute(sqlalchemy.text("BEGIN"))
        locker.execute(sqlalchemy.text("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE"))

        async def run() -> list[int]:
            task = asyncio.create_task(flood())
            await release.wait()
            await asyncio.to_thread(locker.execute, sqlalchemy.text("ROLLBACK"))
            return await task

        codes = asyncio.run(run())
    assert codes[0] == 429
    assert codes[1:] == [200] * AT_ONCE
    engine.dispose()

"""A fresh ledger per test on SQLite (a file, WAL) or on the session's real PostgreSQL.

The ledger's and the audit's integration tests both run every test against both backends;
their conftest.py files import these two fixtures from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from affidavit.ledger import Ledger

_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    # One database per test, named after the test folder (ledger_3, audit_7, ...).
    name = f"{request.path.parent.name}_{next(_databases)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield base.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    led = Ledger(ledger_url)
    yield led
    led.close()

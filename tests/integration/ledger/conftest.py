"""Ledger fixtures: a fresh ledger on SQLite (a file, WAL) or on the session's real PostgreSQL,
an engine on the same database (to tamper with it as one who writes it would), and a ledger
signing key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine, create_engine

from ledger_databases import ledger, ledger_url

__all__ = ["engine", "key", "ledger", "ledger_url"]


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = create_engine(ledger_url)
    yield eng
    eng.dispose()


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()

"""Ledger fixtures: a fresh ledger on SQLite (a file, WAL) or on the session's real PostgreSQL."""

from __future__ import annotations

from ledger_databases import ledger, ledger_url

__all__ = ["ledger", "ledger_url"]

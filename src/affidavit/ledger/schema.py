"""The ledger's tables, in one place, for SQLite and PostgreSQL alike.

``decisions`` holds one row per admission decision with the full record as canonical JSON and the
hash chain; ``decision_images`` makes "every decision about this image" an indexed query;
``ledger_head`` is the single row every writer locks to extend the chain, so concurrent webhook
replicas never fork it. Every column of ``decisions`` but ``prev_hash``/``hash`` and every
``decision_images`` row is derived from the hashed JSON and checked against it on verification
(:mod:`affidavit.ledger.verify`). The SQLite connection settings the store relies on live here too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

#: Every table of a ledger; a database with only some of them is damaged, never repaired.
TABLES = ("decisions", "decision_images", "ledger_head")

decisions = Table(
    "decisions",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("id", String(128), nullable=False, unique=True),
    Column("time", DateTime(timezone=False), nullable=False),  # naive UTC
    Column("outcome", String(16), nullable=False),
    Column("namespace", String(253), nullable=False),
    Column("kind", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    Column("decision", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_decisions_time", "time"),
    Index("ix_decisions_namespace", "namespace"),
    Index("ix_decisions_outcome", "outcome"),
)

decision_images = Table(
    "decision_images",
    metadata,
    Column("seq", Integer, ForeignKey("decisions.seq"), nullable=False),
    Column("ref", Text, nullable=False),
    Column("digest", String(80), nullable=True),
    Index("ix_decision_images_ref", "ref"),
    Index("ix_decision_images_digest", "digest"),
    Index("ix_decision_images_seq", "seq"),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


def sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from pysqlite so BEGIN IMMEDIATE can be issued explicitly.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def sqlite_on_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    # Reading commands: no WAL switch, and SQLite itself refuses any write on the connection.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("affidavit_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

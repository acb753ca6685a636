"""The ledger's tables, in one place, for SQLite and PostgreSQL alike.

``decisions`` holds one row per admission decision with the full record as canonical JSON and the
hash chain; ``decision_images`` makes "every decision about this image" an indexed query;
``ledger_head`` is the single row every writer locks to extend the chain, so concurrent webhook
replicas never fork it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
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

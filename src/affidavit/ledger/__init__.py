"""The decision ledger: every admission decision, hash-chained, in SQLite or PostgreSQL.

Public face: ``Ledger`` (append, queries, ``verify_chain``), ``BufferedLedger`` (keeps deciding
while the database is away), the record types, and the canonical JSON/hash helpers.
"""

from affidavit.ledger.buffer import BUFFERED_NOTE, BufferedLedger, RecordResult
from affidavit.ledger.canonical import GENESIS_HASH, DecisionLike, canonical_json, chain_hash
from affidavit.ledger.store import ChainReport, Ledger, LedgerRecord

__all__ = [
    "BUFFERED_NOTE",
    "GENESIS_HASH",
    "BufferedLedger",
    "ChainReport",
    "DecisionLike",
    "Ledger",
    "LedgerRecord",
    "RecordResult",
    "canonical_json",
    "chain_hash",
]

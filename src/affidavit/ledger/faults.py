"""What a database failure tells the user: one message per way the ledger's database can fail.

Why apart from :mod:`affidavit.ledger.store`: the same failure reaches the user from the writer,
the readers and the schema check, and each message must name what happened, where, and what to
do (a held lock is not an outage; bytes that are not UTF-8 text or a time that is no time mean a
row was edited by another client; Affidavit never repairs a damaged schema).
"""

from __future__ import annotations

from affidavit.errors import LedgerError

__all__ = ["damaged", "not_a_time", "unreachable"]


def unreachable(url: str, e: Exception, *, lock_timeout: float, read_only: bool) -> LedgerError:
    """The ``LedgerError`` for a database error ``e`` (SQLAlchemy's or the driver's)."""
    detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
    if "database is locked" in detail or "lock timeout" in detail:
        return LedgerError(
            f"ledger database {url} stayed locked by another writer for more than "
            f"{lock_timeout:g}s ({detail})",
            hint="find the process holding the ledger's write lock; the webhook buffers "
            "decisions until it is released",
        )
    if "Could not decode to UTF-8" in detail:  # SQLite hands out stored bytes as text
        return LedgerError(
            f"ledger database {url} holds a value that is not UTF-8 text ({detail[:160]}"
            "…): Affidavit's writer stores only UTF-8 JSON, so a row was written or edited "
            "by another client",
            hint="treat the ledger as tampered: compare it with its signed checkpoints and "
            "restore it from a backup",
        )
    return LedgerError(
        f"ledger database {url} is unreachable: {detail}",
        hint=(
            "check that the database is running and the --ledger URL is right"
            if read_only
            else "check that the database is running and the --ledger URL is right; "
            "the webhook keeps deciding and buffers decisions until it returns"
        ),
    )


def damaged(url: str, what: str) -> LedgerError:
    """The ``LedgerError`` for a schema missing ``what`` (never repaired)."""
    return LedgerError(
        f"ledger database {url} has a damaged schema: {what}",
        hint="Affidavit does not repair a ledger; restore it from a backup and investigate "
        "who had write access to the database",
    )


def not_a_time(url: str, e: ValueError) -> LedgerError:
    """The ``LedgerError`` for a time column whose text is no time (SQLite keeps any text)."""
    return LedgerError(
        f"ledger database {url} holds a decision time that is not a time ({e}): "
        "a row was edited by another client",
        hint="run `affidavit audit verify-chain` to name the row, and treat the ledger as tampered",
    )

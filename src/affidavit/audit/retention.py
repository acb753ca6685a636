"""The report's retention statement: how long the ledger has kept its decisions, and whether any
was removed.

PCI DSS 10.5.1, NIST SP 800-53 AU-11 and the EU AI Act (Art. 18, 19) ask that the audit trail be
kept for a period (the presets' ``retentionDays``). Admission cannot judge that, and a view by
control that showed those controls with "0 violations" would read as a pass nobody checked. The
ledger can show it: its rows are hash-chained from a genesis, so a chain that verifies from seq 1
has lost nothing since its first decision, and every period is met for as long as the ledger has
existed, provided signed checkpoints show the chain is the one the webhook wrote (a ledger
rewritten whole, or started again from an empty database, chains from seq 1 too). A broken chain,
a first row that is not seq 1, or no checkpoints, and the statement says what it cannot show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from affidavit.audit.controls import retention_demands
from affidavit.ledger import ChainReport, Ledger
from affidavit.policy.lifetime import parse_time

__all__ = ["retention_statement"]


def retention_statement(
    ledger: Ledger, chain: ChainReport, generated_at: datetime | None
) -> dict[str, Any]:
    """What the ledger shows about retention: its first decision (seq and time), the days from
    then to the report, whether nothing was removed, the periods the presets ask, and the
    sentence the report prints."""
    first = ledger.after(0, limit=1)
    oldest = first[0] if first else None
    time = oldest.decision.get("time") if oldest is not None else None
    when = parse_time(time) if isinstance(time, str) else None
    now = generated_at or datetime.now(UTC)
    kept = max((now - when).days, 0) if when is not None else None
    demands = retention_demands()
    asked = ", ".join(f"{d['control']} ({d['preset']}): {d['days']} days" for d in demands)
    whole = chain.ok and oldest is not None and oldest.seq == 1
    if oldest is None:
        text = "Retention: the ledger holds no decision yet."
    elif not whole:
        where = (
            f"the chain is broken at seq {chain.first_broken_seq}"
            if not chain.ok
            else f"its first row is seq {oldest.seq}, not 1"
        )
        text = (
            f"Retention cannot be shown: {where}, so decisions may have been removed "
            f"(asked: {asked})."
        )
    elif chain.checkpoint_size is None:
        # Chained from seq 1, but a ledger rewritten whole, cut at its tail or started again
        # from an empty database chains from seq 1 too: only signed checkpoints tell them apart.
        text = (
            f"Retention not shown: the chain is whole from the ledger's first decision (seq 1, "
            f"{oldest.decision.get('time')}), {kept} days before this report, but without "
            "signed checkpoints a ledger rewritten, cut short or started again would be as "
            "whole; pass --ledger-public-key and --checkpoints to show that nothing was removed "
            f"(asked: {asked})."
        )
    else:
        text = (
            f"Retention: no decision has been removed since the ledger's first (seq 1, "
            f"{oldest.decision.get('time')}), {kept} days before this report; the periods asked "
            f"({asked}) are met for the ledger's whole life."
        )
    return {
        "oldestSeq": oldest.seq if oldest is not None else None,
        "oldestDecision": oldest.decision.get("time") if oldest is not None else None,
        "keptDays": kept,
        "nothingRemoved": whole and chain.checkpoint_size is not None,
        "signedCheckpoint": chain.checkpoint_size,
        "asked": demands,
        "statement": text,
    }

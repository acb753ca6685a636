"""Joining seq ranges of the chain verified apart (in parallel) into the one verdict.

A million decisions take one core most of a minute to hash, parse and check; split into seq
ranges each scanned by its own process (:class:`affidavit.ledger.scan.ChainScan` with ``lo`` and
``hi``) they take a fraction of that. Each range takes its first row's link on trust; the join
checks it here: range k's first row must be the seq after range k-1's last and carry its hash
as prev_hash. Where it does not, that row is checked again with the link it should have had
(:func:`affidavit.ledger.records.check_row`, through the scan's exact path), so the fault is
named exactly as the single pass names it, and the verdict (first broken seq, reason, rows
checked, faults, the head and the signed checkpoints) is the single pass's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from affidavit.ledger.canonical import GENESIS_HASH
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.records import ChainReport
from affidavit.ledger.scan import ChainScan, Span, close_chain
from affidavit.ledger.schema import decisions

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger

__all__ = ["Joined", "join_spans", "recheck_row", "seq_bounds"]

#: (seq, expected seq, expected prev_hash) -> why that row is not the next link (None: it is)
Recheck = Callable[[int, int, str], str | None]


@dataclass(frozen=True)
class Joined:
    report: ChainReport
    faults: int
    #: the index of the first range whose every row is in the damaged range (None: no such one)
    damaged_from: int | None


def join_spans(
    spans: Sequence[Span],
    head: tuple[int, str],
    checkpoints: Sequence[Checkpoint],
    recheck: Recheck,
) -> Joined:
    """The chain's verdict from its ranges, in seq order (the first open below, the last open
    above; ``head`` read with the last)."""
    checked = faults = 0
    first_broken: int | None = None
    reason: str | None = None
    orphan: int | None = None
    damaged_from: int | None = None
    end = (0, GENESIS_HASH)
    for i, span in enumerate(spans):
        faults += span.faults
        if orphan is None:
            orphan = span.orphan  # ranges are in seq order: the first found is the lowest
        if span.entry is None or span.exit is None:
            continue
        linked = span.entry == (end[0] + 1, end[1])
        if not linked and not span.entry_fault:
            faults += 1  # the single pass counts this row (its link fails) once
        if first_broken is not None:
            damaged_from = i if damaged_from is None else damaged_from
        elif not linked:
            problem = recheck(span.entry[0], end[0] + 1, end[1])
            first_broken, reason, damaged_from = span.entry[0], problem, i
        else:
            checked += span.checked
            first_broken, reason = span.first_broken, span.reason
        end = span.exit
    report = close_chain(checked, first_broken, reason, end, head, checkpoints, orphan)
    return Joined(report, faults, damaged_from)


def recheck_row(ledger: Ledger, seq: int, expected_seq: int, expected_prev: str) -> str | None:
    """``check_row`` on row ``seq`` as the link after (``expected_seq``, ``expected_prev``)."""
    scan = ChainScan(ledger)
    with ledger.read_snapshot() as conn:
        return scan._exact(conn, seq, expected_seq, expected_prev)[0]


def seq_bounds(ledger: Ledger) -> tuple[int, int] | None:
    """The lowest and highest seq in the decisions table (None: it is empty)."""
    with ledger.read_snapshot() as conn:
        low, high = conn.execute(select(func.min(decisions.c.seq), func.max(decisions.c.seq))).one()
    return None if low is None else (int(low), int(high))

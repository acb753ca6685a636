"""Walking the chain: every row, its image rows, the head, and the signed checkpoints.

The rule itself is :func:`affidavit.ledger.records.check_row` (a row must link to the previous
one, hash to its stored hash, and every stored field must agree with the hashed JSON), applied
by :class:`affidavit.ledger.scan.ChainScan` in one streaming pass: the head must sit at the
chain's end, every signed checkpoint (size, hash) must match the row at that size, and the chain
must reach at least the largest signed size. The first fault found is reported with where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.records import ChainReport
from affidavit.ledger.scan import ChainScan

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger


def walk_chain(ledger: Ledger, checkpoints: Sequence[Checkpoint] = ()) -> ChainReport:
    """Verify every row of ``ledger`` in order, then its head, then the ``checkpoints``."""
    scan = ChainScan(ledger, checkpoints)
    for _ in scan:
        pass
    assert scan.report is not None
    return scan.report

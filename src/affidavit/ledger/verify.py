"""Walking the chain: every row, its image rows, the head, and the signed checkpoints.

Kept apart from the storage code so the whole verification rule reads in one place: a row must
link to the previous one and hash to its stored hash (:func:`check_row`), every stored field must
agree with the hashed JSON, the head must sit at the chain's end, and every signed checkpoint
(size, hash) must match the row at that size, with the chain reaching at least the largest
signed size. The first fault found is reported with where it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from affidavit.ledger.canonical import GENESIS_HASH
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.records import ChainReport, check_row

if TYPE_CHECKING:
    from affidavit.ledger.store import Ledger

_BATCH = 500


def walk_chain(ledger: Ledger, checkpoints: Sequence[Checkpoint] = ()) -> ChainReport:
    """Verify every row of ``ledger`` in order, then its head, then the ``checkpoints``."""
    head_seq, head_hash = ledger.head()
    signed = {cp.size: cp for cp in checkpoints}
    newest = max(checkpoints, key=lambda cp: cp.size) if checkpoints else None
    size = newest.size if newest else None
    genesis = signed.get(0)
    if genesis is not None and genesis.head_hash != GENESIS_HASH:
        return ChainReport(0, head_seq, 1, f"checkpoint {genesis.source} (size 0) is not genesis")
    expected_prev, expected_seq, checked, last = GENESIS_HASH, 1, 0, 0
    while True:
        rows = ledger.after(last, _BATCH)
        if not rows:
            break
        images = ledger.images(rows[0].seq, rows[-1].seq)
        for rec in rows:
            problem = check_row(rec, expected_seq, expected_prev, images.get(rec.seq, []))
            if problem is not None:
                return ChainReport(checked, head_seq, rec.seq, problem, size)
            cp = signed.get(rec.seq)
            if cp is not None and cp.head_hash != rec.hash:
                return ChainReport(
                    checked,
                    head_seq,
                    rec.seq,
                    f"checkpoint {cp.source} signs size {cp.size} with head hash "
                    f"{cp.head_hash[:12]}… but row seq {rec.seq} (decision {rec.id}) hashes to "
                    f"{rec.hash[:12]}…: history up to seq {cp.size} was rewritten and "
                    "re-chained after it was checkpointed",
                    size,
                )
            checked += 1
            expected_prev, expected_seq = rec.hash, rec.seq + 1
        last = rows[-1].seq
    end = expected_seq - 1
    if head_seq != end or head_hash != expected_prev:
        return ChainReport(
            checked,
            head_seq,
            expected_seq if head_seq >= expected_seq else head_seq,
            f"the head records seq {head_seq} but the chain ends at seq {end}: "
            "rows were removed from the end or the head was edited",
            size,
        )
    if newest is not None and end < newest.size:
        return ChainReport(
            checked,
            head_seq,
            end + 1,
            f"checkpoint {newest.source} signs size {newest.size} but the ledger ends at seq "
            f"{end}: decisions {end + 1}..{newest.size} were removed and the head rewound "
            "(truncation)",
            size,
        )
    orphans = ledger.orphan_images()
    if orphans:
        return ChainReport(
            checked,
            head_seq,
            orphans[0],
            f"decision_images rows name seq {orphans[0]}, which is not in the decisions table",
            size,
        )
    return ChainReport(checked, head_seq, checkpoint_size=size)

"""The pass split over two processes gives the single pass's report and pack, byte for byte.

Above ``parallel_from`` decisions the chain is verified and counted in two seq ranges in two
processes and joined at the boundary hash. Every case here (an intact ledger, and tampering
below, at and above the boundary, and at the end) renders the split report and the single
pass's report of the same ledger and requires the same JSON and HTML: the same verdict, the
same fault named at the same seq, every figure of the damaged range marked the same way; the
evidence pack, whose upper range's lines the worker writes, is the same zip.
On SQLite and on the real PostgreSQL.
"""

from __future__ import annotations

import gc
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_decisions import CRITICAL, FRESH, OWNER, SINCE, UNTIL, decision
from sqlalchemy import create_engine, text

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.pack import build_pack
from affidavit.audit.parallel import PACK_SHARE, SINGLE_PASS, parallel_scan
from affidavit.audit.render import render_html, render_json
from affidavit.audit.report import report_from_ledger
from affidavit.audit.stretch import stored_line
from affidavit.audit.tally import Tally
from affidavit.ledger import Ledger
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.scan import ScanRow

N = 40
MID = (1 + N) // 2  # the lower range is seqs 1..20, the upper one 21..40
#: where a pack's split falls (its own process compresses every line, so it scans fewer rows)
PACK_MID = 1 + int((N - 1) * PACK_SHARE)
#: the pack's period begins in the lower range of both splits (at seq 9)
PACK_SINCE = datetime(2026, 2, 10, tzinfo=UTC)
GENERATED = datetime(2026, 4, 2, tzinfo=UTC)
OUTCOMES = ("allowed", "denied", "warned", "excepted", "audited", "allowed", "denied")


def _fill(ledger: Ledger) -> None:
    for n in range(1, N + 1):
        outcome = OUTCOMES[n % len(OUTCOMES)]
        us = n % 3 == 0
        ledger.append(
            decision(
                n,
                f"2026-{2 + n // 20:02d}-{1 + n % 27:02d}T{n % 24:02d}:00:00Z",
                outcome,
                region="us-east-1" if us else "eu-west-1",
                cluster="prod-us" if us else "prod-eu",
                namespace=("shop", "pay", "web")[n % 3],
                image="abcd"[n % 4],
                evidence=(AI_PROVENANCE_V1, CODE_REVIEW_V1)[: n % 3],
                violations=() if outcome == "allowed" else ((CRITICAL, FRESH, OWNER)[n % 3],),
                exception=f"pay/inc-{n % 2}" if outcome == "excepted" else None,
            )
        )


def _sql(url: str, *statements: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def _checkpoints(url: str) -> tuple[Checkpoint, ...]:
    """Checkpoints at sizes 10, 25 and 40 of the untouched ledger (as if signed and published)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, hash FROM decisions WHERE seq IN (10, 25, 40)"))
        found = tuple(Checkpoint("test", int(seq), str(h), f"cp-{seq}") for seq, h in rows)
    engine.dispose()
    return found


def _report(
    ledger: Ledger, parallel_from: int, checkpoints: tuple[Checkpoint, ...], region: str | None
) -> tuple[str, str]:
    doc = report_from_ledger(
        ledger,
        checkpoints=checkpoints,
        since=SINCE,
        until=UNTIL,
        region=region,
        generated_at=GENERATED,
        ledger_url="the-ledger",
        parallel_from=parallel_from,
    )
    return render_json(doc), render_html(doc)


TAMPER: dict[str, Callable[[str], None]] = {
    "intact": lambda url: None,
    "lower range JSON edited": lambda url: _sql(
        url, "UPDATE decisions SET decision = replace(decision, 'alice', 'mallory') WHERE seq = 7"
    ),
    "lower range column edited": lambda url: _sql(
        url, "UPDATE decisions SET namespace = 'other' WHERE seq = 3"
    ),
    "upper range's first row removed": lambda url: _sql(
        url,
        f"DELETE FROM decision_images WHERE seq = {MID + 1}",
        f"DELETE FROM decisions WHERE seq = {MID + 1}",
    ),
    "lower range's last row removed": lambda url: _sql(
        url,
        f"DELETE FROM decision_images WHERE seq = {MID}",
        f"DELETE FROM decisions WHERE seq = {MID}",
    ),
    "boundary prev_hash edited": lambda url: _sql(
        url, f"UPDATE decisions SET prev_hash = hash WHERE seq = {MID + 1}"
    ),
    # prev_hash + decision, the bytes the hash covers, unchanged: only where they split moved
    "boundary row's prev_hash end moved into its decision": lambda url: _sql(
        url,
        "UPDATE decisions SET decision = substr(prev_hash, 64) || decision, "
        f"prev_hash = substr(prev_hash, 1, 63) WHERE seq = {MID + 1}",
    ),
    "upper range image row removed": lambda url: _sql(
        url, "DELETE FROM decision_images WHERE seq = 30"
    ),
    "both ranges edited": lambda url: _sql(
        url,
        "UPDATE decisions SET kind = 'Pod' WHERE seq = 33",
        "UPDATE decisions SET outcome = 'allowed' WHERE seq = 12",
    ),
    "tail cut and head rewound": lambda url: _sql(
        url,
        "DELETE FROM decision_images WHERE seq > 36",
        "DELETE FROM decisions WHERE seq > 36",
        "UPDATE ledger_head SET seq = 36, hash = (SELECT hash FROM decisions WHERE seq = 36)",
    ),
    "head edited": lambda url: _sql(url, "UPDATE ledger_head SET seq = 38"),
    "pack boundary prev_hash edited": lambda url: _sql(
        url, f"UPDATE decisions SET prev_hash = hash WHERE seq = {PACK_MID + 1}"
    ),
    "pack's lower range's last row removed": lambda url: _sql(
        url,
        f"DELETE FROM decision_images WHERE seq = {PACK_MID}",
        f"DELETE FROM decisions WHERE seq = {PACK_MID}",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_the_split_pass_reports_exactly_what_the_single_pass_does(
    ledger: Ledger, ledger_url: str, case: str
) -> None:
    _fill(ledger)
    signed = _checkpoints(ledger_url)
    TAMPER[case](ledger_url)
    t = Tally()
    split = parallel_scan(ledger, t, signed, SINCE, UNTIL, parallel_from=2)
    assert split is not None  # the split was taken, not the single pass
    chain, _head, _faults = split
    assert chain == ledger.verify_chain(signed)
    assert chain.ok == (case == "intact"), chain
    for region in (None, "eu-*"):
        assert _report(ledger, 2, signed, region) == _report(ledger, 10**9, signed, region)


def test_a_small_ledger_takes_the_single_pass(ledger: Ledger) -> None:
    _fill(ledger)
    assert parallel_scan(ledger, Tally(), (), SINCE, UNTIL, parallel_from=N + 1) is None


@pytest.mark.parametrize(
    "case",
    [
        "intact",
        "boundary prev_hash edited",
        "both ranges edited",
        "pack boundary prev_hash edited",
        "pack's lower range's last row removed",
    ],
)
def test_the_split_pack_is_the_single_pass_pack_byte_for_byte(
    ledger: Ledger, ledger_url: str, case: str, tmp_path: Path
) -> None:
    _fill(ledger)
    signed = _checkpoints(ledger_url)
    TAMPER[case](ledger_url)
    packs = []
    for parallel_from in (2, SINGLE_PASS):
        path = tmp_path / f"pack-{parallel_from}.zip"
        digest, _doc = build_pack(
            ledger,
            path,
            since=PACK_SINCE,
            until=UNTIL,
            checkpoints=signed,
            generated_at=GENERATED,
            ledger_url="the-ledger",
            parallel_from=parallel_from,
        )
        packs.append((digest, path.read_bytes()))
    assert packs[0] == packs[1]
    with zipfile.ZipFile(tmp_path / "pack-2.zip") as zf:
        lines = zf.read("decisions.jsonl").splitlines()
    # the stretch runs across the boundary: rows of both ranges, in seq order
    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == sorted(seqs) and 1 < seqs[0] <= PACK_MID < MID < seqs[-1]


def test_a_pack_splits_where_its_own_process_scans_the_smaller_share(ledger: Ledger) -> None:
    """The pack's process also compresses the worker's lines: it scans seqs 1..PACK_MID."""
    _fill(ledger)
    seen: list[bool] = []
    assert parallel_scan(ledger, Tally(), (), SINCE, UNTIL, parallel_from=2, lines=_Watch(seen))
    assert PACK_MID < MID and len(seen) == PACK_MID


class _Watch:
    """A pack's line sink that notes whether the cycle collector runs as each row arrives."""

    line = staticmethod(stored_line)

    def __init__(self, seen: list[bool]) -> None:
        self.seen = seen

    def add(self, row: ScanRow) -> None:
        self.seen.append(gc.isenabled())

    def add_line(self, in_period: bool, line: bytes) -> None:
        pass  # the worker's rows, replayed after its pass


def test_the_pass_runs_without_the_cycle_collector_and_gives_it_back(ledger: Ledger) -> None:
    _fill(ledger)
    seen: list[bool] = []
    split = parallel_scan(ledger, Tally(), (), SINCE, UNTIL, parallel_from=2, lines=_Watch(seen))
    assert split is not None and len(seen) == PACK_MID
    report_from_ledger(
        ledger, since=SINCE, until=UNTIL, sink=lambda row: seen.append(gc.isenabled())
    )
    assert len(seen) == PACK_MID + N and not any(seen)
    assert gc.isenabled()
    gc.disable()  # a caller that turned it off keeps it off
    try:
        report_from_ledger(ledger, since=SINCE, until=UNTIL)
        assert not gc.isenabled()
    finally:
        gc.enable()

"""Benchmark: where the audit pass spends its time per row, stage by stage, before and after.

Why: ``bench_audit`` times whole commands, whose figures on a shared machine move by more than a
change to the per-row work does. This one runs the pass in-process, single, on one ledger, and
adds one stage at a time, so each stage's cost per row is the difference of two lines:

- ``fetch``: the scan's two queries (decisions, image rows) streamed through the driver's cursor;
- ``scan``: the chain scan alone (hash, decode, compare: every check, no facts);
- ``scan + facts``: with the report's facts reader (:class:`affidavit.audit.tally.ScanFacts`);
- ``scan + facts + tally``: what the report's pass does per row (one process, no split).

Each stage runs ``--repeat`` times in a fresh process per tree, alternating with the ``--before``
tree when one is given; CPU seconds of the process (not wall) are divided by the rows, and the
least of the repeats is printed (on a loaded machine the least is the figure least disturbed).
Ledgers come from :mod:`audit_ledgers`. Run: ``.venv/bin/python benchmarks/bench_audit_rows.py
[--decisions N] [--backend sqlite|postgresql] [--repeat R] [--before SRC]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

STAGES = ("fetch", "scan", "scan + facts", "scan + facts + tally")
SINCE, UNTIL = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def _fetch(url: str) -> int:
    """Stream the scan's two queries as it does (two cursors in one read transaction)."""
    from affidavit.ledger import Ledger
    from affidavit.ledger.extract import (
        PG_IMAGE_ROWS,
        PG_ROWS,
        SEQ_MAX,
        SEQ_MIN,
        SQLITE_IMAGE_ROWS,
        SQLITE_ROWS,
        sqlite_text,
    )

    ledger = Ledger(url, read_only=True)
    postgres = ledger.is_postgres
    seqs = {"lo": SEQ_MIN, "hi": SEQ_MAX}
    if postgres:
        bounds: dict[str, Any] = {
            "since": SINCE.replace(tzinfo=None),
            "until": UNTIL.replace(tzinfo=None),
        }
    else:
        bounds = {"since": sqlite_text(SINCE), "until": sqlite_text(UNTIL)}
    n = 0
    with ledger.read_snapshot() as conn:
        dbapi: Any = conn.connection.dbapi_connection

        def rows(name: str, sql: str, params: dict[str, Any]) -> Any:
            cursor = dbapi.cursor(name=name) if postgres else dbapi.cursor()
            cursor.execute(sql, params)
            return chain.from_iterable(iter(lambda: cursor.fetchmany(5000), []))

        decisions = rows("d", PG_ROWS if postgres else SQLITE_ROWS, bounds | seqs)
        images = rows("i", PG_IMAGE_ROWS if postgres else SQLITE_IMAGE_ROWS, seqs)
        image = next(images, None)
        for row in decisions:
            while image is not None and image[0] <= row[0]:
                image = next(images, None)
            n += 1
    ledger.close()
    return n


def _scan(url: str, facts: bool, tally: bool) -> int:
    from affidavit.audit.tally import ScanFacts, Tally
    from affidavit.cycles import cycle_collection_paused
    from affidavit.ledger import Ledger
    from affidavit.ledger.scan import ChainScan

    ledger = Ledger(url, read_only=True)
    t = Tally()
    scan = ChainScan(ledger, (), SINCE, UNTIL, ScanFacts(t) if facts else None)
    n = 0
    with cycle_collection_paused():
        if tally:
            add = t.add
            for row in scan:
                add(row)
                n += 1
        else:
            for _ in scan:
                n += 1
    assert scan.report is not None and scan.report.first_broken_seq is None, scan.report
    ledger.close()
    return n


def _inner(url: str, stage: str) -> None:
    """Run one stage in this process and print its CPU seconds and rows as JSON (the imports
    are not counted)."""
    import affidavit.audit.tally
    import affidavit.cycles
    import affidavit.ledger.extract
    import affidavit.ledger.scan  # noqa: F401

    start = time.process_time()
    n = _fetch(url) if stage == "fetch" else _scan(url, "facts" in stage, "tally" in stage)
    print(json.dumps({"cpu": time.process_time() - start, "rows": n}))


def _measure(url: str, stage: str, src: str | None) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": src} if src else None
    out = subprocess.run(
        [sys.executable, __file__, "--inner", stage, "--url", url],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    got = json.loads(out.splitlines()[-1])
    return float(got["cpu"]), int(got["rows"])


def bench(url: str, label: str, n: int, repeat: int, before: str | None) -> None:
    trees: list[tuple[str, str | None]] = [("after", None)]
    if before:
        trees.insert(0, ("before", before))
    best: dict[tuple[str, str], float] = {}
    for _ in range(repeat):
        for stage in STAGES:
            for name, src in trees:
                cpu, rows = _measure(url, stage, src)
                per_row = cpu / max(rows, 1) * 1e6
                key = (stage, name)
                best[key] = min(best.get(key, per_row), per_row)
    for stage in STAGES:
        shown = "   ".join(f"{name} {best[(stage, name)]:5.1f} µs" for name, _ in trees)
        print(f"{label:<10} {n:>9,} {stage:<22} {shown}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} after the runs", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", metavar="SRC", help="an earlier source tree, interleaved")
    parser.add_argument("--inner", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        _inner(args.url, args.inner)
        return
    from audit_ledgers import CachedPostgres, sqlite_ledger

    backends = args.backend or ["sqlite"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    print("CPU per row, least of the repeats; each stage's cost is the step from the line above")
    if "sqlite" in backends:
        bench(sqlite_ledger(args.decisions), "sqlite", args.decisions, args.repeat, args.before)
    if "postgresql" in backends:
        pg = CachedPostgres()
        pg.start()
        try:
            url = pg.ledger(args.decisions)
            bench(url, "postgresql", args.decisions, args.repeat, args.before)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()

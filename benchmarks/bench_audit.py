"""Benchmark: ``affidavit audit report`` and ``audit pack`` over 100k and 1M decisions, on SQLite
and PostgreSQL, each beside a bare ``GROUP BY`` over the same table in the same run.

Why: an auditor asks for a year's (or a quarter's, in one region) governance figures and should
get them in seconds, from a report that verified the whole hash chain on the way. This runs the
real commands as an auditor would (a fresh ``affidavit`` process each, so interpreter start and
imports count) and reads each one's wall time and peak resident memory from the kernel
(``wait4``), next to the least any report could do:
``SELECT outcome, count(*) FROM decisions WHERE time in the period GROUP BY outcome``.

Ledgers come from :mod:`audit_ledgers` (real decisions, bulk-inserted valid chained rows, cached
under ``~/.cache/affidavit/bench/``). Run:
``.venv/bin/python benchmarks/bench_audit.py [--decisions N ...] [--backend sqlite|postgresql]``.
The machine's load average is printed: the figures are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from audit_ledgers import CachedPostgres, sqlite_ledger

AFFIDAVIT = str(Path(sys.executable).with_name("affidavit"))
YEAR = ("2026-01-01", "2027-01-01")
QUARTER = ("2026-10-01", "2027-01-01")


def _run(args: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one command, from the kernel's accounting."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        print(proc.stderr.read().decode(errors="replace"), file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, proc.returncode


def _baseline(url: str, since: str, until: str) -> float:
    engine = create_engine(url)
    bounds = {
        "s": datetime.fromisoformat(since).replace(tzinfo=None),
        "u": datetime.fromisoformat(until).replace(tzinfo=None),
    }
    sql = text(
        "SELECT outcome, count(*) FROM decisions WHERE time >= :s AND time < :u GROUP BY outcome"
    )
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        t0 = time.perf_counter()
        conn.execute(sql, bounds).all()
        took = time.perf_counter() - t0
    engine.dispose()
    return took


def bench(url: str, label: str, n: int, out: Path) -> None:
    env_epoch = {"SOURCE_DATE_EPOCH": str(int(datetime(2027, 1, 2, tzinfo=UTC).timestamp()))}
    os.environ.update(env_epoch)
    common = ["--ledger", url]
    cases = [
        ("report, the year, all regions (html)", YEAR, None, "report"),
        ("report, last quarter, eu-* (html)", QUARTER, "eu-*", "report"),
        ("pack, the year, all regions", YEAR, None, "pack"),
    ]
    for name, (since, until), region, command in cases:
        args = [AFFIDAVIT, "audit", command, *common, "--since", since, "--until", until]
        if region:
            args += ["--region", region]
        if command == "report":
            args += ["--format", "html", "-o", str(out / "report.html")]
        else:
            args += ["-o", str(out / "pack.zip")]
        wall, rss, code = _run(args)
        base = _baseline(url, since, until)
        status = "" if code == 0 else f"  EXIT {code}"
        print(
            f"{label:<10} {n:>9,} {name:<40} {wall:8.1f} s {rss:7.0f} MB   "
            f"GROUP BY {base:6.2f} s{status}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, action="append")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    sizes = args.decisions or [100_000, 1_000_000]
    backends = args.backend or ["sqlite", "postgresql"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    print(f"{'backend':<10} {'decisions':>9} {'command':<40} {'wall':>10} {'peak RSS':>10}")
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        out = Path(tmp)
        if "sqlite" in backends:
            for n in sizes:
                bench(sqlite_ledger(n), "sqlite", n, out)
        if "postgresql" in backends:
            pg = CachedPostgres()
            pg.start()
            try:
                for n in sizes:
                    bench(pg.ledger(n), "postgresql", n, out)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()

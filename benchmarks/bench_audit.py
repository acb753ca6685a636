"""Benchmark: ``affidavit audit report`` and ``audit pack`` over 100k and 1M decisions, on SQLite
and PostgreSQL, each beside a bare ``GROUP BY`` over the same table in the same run.

Why: an auditor asks for a year's (or a quarter's, in one region) governance figures and should
get them in seconds, from a report that verified the whole hash chain on the way. This runs the
real commands as an auditor would (a fresh ``affidavit`` process each, so interpreter start and
imports count) and reads each one's wall time, CPU time and peak resident memory from the
kernel (``wait4``), next to two baselines measured in the same run: the least any report could
ask (``SELECT outcome, count(*) FROM decisions WHERE time in the period GROUP BY outcome``) and
the least any *verifying* report must do (every row streamed once through the driver's cursor
and its stored text hashed with sha256: the ``sha256 pass``). On a loaded machine the ratio to
the sha256 pass is the figure to compare.

Ledgers come from :mod:`audit_ledgers` (real decisions, bulk-inserted valid chained rows, cached
under ``~/.cache/affidavit/bench/``). Run:
``.venv/bin/python benchmarks/bench_audit.py [--decisions N ...] [--backend sqlite|postgresql]
[--case report|report-eu|pack ...] [--before SRC]``; with ``--before`` each case also runs
on an earlier source tree, interleaved, and the outputs must be byte-identical.
The machine's load average is printed: the figures are only comparable on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from audit_ledgers import CachedPostgres, sqlite_ledger

AFFIDAVIT = str(Path(sys.executable).with_name("affidavit"))
YEAR = ("2026-01-01", "2027-01-01")
QUARTER = ("2026-10-01", "2027-01-01")


def _pss_kb(pid: int) -> int:
    """Proportional set size of ``pid`` and its children (shared pages counted once)."""
    total = 0
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        for p in [pid, *map(int, children)]:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        pass
    return total


def _watch(pid: int, peak: list[int], stop: threading.Event) -> None:
    while not stop.wait(0.25):
        peak[0] = max(peak[0], _pss_kb(pid))


def _run(args: list[str], src: str | None = None) -> tuple[float, float, float, int, float]:
    """(wall s, CPU s, peak RSS MB, exit code, peak PSS MB) of one command: time and RSS from
    the kernel's accounting (the report's worker process included), PSS summed over the command
    and its worker, sampled every 0.25 s; ``src``: run that source tree instead."""
    env = {**os.environ, "PYTHONPATH": src} if src else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak, stop = [0], threading.Event()
    watcher = threading.Thread(target=_watch, args=(proc.pid, peak, stop), daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    # Linux's wait4 reports the command's own time plus that of the children it reaped (the
    # report's worker process); peak RSS is the larger of the two processes', not their sum
    cpu = usage.ru_utime + usage.ru_stime
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        print(proc.stderr.read().decode(errors="replace"), file=sys.stderr)
    return wall, cpu, usage.ru_maxrss / 1024, proc.returncode, peak[0] / 1024


def _group_by(url: str, since: str, until: str) -> float:
    """Seconds for the least any report could ask: outcomes of the period, counted in SQL."""
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


def _sha_pass(url: str) -> tuple[float, float]:
    """Seconds for the least any verifying report must do: stream every row once through the
    driver's cursor and sha256 its stored text (no parse, no check, no counting); wall and CPU
    seconds of this process."""
    engine = create_engine(url)
    sql = "SELECT prev_hash, decision, hash FROM decisions ORDER BY seq"
    bad = 0
    with engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        postgres = engine.dialect.name == "postgresql"
        t0, c0 = time.perf_counter(), time.process_time()
        cursor = dbapi.cursor(name="bench_sha") if postgres else dbapi.cursor()
        cursor.execute(sql)
        sha256 = hashlib.sha256
        while batch := cursor.fetchmany(5000):
            for prev, decision, digest in batch:
                bad += sha256((prev + decision).encode()).hexdigest() != digest
        cursor.close()
        took = time.perf_counter() - t0, time.process_time() - c0
    engine.dispose()
    if bad:
        raise SystemExit(f"{url}: {bad} rows do not hash to their stored hash")
    return took


CASES = {
    "report": ("report, the year, all regions (html)", YEAR, None, "report"),
    "report-eu": ("report, last quarter, eu-* (html)", QUARTER, "eu-*", "report"),
    "pack": ("pack, the year, all regions", YEAR, None, "pack"),
}


def bench(url: str, label: str, n: int, out: Path, which: list[str], before: str | None) -> None:
    env_epoch = {"SOURCE_DATE_EPOCH": str(int(datetime(2027, 1, 2, tzinfo=UTC).timestamp()))}
    os.environ.update(env_epoch)
    common = ["--ledger", url]
    cases = [CASES[c] for c in which]
    sha, sha_cpu = _sha_pass(url)
    for name, (since, until), region, command in cases:
        runs: list[tuple[str, str | None]] = [("before", before)] if before else []
        written: dict[str, str] = {}
        for which_src, src in [*runs, ("", None)]:
            target = out / f"{which_src or 'after'}-{command}"
            args = [AFFIDAVIT, "audit", command, *common, "--since", since, "--until", until]
            if region:
                args += ["--region", region]
            if command == "report":
                args += ["--format", "html", "-o", str(target), "--force"]
            else:
                args += ["-o", str(target), "--force"]
            wall, cpu, rss, code, pss = _run(args, src)
            base = _group_by(url, since, until)
            status = "" if code == 0 else f"  EXIT {code}"
            if code == 0:
                written[which_src] = hashlib.sha256(target.read_bytes()).hexdigest()
            shown = f"{name} {which_src}".strip()
            print(
                f"{label:<10} {n:>9,} {shown:<45} {wall:7.1f} s {cpu:7.1f} s {rss:6.0f} MB"
                f" {pss:6.0f} MB"
                f"   GROUP BY {base:6.2f} s   sha256 pass {sha:6.1f} s ({sha_cpu:.1f} s CPU)"
                f"{status}",
                flush=True,
            )
        if before and len(written) == 2:
            same = written["before"] == written[""]
            print(f"{'':<10} {'':>9} output byte-identical before and after: {same}", flush=True)
            if not same:
                raise SystemExit(f"{name}: the output changed ({written})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, action="append")
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--case", action="append", choices=tuple(CASES))
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also run each case with this source tree (e.g. `git archive main src` unpacked),"
        " interleaved, and require byte-identical output",
    )
    args = parser.parse_args()
    which = args.case or list(CASES)
    sizes = args.decisions or [100_000, 1_000_000]
    backends = args.backend or ["sqlite", "postgresql"]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    print(
        f"{'backend':<10} {'decisions':>9} {'command':<38} {'wall':>9} {'CPU':>9} "
        f"{'peak RSS':>9} {'PSS sum':>9}   baselines in the same run"
    )
    with tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        out = Path(tmp)
        if "sqlite" in backends:
            for n in sizes:
                bench(sqlite_ledger(n), "sqlite", n, out, which, args.before)
        if "postgresql" in backends:
            pg = CachedPostgres()
            pg.start()
            try:
                for n in sizes:
                    bench(pg.ledger(n), "postgresql", n, out, which, args.before)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()

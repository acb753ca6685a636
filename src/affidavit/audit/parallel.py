"""The report's pass over a large ledger on two cores: seq ranges verified and counted apart.

Per decision the pass hashes, parses, checks and counts; a million of them keep one core busy
for most of a minute, of which little is waiting on the database. So above
:data:`PARALLEL_FROM` decisions the chain is split in two seq ranges: a forked worker process
scans and counts the upper range while this process does the lower one (half of the seqs for a
report; less for an evidence pack, see :data:`PACK_SHARE`), the worker sends back
its counters (a :class:`~affidavit.audit.tally.Tally` is bounded by the variety of decisions,
not their number) and where its range begins and ends, and
:func:`affidavit.ledger.ranges.join_spans` joins the ranges at the boundary hashes into the single
pass's verdict. The merge marks every figure of a range past the first fault as damaged, exactly
as the single pass would have. Anything unexpected in the worker (it died, the database refused
it) and the single pass runs instead: it decides, and names any error as before.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from typing import IO, Any, Protocol

from affidavit.audit.tally import SAMPLE, ScanFacts, Tally
from affidavit.cycles import cycle_collection_paused
from affidavit.errors import AffidavitError
from affidavit.ledger import ChainReport, Ledger
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.ranges import join_spans, recheck_row, seq_bounds
from affidavit.ledger.scan import ChainScan, ScanRow, Span

__all__ = [
    "PACK_SHARE",
    "PARALLEL_FROM",
    "SINGLE_PASS",
    "LineSink",
    "SplitFailed",
    "parallel_scan",
]

#: Decisions from which the pass is split over two processes (below, forking costs more).
PARALLEL_FROM = 50_000
#: The share of the seqs this process scans itself when it also writes an evidence pack: it then
#: compresses every row's line (the worker's too, after the worker is done) while the worker
#: only scans. Measured on a million decisions (CPU seconds of this process / of the worker):
#: 54.9 / 41.2 at an even split, 45.4 / 43.4 at this share; with the raw-value decode (idle
#: machine) 32.5 / 20.1 at an even split, 25.3 / 20.7 at this share (29.1 s), 26.2 / 31.7 at
#: 0.3 (45.6 s). A report splits evenly.
PACK_SHARE = 0.4
#: A ``parallel_from`` that always takes the single pass.
SINGLE_PASS = 2**62
_PROGRESS_EVERY = 4096


class LineSink(Protocol):
    """Where the evidence pack's rows go (:class:`affidavit.audit.stretch.Stretch`)."""

    def line(self, row: ScanRow, /) -> bytes: ...
    def add(self, row: ScanRow, /) -> None: ...
    def add_line(self, in_period: bool, line: bytes, /) -> None: ...


class SplitFailed(AffidavitError):
    """The worker of a split pass failed after rows went to a :class:`LineSink`: start again."""


def _worker(
    out: Connection,
    url: str,
    lo: int,
    scan_args: tuple[tuple[Checkpoint, ...], datetime | None, datetime | None],
    tally_args: tuple[Any, ...],
    done: Any,
    parent: Ledger,
    lines: tuple[Callable[[ScanRow], bytes], IO[bytes]] | None,
) -> None:
    """Scan and count seqs from ``lo`` on (in the forked process); send the outcome back. With
    ``lines``, every row's pack line goes to the spool and whether it is in the period to a
    list of flags sent back with the counters."""
    try:
        parent.after_fork()
        ledger = Ledger(url, read_only=True)
        t = Tally(*tally_args)
        checkpoints, since, until = scan_args
        scan = ChainScan(ledger, checkpoints, since, until, ScanFacts(t), lo=lo)
        add, n = t.add, 0
        flags = bytearray()
        if lines is None:
            with cycle_collection_paused():
                for row in scan:
                    add(row)
                    n += 1
                    if n % _PROGRESS_EVERY == 0:
                        done.value = n
        else:
            line, spool = lines
            write, flag = spool.write, flags.append
            with cycle_collection_paused():
                for row in scan:
                    add(row)
                    write(line(row))
                    flag(row[7])
                    n += 1
                    if n % _PROGRESS_EVERY == 0:
                        done.value = n
            spool.flush()
        done.value = n
        out.send(("ok", t.portable(), scan.span, scan.head, bytes(flags)))
    except BaseException as e:
        out.send(("failed", repr(e)))
    finally:
        out.close()


def _merge(into: Tally, part: Tally, damaged: bool) -> None:
    """Add ``part`` (a later range's counters) to ``into``; ``damaged``: all of it is."""
    remap = [into.index_of(kind) for kind in part.kinds]
    for (k, ns, outcome, bad), n in part.decisions.items():
        key = (remap[k], ns, outcome, bad or damaged)
        into.decisions[key] = into.decisions.get(key, 0) + n
    for (day, outcome, bad), n in part.days.items():
        key2 = (day, outcome, bad or damaged)
        into.days[key2] = into.days.get(key2, 0) + n
    into.workloads |= part.workloads
    into.clean_workloads |= part.clean_workloads
    for outcome, ids in part.samples.items():
        mine = into.samples.setdefault(outcome, [])
        mine.extend(ids[: max(0, SAMPLE - len(mine))])
    for exc, use in part.exception_uses.items():
        have = into.exception_uses.get(exc)
        if have is None:
            into.exception_uses[exc] = have = use
            have["damaged"] = use.get("damaged", False) or damaged
            continue
        have["uses"] += use["uses"]
        have["workloads"] |= use["workloads"]
        have["first"], have["last"] = (
            min(have["first"], use["first"]),
            max(have["last"], use["last"]),
        )
        have["damaged"] = have.get("damaged", False) or use.get("damaged", False) or damaged
        have["controls"] |= use["controls"]
        if "recorded" in use:  # the later decision's snapshot, as the single pass keeps
            have["recorded"] = use["recorded"]


def _all_damaged(t: Tally) -> None:
    t.decisions = type(t.decisions)(
        {(k, ns, o, True): n for (k, ns, o, _), n in t.decisions.items()}
    )
    days: dict[tuple[str, str, bool], int] = {}
    for (day, o, _), n in t.days.items():
        days[(day, o, True)] = days.get((day, o, True), 0) + n
    t.days = type(t.days)(days)
    for use in t.exception_uses.values():
        use["damaged"] = True


def _replay(spool: IO[bytes], flags: bytes, lines: LineSink) -> None:
    """Hand the worker's lines (one per row, each ending in a newline) to ``lines``: a run of
    rows all in the period as one text where ``lines`` takes that (``add_lines``)."""
    spool.seek(0)
    add_line, rest, i = lines.add_line, b"", 0
    add_lines = getattr(lines, "add_lines", None)
    for chunk in iter(lambda: spool.read(1 << 20), b""):
        data = rest + chunk
        end = data.rfind(b"\n") + 1
        body, rest = data[:end], data[end:]
        n = body.count(b"\n")
        if n and add_lines is not None and flags.count(1, i, i + n) == n:
            add_lines(body, n)
            i += n
            continue
        for part in body.split(b"\n")[:-1]:
            add_line(bool(flags[i]), part + b"\n")
            i += 1
    if rest or i != len(flags):
        raise SplitFailed(f"the split pass's worker wrote {i} lines for {len(flags)} rows")


def parallel_scan(
    ledger: Ledger,
    t: Tally,
    checkpoints: Sequence[Checkpoint],
    since: datetime | None,
    until: datetime | None,
    progress: Callable[[int, int | None], None] | None = None,
    parallel_from: int = PARALLEL_FROM,
    lines: LineSink | None = None,
) -> tuple[ChainReport, tuple[int, str], int] | None:
    """(verdict, head, rows failing the check) of the pass over two processes, counted into
    ``t`` (and every row handed to ``lines`` in seq order); None when the ledger is too small
    or the split cannot be used (then ``t`` and ``lines`` are untouched and the caller runs the
    single pass). Raises :class:`SplitFailed` when the worker failed after rows went to
    ``lines``."""
    if (os.cpu_count() or 1) < 2 or any(
        cp.size == 0
        for cp in checkpoints  # a genesis checkpoint: the single pass checks it
    ):
        return None
    bounds = seq_bounds(ledger)
    if bounds is None or bounds[1] - bounds[0] + 1 < parallel_from:
        return None
    share = 0.5 if lines is None else PACK_SHARE
    mid = bounds[0] + int((bounds[1] - bounds[0]) * share)
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:
        return None
    receive, send = ctx.Pipe(duplex=False)
    done = ctx.Value("q", 0, lock=False)
    tally_args = (t.region, t.ai_touched)
    scan_args = (tuple(checkpoints), since, until)
    spool = tempfile.TemporaryFile() if lines is not None else None  # noqa: SIM115
    worker = ctx.Process(
        target=_worker,
        args=(
            send,
            ledger.url_for_worker(),
            mid + 1,
            scan_args,
            tally_args,
            done,
            ledger,
            None if lines is None or spool is None else (lines.line, spool),
        ),
        daemon=True,
    )
    worker.start()
    send.close()
    mine = Tally(*tally_args)
    try:
        scan = ChainScan(ledger, tuple(checkpoints), since, until, ScanFacts(mine), hi=mid)
        add, n = mine.add, 0
        sink = lines.add if lines is not None else None
        with cycle_collection_paused():
            for row in scan:
                add(row)
                if sink is not None:
                    sink(row)
                n += 1
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(n + done.value, scan.head[0])
        try:
            answer = receive.recv()
        except EOFError:
            answer = ("failed", "the worker ended without an answer")
        if answer[0] != "ok" or scan.span is None or answer[2] is None:
            if lines is not None:
                raise SplitFailed(f"the split pass's worker failed: {answer[-1]}")
            return None
        if lines is not None and spool is not None:
            _replay(spool, answer[4], lines)
    finally:
        receive.close()
        worker.join(timeout=5)
        if worker.is_alive():
            worker.kill()
            worker.join()
        if spool is not None:
            spool.close()
    _, theirs, span, head, _flags = answer
    spans: list[Span] = [scan.span, span]
    joined = join_spans(spans, head, checkpoints, lambda s, e, p: recheck_row(ledger, s, e, p))
    if joined.damaged_from == 0:
        _all_damaged(mine)
    _merge(mine, theirs, joined.damaged_from is not None and joined.damaged_from <= 1)
    _merge(t, mine, False)
    if progress is not None:
        progress(n + done.value, head[0])
    return joined.report, head, joined.faults

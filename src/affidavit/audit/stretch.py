"""decisions.jsonl of the evidence pack: the period's stretch of ledger rows, as they stream.

The rows go straight into the zip (compressed and hashed in blocks of about a megabyte), so the
pack of a million decisions needs no more memory than that of a thousand. A split pass
(:mod:`affidavit.audit.parallel`) hands this writer the lower range's rows as they are scanned
and the upper range's lines (written by the worker with :meth:`Stretch.line`) afterwards, in
seq order: the file, its blocks and so its compressed bytes are those of the single pass.
"""

from __future__ import annotations

import hashlib
import tempfile
import zipfile
from typing import Any

import orjson

from affidavit.ledger.scan import ScanRow

__all__ = ["DECISIONS", "Stretch", "info", "stored_line"]

DECISIONS = "decisions.jsonl"

#: decisions.jsonl is compressed and hashed in blocks of about this many bytes, not per line.
_BLOCK = 1 << 20


def stored_line(row: ScanRow) -> bytes:
    """One ledger row as the pack stores it: exactly the stored values, sorted keys."""
    line = {  # in sorted key order: orjson keeps it, so no sort per row
        "decision": row[9],
        "hash": row[11],
        "id": row[1],
        "kind": row[5],
        "name": row[6],
        "namespace": row[4],
        "outcome": row[3],
        "prev_hash": row[10],
        "seq": row[0],
        "time": row[2],
    }
    # The bytes of json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # (tests/unit/audit/test_audit_pack_lines.py), in a fraction of the time.
    return orjson.dumps(line) + b"\n"


def info(name: str, stamp: tuple[int, int, int, int, int, int], level: int = 9) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = level  # type: ignore[attr-defined]  # zf.open(info, "w") reads it
    info.create_system = 3
    info.external_attr = 0o100644 << 16
    return info


class Stretch:
    """decisions.jsonl, written as the scan streams: from the period's first row to its last.

    Rows after a period row that are not in the period themselves wait in a spool until another
    period row comes (they belong to the unbroken stretch) and are dropped at the end.
    """

    def __init__(self, zf: zipfile.ZipFile, stamp: tuple[int, int, int, int, int, int]) -> None:
        self.out = zf.open(info(DECISIONS, stamp, level=1), "w", force_zip64=True)
        self.sha = hashlib.sha256()
        self.pending = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115
        self.count = self.pending_count = self.size = 0
        self.block: list[bytes] = []
        self.first: bytes | None = None  # the stretch's first and last lines
        self.last: bytes | None = None

    #: the line of a row (pure: a worker process of a split pass writes its rows' lines)
    line = staticmethod(stored_line)

    def add(self, row: ScanRow) -> None:
        if self.first is None and not row[7]:
            return
        self.add_line(row[7], stored_line(row))

    def add_line(self, in_period: bool, line: bytes) -> None:
        """The next row's line (``in_period``: whether the row is in the period)."""
        if self.first is None and not in_period:
            return
        if not in_period:
            self.pending.write(line)
            self.pending_count += 1
            return
        if self.pending_count:
            self.pending.seek(0)
            for block in iter(lambda: self.pending.read(1 << 20), b""):
                self._write(block)
            self.pending.seek(0)
            self.pending.truncate()
            self.count += self.pending_count
            self.pending_count = 0
        self.block.append(line)
        self.size += len(line)
        if self.size >= _BLOCK:
            self._write(b"")
        self.count += 1
        self.first = self.first or line
        self.last = line

    def add_lines(self, lines: bytes, count: int) -> None:
        """The next ``count`` rows' lines, every row in the period, as one text (each line
        ends in a newline): what ``add_line`` does for each, the run written at once."""
        first = lines.index(b"\n") + 1
        self.add_line(True, lines[:first])
        run = lines[first:]
        if run:
            self.block.append(run)
            self.size += len(run)
            if self.size >= _BLOCK:
                self._write(b"")
            self.count += count - 1
            self.last = run[run.rfind(b"\n", 0, len(run) - 1) + 1 :]

    def ends(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The stretch's first and last rows (seq, prev_hash, hash ...), None when empty."""
        first = orjson.loads(self.first) if self.first else None
        return first, orjson.loads(self.last) if self.last else None

    def _write(self, data: bytes) -> None:
        """Write the lines gathered so far, then ``data``."""
        if self.block:
            self.block.append(data)
            data = b"".join(self.block)
            self.block.clear()
            self.size = 0
        self.out.write(data)
        self.sha.update(data)

    def abandon(self) -> None:
        """Close the entry without its remaining lines (the pack is being given up): the zip
        can then be closed without hiding the error that ended the pack."""
        self.block.clear()
        self.out.close()

    def close(self) -> str:
        self._write(b"")
        self.out.close()
        self.pending.close()
        return self.sha.hexdigest()

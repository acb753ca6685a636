"""A run of the worker's lines handed over as one text gives the pack the same bytes.

The split pass's worker writes its rows' lines to a spool; the evidence pack's process hands
them on after its own. A run of rows all in the period goes over as one text (``add_lines``)
instead of line by line: decisions.jsonl, its compressed bytes in the zip, its sha256, the row
count and the first and last rows must be those of the line-by-line path, with rows outside the
period before the run (kept back until a period row comes) and runs crossing the megabyte
blocks in which the file is compressed.
"""

from __future__ import annotations

import io
import zipfile

from affidavit.audit.stretch import Stretch

STAMP = (2026, 4, 1, 0, 0, 0)


def _lines() -> list[tuple[bool, bytes]]:
    out = []
    for n in range(40_000):  # about 4 MB: several blocks
        in_period = not (n < 5 or 1000 <= n < 1003 or n >= 39_990)
        out.append((in_period, b'{"seq":%d,"x":"%s"}\n' % (n, b"y" * (n % 97 + 50))))
    return out


def _pack(feed: str) -> tuple[bytes, str, int, object]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        stretch = Stretch(zf, STAMP)
        lines = _lines()
        if feed == "lines":
            for in_period, line in lines:
                stretch.add_line(in_period, line)
        else:  # runs of period rows as one text, as the replay of a worker's spool hands them
            i = 0
            while i < len(lines):
                j = i
                while j < len(lines) and lines[j][0] and j - i < 7_777:
                    j += 1
                if j > i:
                    stretch.add_lines(b"".join(line for _, line in lines[i:j]), j - i)
                    i = j
                else:
                    stretch.add_line(*lines[i])
                    i += 1
        digest = stretch.close()
        count, ends = stretch.count, stretch.ends()
    return buffer.getvalue(), digest, count, ends


def test_runs_give_the_bytes_of_line_by_line() -> None:
    by_line, by_run = _pack("lines"), _pack("runs")
    assert by_run == by_line
    assert by_line[2] == 40_000 - 5 - 10  # from the first period row to the last

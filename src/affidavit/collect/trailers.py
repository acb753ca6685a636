"""Find the trailers of a commit message exactly where git finds them.

AI tools mark commits with trailers (``Co-authored-by:``, ``Assisted-by:``, ``AI-Assisted:``).
A line that merely looks like a trailer in the middle of a message is not one, and counting it
would invent evidence, so this follows git's own rule (trailer.c, as used by
``git interpret-trailers --parse`` and ``%(trailers:unfold,only)``): only the last paragraph of the
message, never the title paragraph; the paragraph counts when all its lines are trailers (or
continuation lines), or when it holds a git-generated trailer (``Signed-off-by: ``,
``(cherry picked from commit ``) and at least a quarter of its lines are trailers. Continuation
lines (leading whitespace) are unfolded into the value. Like ``%(trailers)`` for commit messages,
a ``---`` line is not treated as the start of a patch. Keys compare case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GIT_GENERATED = ("Signed-off-by: ", "(cherry picked from commit ")
_COMMENT = "#"


@dataclass(frozen=True, slots=True)
class Trailer:
    """One trailer: the key as written, and the unfolded, trimmed value."""

    key: str
    value: str

    @property
    def lower_key(self) -> str:
        return self.key.lower()

    def __str__(self) -> str:
        return f"{self.key}: {self.value}"


_SEPARATOR = re.compile(r"[A-Za-z0-9-]+[ \t]*:")


def _separator_pos(line: str) -> int:
    """Index of the ``:`` after a token of ASCII alphanumerics and '-' (spaces allowed before it)."""
    m = _SEPARATOR.match(line)
    return m.end() - 1 if m else -1


def _is_blank(line: str) -> bool:
    return not line.strip()


def _block_start(lines: list[str]) -> int:
    """Index of the first line of the trailer block, or len(lines) when there is none."""
    end_of_title = len(lines)
    for i, line in enumerate(lines):
        if line.startswith(_COMMENT):
            continue
        if _is_blank(line):
            end_of_title = i
            break
    only_spaces = True
    recognized_prefix = False
    trailer_lines = non_trailer_lines = possible_continuation = 0
    for i in range(len(lines) - 1, end_of_title - 1, -1):
        line = lines[i]
        if line.startswith(_COMMENT):
            non_trailer_lines += possible_continuation
            possible_continuation = 0
            continue
        if _is_blank(line):
            if only_spaces:
                continue
            non_trailer_lines += possible_continuation
            if recognized_prefix and trailer_lines * 3 >= non_trailer_lines:
                return i + 1
            if trailer_lines and not non_trailer_lines:
                return i + 1
            return len(lines)
        only_spaces = False
        if line.startswith(_GIT_GENERATED):
            trailer_lines += 1
            possible_continuation = 0
            recognized_prefix = True
            continue
        if _separator_pos(line) >= 1 and not line[0].isspace():
            trailer_lines += 1
            possible_continuation = 0
        elif line[0].isspace():
            possible_continuation += 1
        else:
            non_trailer_lines += 1 + possible_continuation
            possible_continuation = 0
    return len(lines)


def parse_trailers(message: str) -> tuple[Trailer, ...]:
    """The trailers of ``message`` in order, as ``git interpret-trailers --parse`` lists them."""
    if ":" not in message:
        return ()
    lines = message.split("\n")
    start = _block_start(lines)
    result: list[list[str]] = []
    for line in lines[start:]:
        if line.startswith(_COMMENT) or _is_blank(line):
            continue
        if line[0].isspace():
            if result:
                result[-1][1] += " " + line.strip()
            continue
        if line.startswith(_GIT_GENERATED[1]):
            continue  # no key: not a key/value trailer
        pos = _separator_pos(line)
        if pos < 1:
            continue
        result.append([line[:pos].strip(), line[pos + 1 :].strip()])
    return tuple(Trailer(k, v) for k, v in result)


def subject(message: str) -> str:
    """The first line of a message."""
    return message.split("\n", 1)[0]

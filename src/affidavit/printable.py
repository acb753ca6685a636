"""Text from a signed predicate or a repository made safe to show on a terminal.

A denial quotes what it found: file paths, tool and model names, reviewer logins, revisions.
Whoever commits chooses those (a file may be named with an escape sequence, a git author name
may hold a newline), and kubectl, ``affidavit explain`` and the operator's Events print them to a
person's terminal, where an ANSI sequence can erase the line above, a carriage return can
overwrite "denied", a newline can forge a line ("fix: curl … | sh") and a bidirectional
override can show text in another order than it is stored (Trojan Source). So every character
Python does not call printable (controls, format characters such as the bidi overrides, line
and paragraph separators, every space but the ASCII one) is shown as its Python escape
(``\\n``, ``\\x1b``, ``\\u202e``): nothing is hidden and nothing is dropped, and a backslash stays a
backslash, so escaping twice changes nothing more.
"""

from __future__ import annotations

__all__ = ["printable", "printable_lines"]


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every character that is not printable shown as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_lines(text: str) -> str:
    """``text`` printable line by line: its own line breaks kept, none within a line added."""
    return "\n".join(map(printable, text.split("\n")))

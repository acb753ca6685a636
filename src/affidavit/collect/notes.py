"""Read git-ai authorship notes (``refs/notes/ai``, authorship/3.0.0) for a set of commits.

git-ai records, per commit, which line ranges of which files came from an AI session and which
from a human: the most precise evidence there is, down to ``aiLines`` per file. A note is
attestation lines (a file path, then indented ``<key> <ranges>`` lines), a ``---`` line, and a
JSON object whose ``sessions`` (keys ``s_<hex>``, the part before ``::``), ``humans`` (``h_<hex>``)
and legacy ``prompts`` (16-hex keys) say who each key is.

All notes come from two git processes however large the range: ``git notes list`` for the
(note blob, commit) pairs, then ONE ``git cat-file --batch`` for the blobs of commits in range.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.collect.git import run_git

NOTES_REF = "refs/notes/ai"
_RANGE = re.compile(r"^\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*$")


@dataclass(frozen=True, slots=True)
class NoteTool:
    tool: str
    model: str | None


@dataclass(frozen=True, slots=True)
class AuthorshipNote:
    """What one git-ai note says about one commit."""

    ai_lines: dict[str, int]  # path -> lines attributed to AI sessions
    human_lines: dict[str, int]  # path -> lines attributed to humans
    tools: tuple[NoteTool, ...]
    schema_version: str | None

    @property
    def total_ai_lines(self) -> int:
        return sum(self.ai_lines.values())


def count_ranges(spec: str) -> int:
    """Number of lines in a range list like ``1-10,15-20,42``."""
    total = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        total += (int(hi) - int(lo) + 1) if hi else 1
    return total


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _agent(record: Any) -> NoteTool | None:
    if not isinstance(record, dict):
        return None
    agent = record.get("agent_id")
    if not isinstance(agent, dict) or not isinstance(agent.get("tool"), str):
        return None
    model = agent.get("model")
    return NoteTool(agent["tool"], model if isinstance(model, str) and model else None)


def parse_note(text: str) -> AuthorshipNote | None:
    """Parse one note; None when it is not a git-ai authorship note."""
    head, sep, tail = text.partition("\n---\n")
    if not sep:
        if text.startswith("---\n"):
            head, tail = "", text[4:]
        else:
            return None
    try:
        meta = json.loads(tail)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    if not isinstance(meta, dict):
        return None
    sessions = _dict(meta.get("sessions"))
    prompts = _dict(meta.get("prompts"))
    humans = _dict(meta.get("humans"))
    ai: dict[str, int] = {}
    human: dict[str, int] = {}
    tools: dict[NoteTool, None] = {}
    path: str | None = None
    for line in head.split("\n"):
        if not line.strip():
            continue
        if not line[0].isspace():
            path = line.strip()
            continue
        if path is None:
            continue
        parts = line.split()
        if len(parts) != 2 or not _RANGE.match(parts[1]):
            continue  # a range with no key: untracked lines, neither AI nor human
        key, lines = parts[0], count_ranges(parts[1])
        session = key.split("::", 1)[0]
        if key.startswith("h_") or session in humans:
            human[path] = human.get(path, 0) + lines
            continue
        record = sessions.get(session) if session in sessions else prompts.get(key)
        if record is None:
            continue  # a key the metadata does not explain proves nothing
        ai[path] = ai.get(path, 0) + lines
        agent = _agent(record)
        if agent is not None:
            tools[agent] = None
    version = meta.get("schema_version")
    return AuthorshipNote(
        ai_lines=ai,
        human_lines=human,
        tools=tuple(tools),
        schema_version=version if isinstance(version, str) else None,
    )


def list_notes(repo: Path) -> dict[str, str]:
    """Every commit (full sha) that has a git-ai note, with its note's blob: one ``git notes
    list``, read before the range so the collector knows which commits wait for their note."""
    listing = run_git(repo, "notes", "--ref", NOTES_REF, "list", check=False)
    noted: dict[str, str] = {}
    for line in listing.decode("ascii", "replace").splitlines():
        blob, _, commit = line.partition(" ")
        if commit:
            noted[commit] = blob
    return noted


def read_notes(repo: Path, noted: dict[str, str], commits: set[str]) -> dict[str, AuthorshipNote]:
    """The git-ai notes of ``commits`` (full shas), keyed by commit; ``noted`` is ``list_notes``."""
    wanted: dict[str, list[str]] = {}  # two commits can carry the same note, one blob
    for commit, blob in noted.items():
        if commit in commits:
            wanted.setdefault(blob, []).append(commit)
    if not wanted:
        return {}
    batch = run_git(repo, "cat-file", "--batch", stdin="".join(b + "\n" for b in wanted).encode())
    result: dict[str, AuthorshipNote] = {}
    pos = 0
    while pos < len(batch):
        eol = batch.index(b"\n", pos)
        fields = batch[pos:eol].split()
        pos = eol + 1
        if len(fields) < 3:
            continue  # "<sha> missing"
        size = int(fields[2])
        body = batch[pos : pos + size].decode("utf-8", "replace")
        pos += size + 1
        note = parse_note(body)
        if note is not None:
            for commit in wanted.get(fields[0].decode(), ()):
                result[commit] = note
    return result

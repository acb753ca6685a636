"""Read Agent Trace records (``.agent-trace/traces.jsonl``) and attach them to commits.

Agent Trace (v0.1.0) is the vendor-neutral record an agent writes of which line ranges of which
files it produced, in which conversation, with which model. The file is read at the head revision
(the state the image was built from) with ONE ``git cat-file``; each record names the commit it
belongs to in ``vcs.revision`` (a full sha or an unambiguous prefix of at least 7 characters).
Records without a revision cannot be tied to a change and are ignored; a line that is not a JSON
object is an error, because silently skipping evidence would under-report AI involvement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affidavit.collect.git import read_blob
from affidavit.errors import CollectError

TRACE_PATH = ".agent-trace/traces.jsonl"
_AI_TYPES = ("ai", "mixed")


@dataclass(frozen=True, slots=True)
class TraceTool:
    name: str | None
    version: str | None
    model: str | None


@dataclass(frozen=True, slots=True)
class CommitTrace:
    """What the Agent Trace records of one commit say."""

    record_ids: tuple[str, ...]
    contributor_types: frozenset[str]
    ai_lines: dict[str, int]
    tools: tuple[TraceTool, ...]

    @property
    def ai_involved(self) -> bool:
        return bool(self.contributor_types & set(_AI_TYPES))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _type(contributor: Any) -> tuple[str | None, str | None]:
    if not isinstance(contributor, dict):
        return None, None
    return _str(contributor.get("type")), _str(contributor.get("model_id"))


@dataclass
class _Acc:
    ids: list[str]
    types: set[str]
    ai_lines: dict[str, int]
    tools: dict[TraceTool, None]


def _add_record(acc: _Acc, record: dict[str, Any]) -> None:
    acc.ids.append(_str(record.get("id")) or "(no id)")
    tool = _dict(record.get("tool"))
    files = _list(record.get("files"))
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str):
            continue
        path = f["path"]
        convs = _list(f.get("conversations"))
        for conv in convs:
            if not isinstance(conv, dict):
                continue
            conv_type, conv_model = _type(conv.get("contributor"))
            ranges = _list(conv.get("ranges"))
            for r in ranges:
                if not isinstance(r, dict):
                    continue
                r_type, r_model = _type(r.get("contributor"))
                kind = r_type or conv_type or "unknown"
                acc.types.add(kind)
                start, end = r.get("start_line"), r.get("end_line")
                if kind in _AI_TYPES:
                    if isinstance(start, int) and isinstance(end, int) and end >= start:
                        acc.ai_lines[path] = acc.ai_lines.get(path, 0) + end - start + 1
                    model = r_model or conv_model
                    acc.tools[
                        TraceTool(_str(tool.get("name")), _str(tool.get("version")), model)
                    ] = None
            if not ranges and conv_type:
                acc.types.add(conv_type)
                if conv_type in _AI_TYPES:
                    acc.tools[
                        TraceTool(_str(tool.get("name")), _str(tool.get("version")), conv_model)
                    ] = None


def trace_records(text: str) -> list[tuple[str, dict[str, Any]]]:
    """The records of a traces.jsonl text that name a revision, as (lowercased revision, record).

    Parsed once, before the range is read, so that the collector knows which commits a record
    may name (``revision_keys``) while git still streams the rest.
    """
    records: list[tuple[str, dict[str, Any]]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as e:  # RecursionError: nested too deeply
            raise CollectError(
                f"{TRACE_PATH} line {lineno} is not valid JSON: {e}",
                hint="repair or remove the malformed Agent Trace record and commit the file",
            ) from e
        if not isinstance(record, dict):
            raise CollectError(
                f"{TRACE_PATH} line {lineno} is not a JSON object",
                hint="each line of traces.jsonl must be one Agent Trace record",
            )
        vcs = _dict(record.get("vcs"))
        rev = _str(vcs.get("revision"))
        if rev is None or len(rev) < 7:
            continue
        records.append((rev.lower(), record))
    return records


def revision_keys(records: list[tuple[str, dict[str, Any]]]) -> frozenset[str]:
    """The first 7 characters of every revision the records name: a commit whose sha does not
    start with one of them is named by no record (a superset test, exact in the other direction).
    """
    return frozenset(rev[:7] for rev, _ in records)


def group_traces(
    records: list[tuple[str, dict[str, Any]]], commits: set[str]
) -> dict[str, CommitTrace]:
    """Group the records by the commit (full sha) of ``commits`` they name; an ambiguous or
    unknown revision names none."""
    by_prefix: dict[str, str] = {}
    accs: dict[str, _Acc] = {}
    for rev, record in records:
        commit = rev if rev in commits else by_prefix.get(rev)
        if commit is None:
            matches = [c for c in commits if c.startswith(rev)]
            if len(matches) != 1:
                continue
            commit = by_prefix[rev] = matches[0]
        acc = accs.setdefault(commit, _Acc([], set(), {}, {}))
        _add_record(acc, record)
    return {
        c: CommitTrace(tuple(a.ids), frozenset(a.types), a.ai_lines, tuple(a.tools))
        for c, a in accs.items()
    }


def read_trace_records(repo: Path, head: str) -> list[tuple[str, dict[str, Any]]]:
    """The Agent Trace records at ``head`` that name a revision; empty when the file does not
    exist."""
    blob = read_blob(repo, head, TRACE_PATH)
    if blob is None:
        return []
    return trace_records(blob.decode("utf-8", "replace"))

"""Line-level evidence: git-ai notes in refs/notes/ai and Agent Trace records at the head revision.

The notes are added with ``git notes --ref ai add`` and the traces committed as
``.agent-trace/traces.jsonl``, as the tools do; the test asserts the classification, the evidence
text, per-file ``aiLines`` and the summary's AI line share, and the exact error for a corrupt
trace file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from collect_gitrepo import Repo

from affidavit.collect import collect_provenance
from affidavit.errors import CollectError

AI_NOTE = """src/main.py
  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-10,15-20
  h_31dce776f88375 11-14
src/util.py
  s_c9883b05a2487d::t_9f8e7d6c5b4a32 3
---
{"schema_version":"authorship/3.0.0","git_ai_version":"1.4.5","base_commit_sha":"0",
 "prompts":{},"humans":{"h_31dce776f88375":{"author":"Alice Human <alice@example.com>"}},
 "sessions":{"s_c9883b05a2487d":{"agent_id":{"tool":"cursor","id":"conv-1","model":"gpt-5"},
 "human_author":"Alice Human <alice@example.com>"}}}
"""

HUMAN_NOTE = """docs/guide.txt
  h_31dce776f88375 1-4
---
{"schema_version":"authorship/3.0.0","humans":{"h_31dce776f88375":{"author":"Alice"}},"sessions":{}}
"""

LEGACY_NOTE = """lib/a.py
  0123456789abcdef 1-2
---
{"schema_version":"authorship/3.0.0","prompts":{"0123456789abcdef":{"agent_id":{"tool":"claude","model":"claude-sonnet-4"}}}}
"""


def _lines(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(n))


def _trace(revision: str, path: str, kind: str, start: int, end: int) -> str:
    return json.dumps(
        {
            "version": "0.1.0",
            "id": f"rec-{kind}-{revision[:7]}",
            "timestamp": "2026-01-01T00:00:00Z",
            "vcs": {"type": "git", "revision": revision[:12]},
            "tool": {"name": "claude-code", "version": "2.1.0"},
            "files": [
                {
                    "path": path,
                    "conversations": [
                        {
                            "url": "https://example.com/c/1",
                            "contributor": {"type": kind, "model_id": "anthropic/claude-opus-4-6"},
                            "ranges": [{"start_line": start, "end_line": end}],
                        }
                    ],
                }
            ],
        }
    )


@pytest.fixture
def repo_with_notes(make_repo: Callable[[str], Repo]) -> tuple[Repo, str, list[dict[str, Any]]]:
    repo = make_repo("notes")
    base = repo.commit("initial", {"README.md": "hi\n"})
    ai = repo.commit("feature", {"src/main.py": _lines(20), "src/util.py": _lines(5)})
    human = repo.commit("guide", {"docs/guide.txt": _lines(4)})
    legacy = repo.commit("legacy", {"lib/a.py": _lines(2)})
    for sha, note in ((ai, AI_NOTE), (human, HUMAN_NOTE), (legacy, LEGACY_NOTE)):
        repo.git("notes", "--ref", "ai", "add", "-F", "-", sha, stdin=note.encode())
    changes = collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    return repo, base, changes


def test_git_ai_note_gives_ai_lines_per_file(
    repo_with_notes: tuple[Repo, str, list[dict[str, Any]]],
) -> None:
    _repo, _base, changes = repo_with_notes
    ai = changes[0]
    assert ai["aiInvolvement"] == "assisted"
    assert ai["evidence"] == [
        {"kind": "git-ai-note", "detail": "refs/notes/ai: 17 AI lines in 2 files (cursor)"}
    ]
    assert ai["tools"] == [{"name": "Cursor", "model": "gpt-5"}]
    assert [(f["path"], f["linesAdded"], f["aiLines"]) for f in ai["files"]] == [
        ("src/main.py", 20, 16),
        ("src/util.py", 5, 1),
    ]


def test_human_only_note_declares_human_and_legacy_prompts_count(
    repo_with_notes: tuple[Repo, str, list[dict[str, Any]]],
) -> None:
    _repo, _base, changes = repo_with_notes
    human, legacy = changes[1], changes[2]
    assert human["aiInvolvement"] == "none"
    assert human["evidence"] == [
        {"kind": "git-ai-note", "detail": "refs/notes/ai: 4 human lines, no AI lines"}
    ]
    assert human["files"][0]["aiLines"] == 0
    assert legacy["aiInvolvement"] == "assisted"
    assert legacy["tools"] == [{"name": "Claude Code", "model": "claude-sonnet-4"}]
    assert legacy["files"][0]["aiLines"] == 2


def test_line_share_over_files_with_known_counts(
    repo_with_notes: tuple[Repo, str, list[dict[str, Any]]],
) -> None:
    repo, base, _changes = repo_with_notes
    summary = collect_provenance(repo.path, base, "HEAD").to_wire()["summary"]
    # AI lines 16 + 1 + 2 over lines added 20 + 5 + 4 + 2
    assert summary["aiLineShare"] == round(19 / 31, 4)
    assert summary["tools"] == ["Claude Code", "Cursor"]


def test_two_commits_with_the_same_note_text_both_get_it(make_repo: Callable[[str], Repo]) -> None:
    """Identical note texts are one blob in git; each commit that carries it gets its evidence."""
    repo = make_repo("same-note")
    base = repo.commit("initial", {"README.md": "hi\n"})
    first = repo.commit("first", {"src/main.py": _lines(20), "src/util.py": _lines(5)})
    second = repo.commit("second", {"src/main.py": _lines(21), "src/util.py": _lines(6)})
    for sha in (first, second):
        repo.git("notes", "--ref", "ai", "add", "-F", "-", sha, stdin=AI_NOTE.encode())
    changes = collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    assert [c["commit"] for c in changes] == [first, second]
    for change in changes:
        assert change["aiInvolvement"] == "assisted"
        assert change["evidence"] == [
            {"kind": "git-ai-note", "detail": "refs/notes/ai: 17 AI lines in 2 files (cursor)"}
        ]


def test_agent_trace_records_map_to_commits(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("trace")
    base = repo.commit("initial", {"README.md": "hi\n"})
    ai = repo.commit("login flow", {"src/auth/login.py": _lines(30)})
    human = repo.commit("notes", {"docs/notes.txt": _lines(3)})
    mixed = repo.commit("helper", {"src/helper.py": _lines(10)})
    records = [
        _trace(ai, "src/auth/login.py", "ai", 1, 25),
        _trace(human, "docs/notes.txt", "human", 1, 3),
        _trace(mixed, "src/helper.py", "mixed", 2, 5),
        json.dumps({"version": "0.1.0", "id": "no-vcs", "files": []}),
    ]
    repo.commit("traces", {".agent-trace/traces.jsonl": "\n".join(records) + "\n"})
    changes = collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    first, second, third, traces_commit = changes
    assert first["aiInvolvement"] == "assisted"
    assert first["evidence"] == [
        {
            "kind": "agent-trace",
            "detail": f".agent-trace/traces.jsonl record rec-ai-{ai[:7]}: contributor ai",
        }
    ]
    assert first["tools"] == [
        {"name": "Claude Code", "model": "anthropic/claude-opus-4-6", "version": "2.1.0"}
    ]
    assert first["files"] == [
        {
            "path": "src/auth/login.py",
            "tier": "critical",
            "linesAdded": 30,
            "linesDeleted": 0,
            "aiLines": 25,
            "binary": False,
        }
    ]
    assert first["acceptedBy"] == {"name": "Alice Human", "email": "alice@example.com"}
    assert second["aiInvolvement"] == "none"
    assert second["evidence"][0]["detail"] == (
        f".agent-trace/traces.jsonl record rec-human-{human[:7]}: contributor human"
    )
    assert third["aiInvolvement"] == "assisted"
    assert third["files"][0]["aiLines"] == 4
    assert traces_commit["aiInvolvement"] == "unknown"


def test_corrupt_trace_file_is_an_error(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("badtrace")
    base = repo.commit("initial", {"README.md": "hi\n"})
    repo.commit("traces", {".agent-trace/traces.jsonl": '{"version": "0.1.0"}\n{not json\n'})
    with pytest.raises(CollectError) as err:
        collect_provenance(repo.path, base, "HEAD")
    assert str(err.value) == (
        ".agent-trace/traces.jsonl line 2 is not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)\n"
        "  hint: repair or remove the malformed Agent Trace record and commit the file"
    )


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_trace_record_nested_too_deeply_is_an_error_not_a_crash(
    make_repo: Callable[[str], Repo],
) -> None:
    """json recurses once per level: a deeply nested line ended collect in RecursionError."""
    repo = make_repo("deeptrace")
    base = repo.commit("initial", {"README.md": "hi\n"})
    repo.commit("traces", {".agent-trace/traces.jsonl": '{"version": "0.1.0"}\n' + DEEP + "\n"})
    with pytest.raises(CollectError) as err:
        collect_provenance(repo.path, base, "HEAD")
    assert str(err.value).startswith(
        ".agent-trace/traces.jsonl line 2 is not valid JSON: maximum recursion depth exceeded"
    )


def test_a_note_nested_too_deeply_is_not_a_note(make_repo: Callable[[str], Repo]) -> None:
    """Like any note whose metadata is not JSON, it is ignored (the commit stays undeclared)."""
    repo = make_repo("deepnote")
    base = repo.commit("initial", {"README.md": "hi\n"})
    sha = repo.commit("work", {"src/a.py": "a = 1\n"})
    note = "src/a.py\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1\n---\n" + DEEP
    repo.git("notes", "--ref", "ai", "add", "-F", "-", sha, stdin=note.encode())
    changes = collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    assert [(c["aiInvolvement"], c["evidence"]) for c in changes] == [("unknown", [])]


def test_the_github_actions_step_fetches_the_notes_a_clone_leaves_behind(
    make_repo: Callable[[str], Repo], tmp_path: Path
) -> None:
    """actions/checkout fetches no refs/notes: the action's collect step fetches git-ai's, so a
    commit known only by its note is not ``unknown`` in CI. Run as the runner runs it, in a
    real clone of a repository whose notes live only on its origin."""
    import os
    import subprocess
    import sys

    import yaml

    origin = make_repo("origin")
    base = origin.commit("init", {"README.md": "x\n"})
    sha = origin.commit("add main", {"src/main.py": _lines(20), "src/util.py": _lines(3)})
    origin.git("notes", "--ref", "ai", "add", "-F", "-", sha, stdin=AI_NOTE.encode())
    clone = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(origin.path), str(clone)], check=True)
    root = Path(__file__).resolve().parents[3]
    action = yaml.safe_load((root / "attestations/templates/github/action.yml").read_text())
    (step,) = [s for s in action["runs"]["steps"] if s["name"] == "Collect ai-provenance/v1"]
    out = tmp_path / "out"
    out.mkdir()
    env = {
        "BASE": base, "PUSH_BEFORE": "", "TOOLS": "", "HEAD_SHA": sha, "OUT": str(out),
        "PSEUDONYM_KEY": "",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }  # fmt: skip
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", step["run"]], cwd=clone,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (change,) = json.loads((out / "provenance.json").read_text())["changes"]
    assert change["aiInvolvement"] == "assisted"
    assert change["evidence"] == [
        {"kind": "git-ai-note", "detail": "refs/notes/ai: 17 AI lines in 2 files (cursor)"}
    ]

"""The predicate JSON of a varied, generated history is byte-identical to a recorded golden file.

Why: the collector's hot path builds the predicate without per-object validation for speed; the
signed bytes must not change because of that. The golden file was written by the collector as it
was before those optimisations (``AFFIDAVIT_WRITE_GOLDEN=1`` rewrites it). The history is
generated with ``git fast-import`` at fixed dates, so its shas are the same on every machine:
human and bot authors, tool-suffixed names, tool subject prefixes, every trailer convention,
``AI-Assisted: no``, renames (including of the tier map), binary files, merges of side branches,
legacy-encoded bytes, git-ai notes and Agent Trace records.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from collect_gitrepo import Repo

from affidavit.attestations.predicates.provenance import AiProvenance
from affidavit.collect import collect_provenance

GOLDEN = Path(__file__).parent / "golden" / "provenance-varied.json"
TRAILERS = (
    "",
    "\n\nCo-Authored-By: Claude Opus 4.6 <noreply@anthropic.com>",
    "\n\nCo-authored-by: aider (gpt-4o) <aider@aider.chat>",
    "\n\nAssisted-by: Claude:claude-3-opus sparse\nSigned-off-by: Dev <dev@example.com>",
    "\n\nAssisted-by: some free text helper",
    "\n\nAI-Assisted: no",
    "\n\nAI-Assisted: yes",
    "\n\nAI-Assisted: maybe",
    "\n\nMade-with: Cursor",
    "\n\nGenerated-by: GitHub Copilot",
    "\n\nClaude-Session: https://claude.ai/code/session_01",
    "\n\nSigned-off-by: Dev <dev@example.com>",
    "\n\nbody line\nCo-authored-by: Claude <noreply@anthropic.com>\n  continued",
    "\n\nCo-authored-by: Bob <bob@example.com>\nCo-authored-by: Copilot <copilot@github.com>",
    "\n\nAI-Assisted: no\nCo-authored-by: Claude <noreply@anthropic.com>",
)
AUTHORS = (
    b"Dev <dev@example.com>",
    b"Dev <dev@example.com>",
    b"copilot-swe-agent[bot] <198982749+Copilot@users.noreply.github.com>",
    b"Alice (aider) <alice@example.com>",
    b"Caf\xc3\xa9 D\xc3\xa9v <cafe@example.com>",
)
COMMITTERS = (b"Dev <dev@example.com>", b"GitHub <noreply@github.com>", b"Maya <maya@example.com>")
SUBJECTS = ("change {n}", "aider: change {n}", "fix {n}")
PATHS = (
    "src/auth/login.py",
    "docs/guide.md",
    "tests/test_a.py",
    "src/core/x.py",
    "db/migrations/1.sql",
)
NOTE = (
    "{path}\n  s_c9883b05a2487d::t_9f8e7d6c5b4a32 1-{n}\n  h_31dce776f88375 {h}\n---\n"
    '{{"schema_version":"authorship/3.0.0","humans":{{"h_31dce776f88375":'
    '{{"author":"Dev <dev@example.com>"}}}},'
    '"sessions":{{"s_c9883b05a2487d":{{"agent_id":{{"tool":"cursor","model":"gpt-5"}}}}}}}}'
)


def _data(raw: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(raw), raw)


def _history(repo: Repo, commits: int = 120) -> None:
    """``commits`` commits on main (every 15th a merge of a side commit), then notes."""
    rng = random.Random(7)
    out: list[bytes] = []
    notes: list[tuple[int, str, int]] = []
    when, mark, main_mark = 1_700_000_000, 0, 0
    for made in range(1, commits + 1):
        mark += 1
        when += 60
        author = rng.choice(AUTHORS)
        committer = rng.choice(COMMITTERS)
        stamp = b"author %s %d +0000\ncommitter %s %d +0000\n"
        if made % 15 == 0 and main_mark:
            out.append(b"commit refs/heads/side\nmark :%d\n" % mark)
            out.append(stamp % (author, when, author, when))
            out.append(_data(f"side {made}{rng.choice(TRAILERS)}\n".encode()))
            out.append(b"from :%d\n" % main_mark)
            out.append(b"M 644 inline src/core/side%d.py\n" % made)
            out.append(_data(b"side\n"))
            side, mark = mark, mark + 1
            out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
            out.append(stamp % (COMMITTERS[2], when, COMMITTERS[2], when))
            out.append(_data(f"Merge side {made}\n".encode()))
            out.append(b"from :%d\nmerge :%d\n\n" % (main_mark, side))
            main_mark = mark
            continue
        out.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        out.append(stamp % (author, when, committer, when))
        message = rng.choice(SUBJECTS).format(n=made) + rng.choice(TRAILERS) + "\n"
        raw = message.encode()
        if made % 23 == 0:
            raw = b"legacy caf\xe9 " + raw  # not UTF-8, no encoding header
        out.append(_data(raw))
        if main_mark:
            out.append(b"from :%d\n" % main_mark)
        if made == 1:
            out.append(b"M 644 inline .affidavit/tiers.yaml\n")
            out.append(_data(b"tiers:\n  - tier: critical\n    paths: ['src/auth/**']\n"))
        elif made == 40:
            out.append(b"R .affidavit/tiers.yaml .affidavit/old-tiers.yaml\n")
        elif made % 11 == 0:
            out.append(b"R %s src/moved%d.py\n" % (rng.choice(PATHS).encode(), made))
        elif made % 13 == 0:
            out.append(b"M 644 inline assets/logo%d.png\n" % made)
            out.append(_data(bytes(range(256)) * 4))
        else:
            for _ in range(rng.randint(1, 3)):
                target = rng.choice(PATHS)
                lines = rng.randint(1, 30)
                out.append(b"M 644 inline %s\n" % target.encode())
                out.append(_data("".join(f"v{made}_{i}\n" for i in range(lines)).encode()))
                if rng.random() < 0.15:
                    notes.append((mark, target, lines))
        out.append(b"\n")
        main_mark = mark
    out.append(b"commit refs/notes/ai\ncommitter Dev <dev@example.com> %d +0000\n" % when)
    out.append(_data(b"notes"))
    for m, target, lines in notes:
        out.append(b"N inline :%d\n" % m)
        half = max(1, lines // 2)
        out.append(_data(NOTE.format(path=target, n=half, h=lines).encode()))
    out.append(b"\n")
    subprocess.run(
        ["git", "-C", str(repo.path), "fast-import", "--quiet"], input=b"".join(out), check=True
    )
    repo.git("reset", "-q", "--hard", "main")


def _traces(repo: Repo) -> None:
    shas = repo.git("rev-list", "--reverse", "--no-merges", "main").split()
    records = []
    for i, kind in ((5, "ai"), (9, "human"), (17, "mixed")):
        files = repo.git("show", "--format=", "--name-only", shas[i]).split("\n")
        record = {
            "version": "0.1.0",
            "id": f"rec-{kind}-{i}",
            "timestamp": "2026-01-01T00:00:00Z",
            "vcs": {"type": "git", "revision": shas[i]},
            "tool": {"name": "claude-code", "version": "2.1.0"},
            "files": [
                {
                    "path": files[0],
                    "conversations": [
                        {
                            "contributor": {"type": kind, "model_id": "anthropic/claude-opus-4-6"},
                            "ranges": [{"start_line": 1, "end_line": 3}],
                        }
                    ],
                }
            ],
        }
        records.append(json.dumps(record))
    repo.commit("traces", {".agent-trace/traces.jsonl": "\n".join(records) + "\n"})


def _predicate_json(repo: Repo, base: str | None) -> str:
    """The bytes the CLI writes, with the two run-dependent values (path, time) replaced."""
    predicate = collect_provenance(repo.path, base, "main")
    text = predicate.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
    # built without per-object validation: the full, strict validation must accept it unchanged
    assert AiProvenance.model_validate_json(text) == predicate
    where = json.dumps(str(repo.path.resolve()))
    assert text.count(where) == 1
    text = text.replace(where, '"REPO"')
    return re.sub(r'"createdAt": "[^"]+"', '"createdAt": "CREATED"', text)


def test_predicate_json_matches_golden(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("varied")
    _history(repo)
    _traces(repo)
    base = repo.git("rev-list", "--reverse", "main").split()[30]
    text = _predicate_json(repo, None) + _predicate_json(repo, base)
    if os.environ.get("AFFIDAVIT_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")

"""Reading awkward history: root commits, merges, renames, binary files, non-UTF-8 messages,
10,000-commit ranges, and trailer parsing that agrees with ``git interpret-trailers --parse``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from collect_gitrepo import HUMAN, Repo

from affidavit.collect import collect_provenance
from affidavit.collect.git import iter_commits, resolve_commit
from affidavit.collect.trailers import parse_trailers
from affidavit.errors import CollectError

BOT = ("copilot-swe-agent[bot]", "198982749+Copilot@users.noreply.github.com")
MERGER = ("Maya Merger", "maya@example.com")


def test_root_commit_rename_and_binary(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("shapes")
    root = repo.commit("root", {"a.txt": "one\ntwo\nthree\n", "logo.png": b"\x89PNG\x00\x01\x02"})
    repo.git("mv", "a.txt", "b.txt")
    repo.commit("rename", {"b.txt": "one\ntwo\nthree\nfour\n"})
    changes = collect_provenance(repo.path, None, "HEAD").to_wire()["changes"]
    assert changes[0]["commit"] == root
    assert changes[0]["parents"] == []
    assert changes[0]["files"] == [
        {"path": "a.txt", "tier": "standard", "linesAdded": 3, "linesDeleted": 0, "binary": False},
        {
            "path": "logo.png",
            "tier": "standard",
            "linesAdded": 0,
            "linesDeleted": 0,
            "binary": True,
        },
    ]
    assert changes[1]["files"] == [
        {
            "path": "b.txt",
            "tier": "standard",
            "linesAdded": 1,
            "linesDeleted": 0,
            "binary": False,
            "previousPath": "a.txt",
        }
    ]


def test_merge_diffs_against_first_parent_and_merger_accepts_bot_change(
    make_repo: Callable[[str], Repo],
) -> None:
    repo = make_repo("merges")
    base = repo.commit("initial", {"README.md": "hi\n"})
    repo.git("checkout", "-q", "-b", "copilot/fix")
    bot = repo.commit(
        "Fix the session timeout", {"src/session.py": "t = 30\n"}, author=BOT, committer=BOT
    )
    repo.git("checkout", "-q", "main")
    main_change = repo.commit("docs", {"docs/x.md": "x\n"})
    merge = repo.merge("copilot/fix", "Merge pull request #7 from copilot/fix", committer=MERGER)
    changes = {
        c["commit"]: c for c in collect_provenance(repo.path, base, "HEAD").to_wire()["changes"]
    }
    assert set(changes) == {bot, main_change, merge}
    assert changes[merge]["parents"] == [main_change, bot]
    assert changes[merge]["files"] == [
        {
            "path": "src/session.py",
            "tier": "critical",
            "linesAdded": 1,
            "linesDeleted": 0,
            "binary": False,
        }
    ]
    assert changes[merge]["aiInvolvement"] == "unknown"
    assert changes[bot]["aiInvolvement"] == "generated"
    assert changes[bot]["acceptedBy"] == {"name": MERGER[0], "email": MERGER[1]}
    assert changes[bot]["acceptedAt"] == changes[merge]["committedAt"]
    assert changes[main_change]["files"][0]["tier"] == "low"


def test_latin1_message_with_commit_encoding_header(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("latin1")
    repo.commit("initial", {"a.txt": "a\n"})
    repo.git("config", "i18n.commitEncoding", "ISO-8859-1")
    message = "Réparer la façade\n\nAI-Assisted: oui, Hélène\n".encode("latin-1")
    sha = repo.commit(message, {"b.txt": "b\n"}, author=("Helene", "h@example.com"))
    assert (
        b"encoding ISO-8859-1"
        in subprocess.run(
            ["git", "-C", str(repo.path), "cat-file", "commit", sha],
            capture_output=True,
            check=True,
        ).stdout
    )
    change = collect_provenance(repo.path, "HEAD~1", "HEAD").to_wire()["changes"][0]
    assert change["author"]["name"] == "Helene"
    assert change["aiInvolvement"] == "assisted"
    assert change["evidence"] == [{"kind": "declaration", "detail": "AI-Assisted: oui, Hélène"}]


def _fast_import(repo: Path, stream: bytes) -> None:
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream, check=True)


def test_latin1_bytes_without_header_use_configured_encoding(
    make_repo: Callable[[str], Repo],
) -> None:
    repo = make_repo("rawlatin1")
    msg = "Corrigé\n\nCo-authored-by: Claude <noreply@anthropic.com>\n".encode("latin-1")
    stream = b"commit refs/heads/main\ncommitter Jos\xe9 <j@example.com> 1700000000 +0000\n"
    stream += b"data %d\n%s\nM 644 inline f.txt\ndata 2\nx\n\n" % (len(msg), msg)
    _fast_import(repo.path, stream)
    undecoded = collect_provenance(repo.path, None, "main").to_wire()["changes"][0]
    assert undecoded["committer"]["name"] == "Jos\ufffd"
    repo.git("config", "i18n.commitEncoding", "latin-1")
    change = collect_provenance(repo.path, None, "main").to_wire()["changes"][0]
    assert change["committer"]["name"] == "José"
    assert change["aiInvolvement"] == "assisted"


def test_ten_thousand_commits_in_one_pass(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("big")
    parts: list[bytes] = []
    for i in range(10_000):
        trailer = "\n\nCo-authored-by: Codex <noreply@openai.com>" if i % 4 == 0 else ""
        msg = f"change {i}{trailer}\n".encode()
        parts.append(
            b"commit refs/heads/main\nmark :%d\n"
            b"author A <a@example.com> %d +0000\ncommitter A <a@example.com> %d +0000\n"
            b"data %d\n%s\nM 644 inline src/f%d.py\ndata 2\n%d\n\n"
            % (i + 1, 1_700_000_000 + i, 1_700_000_000 + i, len(msg), msg, i % 50, i % 10)
        )
    _fast_import(repo.path, b"".join(parts))
    predicate = collect_provenance(repo.path, None, "main").to_wire()
    changes = predicate["changes"]
    assert len(changes) == 10_000
    assert changes[0]["parents"] == []
    assert changes[-1]["commit"] == repo.git("rev-parse", "main")
    assert predicate["summary"]["commits"] == 10_000
    assert predicate["summary"]["aiTouchedCommits"] == 2_500
    assert predicate["summary"]["undeclaredCommits"] == 7_500
    assert predicate["summary"]["traceabilityCoverage"] == 0.25
    assert changes[4]["tools"] == [{"name": "Codex"}]
    streamed = iter_commits(repo.path, None, resolve_commit(repo.path, "main"))
    assert next(streamed).message == "change 0\n\nCo-authored-by: Codex <noreply@openai.com>\n"
    streamed.close()


def test_unknown_revision_is_a_collect_error(make_repo: Callable[[str], Repo]) -> None:
    repo = make_repo("norev")
    repo.commit("initial", {"a.txt": "a\n"})
    with pytest.raises(CollectError) as err:
        collect_provenance(repo.path, "v9.9.9", "HEAD")
    assert str(err.value) == (
        f"revision 'v9.9.9' is not a commit in {repo.path}\n"
        "  hint: fetch it (git fetch --unshallow or git fetch origin <ref>) or pass an existing revision"
    )


TRAILER_MESSAGES = [
    "subject\n\nbody\n\nCo-authored-by: Claude <noreply@anthropic.com>\n",
    "subject: with colon\n",
    "subject\n\nKey: value\n\nlast paragraph is prose\n",
    "subject\n\nsome prose line\nSigned-off-by: A <a@x>\nAssisted-by: Claude:claude-3-opus\nmore prose\n",
    "subject\n\nprose\nAssisted-by: x\n",
    "subject\n\nCo-Authored-By: Claude <noreply@anthropic.com>\nMade-with: Cursor\n  continued value\n",
    "subject\n\nAI-Assisted : yes\nGenerated-by: Claude Code\n\n\n",
    "only-subject-Key: value\n",
    "subject\n\n# comment\nReviewed-by: Bob <b@x>\n",
]


@pytest.mark.parametrize("message", TRAILER_MESSAGES)
def test_trailers_match_git_interpret_trailers(message: str, tmp_path: Path) -> None:
    out = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message.encode(),
        capture_output=True,
        check=True,
        cwd=tmp_path,
    ).stdout.decode()
    expected = [line for line in out.split("\n") if line]
    assert [str(t) for t in parse_trailers(message)] == expected


def test_trailer_keys_are_case_insensitive() -> None:
    (trailer,) = parse_trailers("s\n\nCO-AUTHORED-BY: X <x@y>\n")
    assert trailer.lower_key == "co-authored-by"
    assert HUMAN[0] == "Alice Human"


def test_a_range_across_the_edge_of_a_shallow_clone_is_refused(
    make_repo: Callable[[str], Repo], tmp_path: Path
) -> None:
    """A CI checkout of depth 3 of a change of five commits, its base fetched apart: git reads
    the shallow edge as a root, so the AI commit before it would vanish and the edge would
    seem to add every file by hand. Refused, naming the edge and the fetch that mends it."""
    origin = make_repo("origin")
    base = origin.commit("release", {"src/auth/login.py": "v = 0\n"})
    origin.commit("ai login" + "\n\nCo-authored-by: Claude <noreply@anthropic.com>\n",
                  {"src/auth/login.py": "v = 1\n"})  # fmt: skip
    for n in range(2, 5):
        origin.commit(f"change {n}", {"src/auth/login.py": f"v = {n}\n"})
    clone = tmp_path / "shallow"
    url = f"file://{origin.path}"
    subprocess.run(["git", "clone", "-q", "--depth", "3", url, str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--depth", "1", "origin", base],
                   check=True)  # fmt: skip
    with pytest.raises(CollectError) as refused:
        collect_provenance(clone, base, "HEAD")
    assert "is the edge of a shallow clone" in refused.value.message
    assert refused.value.hint is not None and "fetch-depth: 0" in refused.value.hint
    subprocess.run(["git", "-C", str(clone), "fetch", "-q", "--unshallow"], check=True)
    whole = collect_provenance(clone, base, "HEAD").to_wire()
    assert [c["aiInvolvement"] for c in whole["changes"]][:1] == ["assisted"]

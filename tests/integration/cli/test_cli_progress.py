"""Long work shows progress to a person at a terminal and stays silent in a pipeline's log, and
``collect provenance`` warns before it writes a predicate that ``attest`` would refuse.

Real git repositories made with ``git fast-import``; the CLI runs as its own process, its stderr
on a pseudo-terminal (what a person has) or on a pipe (what CI has).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from terminal import run_on_a_terminal

AI = "Co-authored-by: Claude <noreply@anthropic.com>"


def _history(repo: Path, commits: int, files_per_commit: int = 1) -> None:
    """``commits`` commits on main, each changing ``files_per_commit`` files, every other one
    declaring Claude as co-author."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    parts = [b"blob\nmark :1\ndata 2\nx\n"]
    for n in range(commits):
        message = f"change {n}\n\n{AI if n % 2 else 'AI-Assisted: no'}\n".encode()
        parts.append(
            b"commit refs/heads/main\n"
            + f"committer Ana Dev <ana@example.com> {1_700_000_000 + n} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
        )
        for f in range(files_per_commit):
            path = f"src/service/module_{n:05d}/component_{f:05d}/implementation_file.py"
            parts.append(f"M 100644 :1 {path}\n".encode())
        parts.append(b"\n")
    subprocess.run(
        ["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(parts), check=True
    )


def _collect(repo: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "affidavit.cli", "collect", "provenance",
        "--repo", str(repo), "--head", "main", "-o", str(out),
    ]  # fmt: skip


def test_collect_shows_progress_at_a_terminal(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _history(repo, 700)
    out = tmp_path / "provenance.json"
    code, terminal = run_on_a_terminal(_collect(repo, out))
    assert code == 0, terminal
    assert "reading history" in terminal
    assert "700/700" in terminal  # the total from `git rev-list --count`, reached
    assert "commits" in terminal
    assert len(json.loads(out.read_text())["changes"]) == 700


def test_collect_draws_nothing_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _history(repo, 300)
    out = tmp_path / "provenance.json"
    done = subprocess.run(_collect(repo, out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert len(json.loads(out.read_text())["changes"]) == 300


def test_collect_warns_before_writing_a_predicate_attest_would_refuse(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _history(repo, 40, files_per_commit=700)  # 28,000 file entries: about 4.9 MiB signed
    out = tmp_path / "provenance.json"
    done = subprocess.run(_collect(repo, out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("warning: these 40 commits make a predicate whose signed attestation ")
    assert line.endswith(
        "MiB, over the 4 MiB that `affidavit attest` and the verifiers accept; collect only what "
        "this release adds with --base LAST_RELEASED_REVISION"
    )
    assert out.stat().st_size > 0  # written all the same: the warning is advice, not a refusal


def test_a_predicate_within_the_limit_gets_no_warning(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _history(repo, 40, files_per_commit=300)
    out = tmp_path / "provenance.json"
    done = subprocess.run(_collect(repo, out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_a_predicate_whose_indented_text_alone_is_over_the_limit_gets_no_warning(
    tmp_path: Path,
) -> None:
    """The file written is indented, but the envelope carries the compact JSON: only that counts."""
    repo = tmp_path / "repo"
    _history(repo, 28, files_per_commit=700)  # 19,600 file entries: about 3.4 MiB signed
    out = tmp_path / "provenance.json"
    done = subprocess.run(_collect(repo, out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    # the indented text alone would estimate over the limit
    assert 4 * (out.stat().st_size + 1026) // 3 + 1024 > 4 * 1024 * 1024

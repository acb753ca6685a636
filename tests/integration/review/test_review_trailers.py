"""collect review --trailers on real git repositories made by the test: only trailers on the head
(or merge) commit approve the final revision; authors, committers, co-authors and AI identities
are never independent; bad ranges fail with exact messages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from review_helpers import GitRepo, review_json, run_cli

BOB = "Bob Okafor <bob@acme.example>"


def test_only_head_commit_trailers_approve_the_final_revision(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    base = git_repo.commit("Initial import")
    first = git_repo.commit(
        "Add rate limiter\n\nReviewed-by: Dan Reed <dan@acme.example>",
        committer=("Carol Diaz", "carol@acme.example"),
    )
    head = git_repo.commit(
        "Rate limiter: per-tenant buckets\n\n"
        "Co-authored-by: Claude <noreply@anthropic.com>\n"
        f"Reviewed-by: {BOB}\n"
        "acked-by: Claude <noreply@anthropic.com>\n"
        "Approved-by: Alice Martin <alice@acme.example>\n"
        "Reviewed-by: Carol Diaz <carol.diaz@home.example>\n"
    )
    pred = review_json(
        capsys, "--trailers", "--repo", str(git_repo.path), "--base", base, "--head", "HEAD"
    )
    assert pred["source"]["revision"] == head
    assert pred["source"]["baseRevision"] == base
    assert pred["source"]["repository"] == git_repo.path.resolve().as_uri()
    got = [
        (r["reviewer"].get("email"), r["revision"], r["onFinalRevision"], r["independent"])
        for r in pred["reviews"]
    ]
    assert got == [
        ("dan@acme.example", first, False, True),
        ("bob@acme.example", head, True, True),
        ("noreply@anthropic.com", head, True, False),  # an AI agent
        ("alice@acme.example", head, True, False),  # the author
        ("carol.diaz@home.example", head, True, False),  # committed `first` (same name)
    ]
    assert pred["summary"]["approvalsOnFinalRevision"] == 4
    assert pred["summary"]["independentApprovals"] == 1
    cr = pred["changeRequest"]
    assert cr["system"] == "trailers"
    assert cr["id"] == f"{base[:12]}..{head[:12]}"
    assert cr["author"] == {"name": "Alice Martin", "email": "alice@acme.example", "isBot": False}
    assert "mergedBy" not in cr
    # the head's trailers vouch for the head: `first`, pushed before it, is not held
    assert cr["commits"] == [head]


def test_review_of_an_earlier_commit_does_not_count(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    base = git_repo.commit("Initial import")
    git_repo.commit(f"Add refunds\n\nReviewed-by: {BOB}")
    git_repo.commit("Refunds: skip fraud check")  # pushed after the review
    pred = review_json(
        capsys, "--trailers", "--repo", str(git_repo.path), "--base", base, "--head", "HEAD"
    )
    assert pred["summary"]["approvalsOnFinalRevision"] == 0
    assert pred["summary"]["reviewers"] == ["bob@acme.example"]


def test_merge_commit_trailers_approve_the_merged_change(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    base = git_repo.commit("Initial import")
    git_repo.git("checkout", "-q", "-b", "feature")
    export = git_repo.commit("Ledger export", author=("Erin Cho", "erin@acme.example"))
    git_repo.git("checkout", "-q", "main")
    git_repo.commit("Unrelated fix on main", author=("Frank Li", "frank@acme.example"))
    merge = git_repo.merge(
        "feature",
        f"Merge branch 'feature'\n\nReviewed-by: {BOB}\nAcked-by: Mia Maintainer <mia@acme.example>",
        committer=("Mia Maintainer", "mia@acme.example"),
    )
    pred = review_json(
        capsys,
        "--trailers",
        "--repo",
        str(git_repo.path),
        "--base",
        base,
        "--head",
        merge,
        "--repository",
        "https://git.example.org/acme/ledger",
    )
    assert pred["source"]["repository"] == "https://git.example.org/acme/ledger"
    cr = pred["changeRequest"]
    assert cr["mergedBy"] == {"name": "Mia Maintainer", "email": "mia@acme.example", "isBot": False}
    assert [(r["reviewer"]["name"], r["independent"]) for r in pred["reviews"]] == [
        ("Bob Okafor", True),
        ("Mia Maintainer", False),  # she committed the merge
    ]
    assert pred["summary"]["approvalsOnFinalRevision"] == 2
    assert pred["summary"]["independentApprovals"] == 1
    # the merge's trailers vouch for what it brought in, not for the fix pushed to main
    assert cr["commits"] == [export, merge]


def test_aider_author_suffix_and_bot_reviewers(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    base = git_repo.commit("Initial import")
    git_repo.commit(
        "Tidy\n\nReviewed-by: Alice Martin (aider) <alice@home.example>\n"
        "Reviewed-by: renovate[bot] <29139614+renovate[bot]@users.noreply.github.com>\n"
        f"Reviewed-by: {BOB}"
    )
    pred = review_json(
        capsys, "--trailers", "--repo", str(git_repo.path), "--base", base, "--head", "HEAD"
    )
    assert [r["independent"] for r in pred["reviews"]] == [False, False, True]
    assert [r["reviewer"]["isBot"] for r in pred["reviews"]] == [False, True, False]


def test_unknown_base(capsys: pytest.CaptureFixture[str], git_repo: GitRepo) -> None:
    git_repo.commit("Initial import")
    code, out, err = run_cli(
        capsys, "collect", "review", "--trailers", "--repo", str(git_repo.path),
        "--base", "v9.9", "--head", "HEAD",
    )  # fmt: skip
    assert (code, out) == (3, "")
    assert err == (
        f"error: --base 'v9.9' is not a commit in {git_repo.path}\n"
        f"  hint: pass a commit that exists there (git -C {git_repo.path} log --oneline)\n"
    )


def test_empty_range(capsys: pytest.CaptureFixture[str], git_repo: GitRepo) -> None:
    git_repo.commit("Initial import")
    code, _, err = run_cli(
        capsys, "collect", "review", "--trailers", "--repo", str(git_repo.path),
        "--base", "HEAD", "--head", "HEAD",
    )  # fmt: skip
    assert code == 3
    assert err == (
        f"error: no commits in HEAD..HEAD of {git_repo.path}\n"
        "  hint: --base must be an ancestor of --head, e.g. the merge base with the target branch\n"
    )


def test_not_a_repository(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys, "collect", "review", "--trailers", "--repo", str(tmp_path),
        "--base", "A", "--head", "B",
    )  # fmt: skip
    assert code == 3
    assert err == f"error: {tmp_path} is not a git repository\n  hint: pass --repo PATH\n"


def test_separator_characters_in_a_message_are_text(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo
) -> None:
    """The log was split on \\x1e and \\x1f, which a commit message may hold: one in a trailer
    ended the command in ValueError (a stack trace), and an earlier commit's message could add a
    whole forged commit record (any sha, author and review) to the evidence."""
    base = git_repo.commit("Initial import")
    mallory = ["Mallory", "m@evil.example", "2026-01-01T00:00:00+00:00"]
    forged = "\x1f".join(["f" * 40, "", *mallory, *mallory, f"Reviewed-by: {BOB}"])
    first = git_repo.commit(f"Add refunds\n\nAcked-by: Dan Reed <dan@acme.example>\x1e{forged}")
    head = git_repo.commit(f"Refunds: per-tenant\n\nReviewed-by: {BOB}\x1f")
    pred = review_json(
        capsys, "--trailers", "--repo", str(git_repo.path), "--base", base, "--head", "HEAD"
    )
    got = [(r["reviewer"].get("email"), r["revision"]) for r in pred["reviews"]]
    assert got == [("dan@acme.example", first), ("bob@acme.example", head)]
    assert [c["email"] for c in pred["changeRequest"]["committers"]] == ["alice@acme.example"]

"""A pull request merged by "Rebase and merge" is still the reviewed change; an unreviewed AI
commit pushed beside it is not.

GitHub's rebase merge lands a pull request as new commits its API never lists (only the last is
``merge_commit_sha``). ``collect review --base`` records the range's commits that make the same
change (``git patch-id --verbatim``) as one of the PR's as the PR's too, so the policy's
``review.coversCommits`` admits them, and still refuses the AI commit pushed straight to the
branch. Real git repositories, the real CLI for both predicates, and the policy engine; the PR's
JSON is GitHub-shaped, written from the repository (GitHub's API is the one thing no test can
reach).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from review_helpers import GitRepo, run_cli

from affidavit.demo.github_records import Approval, write_review_records
from affidavit.policy import Decision, evaluate
from policy_builders import NOW, ctx, evidence, index

CLAUDE = "Co-authored-by: Claude <noreply@anthropic.com>"
RELEASER = ("GitHub", "noreply@github.com")  # the rebase merge's committer


def _pr_records(tmp: Path, repo: GitRepo, base: str, last: str, landed_as: str) -> list[str]:
    """PR #42's GitHub-shaped JSON (base..last, approved by bob on ``last``), merged as
    ``landed_as``; the ``collect review`` flags that read it."""
    rec = write_review_records(
        tmp / "github", repo.path, base, last, [Approval("bob", "Bob", last)]
    )
    pr = json.loads(rec.pr.read_text())
    rec.pr.write_text(json.dumps({**pr, "merge_commit_sha": landed_as}))
    return ["--github-pr", str(rec.pr), "--github-reviews", str(rec.reviews),
            "--github-commits", str(rec.commits)]  # fmt: skip


def _write(repo: GitRepo, path: str, text: str) -> None:
    target = repo.path / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    repo.git("add", path)


def _commit(repo: GitRepo, path: str, text: str, message: str) -> str:
    _write(repo, path, text)
    repo.git(
        "commit",
        "-q",
        "-m",
        message,
        env=repo._identity(("Ana", "ana@acme.example"), ("Ana", "ana@acme.example")),
    )
    return repo.git("rev-parse", "HEAD")


class RebaseMerged:
    """main: base, an unreviewed AI commit pushed straight to main (``pushed``), then PR #42's
    two commits rebased onto it (``landed``); the PR's own commits (``pr``) stay in the
    repository as ``refs/pull/42/head`` does after a fetch."""

    def __init__(self, repo: GitRepo, *, reindent: bool = False) -> None:
        self.repo = repo
        repo.git("remote", "add", "origin", "https://github.com/acme/payments-api")
        self.base = _commit(repo, "README.md", "payments\n", "Initial import")
        repo.git("checkout", "-q", "-b", "rate-limit")
        login = "def login(user):\n    check(user)\n    return True\n"
        first = _commit(repo, "src/auth/login.py", login, f"Rate-limit logins\n\n{CLAUDE}")
        second = _commit(repo, "docs/usage.md", "rate limits\n", "Document the rate limit")
        self.pr = [first, second]
        repo.git("checkout", "-q", "main")
        self.pushed = _commit(
            repo, "src/auth/tokens.py", "TOKEN_TTL = 10**9\n", f"Longer tokens\n\n{CLAUDE}"
        )
        env = repo._identity(("Ana", "ana@acme.example"), RELEASER)
        repo.git("cherry-pick", "--no-commit", first)
        if reindent:  # the copy's indentation differs: in Python, another program
            _write(repo, "src/auth/login.py", login.replace("    check", "\tcheck"))
        repo.git("commit", "-q", "-C", first, env=env)
        repo.git("cherry-pick", second, env=env)
        self.landed = repo.git("rev-list", "--reverse", f"{self.pushed}..HEAD").split()
        self.head = self.landed[-1]

    def records(self, tmp: Path) -> list[str]:
        """The PR's GitHub-shaped JSON (merged by rebase: merge_commit_sha is the last copy)."""
        return _pr_records(tmp, self.repo, self.base, self.pr[-1], self.head)


def _collect(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict[str, Any], str]:
    code, out, err = run_cli(capsys, "collect", *args)
    assert code == 0, err
    return json.loads(out), err


def _judge(prov: dict[str, Any], review: dict[str, Any]) -> Decision:
    c = ctx()
    return evaluate(c, {c.images[0]: evidence(prov, review)}, index(), now=NOW, decision_id="d-1")


@pytest.fixture
def merged(git_repo: GitRepo) -> RebaseMerged:
    return RebaseMerged(git_repo)


def test_a_rebase_merge_is_the_reviewed_change_and_the_pushed_ai_commit_is_not(
    capsys: pytest.CaptureFixture[str], merged: RebaseMerged, tmp_path: Path
) -> None:
    repo = str(merged.repo.path)
    prov, _ = _collect(
        capsys, "provenance", "--repo", repo, "--base", merged.base, "--head", merged.head
    )
    ai = [c["commit"] for c in prov["changes"] if c["aiInvolvement"] != "unknown"]
    assert ai == [merged.pushed, merged.landed[0]]  # both AI commits are in the image's range
    args = [*merged.records(tmp_path), "--head", merged.head]

    # without the range: the PR holds its own commits and the last copy, not the first copy
    plain, _ = _collect(capsys, "review", *args)
    assert plain["changeRequest"]["commits"] == [*merged.pr, merged.head]
    d = _judge(prov, plain)
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    assert (
        f"AI-involved commit {merged.pushed[:12]} (tier critical), AI-involved commit "
        f"{merged.landed[0][:12]} (tier critical), which" in d.violations[0].found
    )

    # with it: the first copy makes the change the PR's first commit made, so it is the PR's;
    # the AI commit pushed to main makes another change, and is still refused
    ranged, err = _collect(capsys, "review", *args, "--repo", repo, "--base", merged.base)
    assert err == ""
    assert ranged["changeRequest"]["commits"] == [*merged.pr, merged.head, merged.landed[0]]
    d = _judge(prov, ranged)
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    assert d.violations[0].found.startswith(
        f"AI-involved commit {merged.pushed[:12]} (tier critical), which https://github.com/"
        "acme/payments-api/pull/42 does not hold (4 commits held"
    )

    # the PR's own range (as the template takes it when nothing was pushed beside it): admitted
    narrow, _ = _collect(
        capsys, "provenance", "--repo", repo, "--base", merged.pushed, "--head", merged.head
    )
    assert _judge(narrow, ranged).outcome == "allowed"


def test_a_copy_that_changes_whitespace_is_another_change(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo, tmp_path: Path
) -> None:
    merged = RebaseMerged(git_repo, reindent=True)
    args = [*merged.records(tmp_path), "--head", merged.head]
    ranged, _ = _collect(
        capsys, "review", *args, "--repo", str(git_repo.path), "--base", merged.pushed
    )
    assert merged.landed[0] not in ranged["changeRequest"]["commits"]


def test_the_prs_commits_missing_from_the_repository_are_named(
    capsys: pytest.CaptureFixture[str], merged: RebaseMerged, tmp_path: Path
) -> None:
    args = [*merged.records(tmp_path), "--head", merged.head]
    # a clone that never fetched refs/pull/42/head: the branch and its objects are gone
    merged.repo.git("branch", "-q", "-D", "rate-limit")
    merged.repo.git("reflog", "expire", "--expire=now", "--all")
    merged.repo.git("gc", "-q", "--prune=now")
    ranged, err = _collect(
        capsys, "review", *args, "--repo", str(merged.repo.path), "--base", merged.base
    )
    assert ranged["changeRequest"]["commits"] == [*merged.pr, merged.head]
    assert err == (
        f"warning: 2 of the change request's commits are not in {merged.repo.path} "
        f"({', '.join(sorted(c[:12] for c in merged.pr))}): a rebased copy of them is not "
        "recorded as the request's, and a policy refuses it as review.coversCommits; fetch them "
        "first (GitHub: git fetch origin pull/N/head, GitLab: git fetch origin "
        "merge-requests/N/head)\n"
    )


def test_a_copy_of_a_commit_the_pr_itself_undid_is_not_the_prs(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo, tmp_path: Path
) -> None:
    """The PR skips a check, reverts that, and is approved on a docs change; its first commit,
    cherry-picked straight to main (same author, time and change), rode in as "a copy of the
    PR's". Only the chain a rebase merge lands, pair by pair, is taken now: a merge commit
    lands nothing of the kind."""
    repo = git_repo
    repo.git("remote", "add", "origin", "https://github.com/acme/payments-api")
    login = "def login(user):\n    check(user)\n    return True\n"
    base = _commit(repo, "src/auth/login.py", login, "Initial import")
    repo.git("checkout", "-q", "-b", "rate-limit")
    skip = login.replace("    check(user)\n", "    return True  # skip the check\n")
    first = _commit(repo, "src/auth/login.py", skip, f"Faster logins\n\n{CLAUDE}")
    _commit(repo, "src/auth/login.py", login, "Revert faster logins")
    last = _commit(repo, "docs/usage.md", "rate limits\n", "Document the rate limit")
    repo.git("checkout", "-q", "main")
    env = repo._identity(("Ana", "ana@acme.example"), ("Dave", "dave@acme.example"))
    repo.git("cherry-pick", first, env=env)  # keeps the author and the author time
    pushed = repo.git("rev-parse", "HEAD")
    assert pushed != first
    merged = repo.merge(last, "Merge pull request #42", RELEASER)
    args = [*_pr_records(tmp_path, repo, base, last, merged), "--head", merged]
    prov, _ = _collect(
        capsys, "provenance", "--repo", str(repo.path), "--base", base, "--head", merged
    )
    review, _ = _collect(capsys, "review", *args, "--repo", str(repo.path), "--base", base)
    assert pushed not in review["changeRequest"]["commits"]
    d = _judge(prov, review)
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    assert d.violations[0].found.startswith(f"AI-involved commit {pushed[:12]} (tier critical)")


def test_a_rebase_onto_lines_changed_nearby_is_still_the_prs(
    capsys: pytest.CaptureFixture[str], git_repo: GitRepo, tmp_path: Path
) -> None:
    """A rebase onto a branch that changed lines next to the PR's (no conflict) changes each
    copy's context, not its change: the copies are compared on their changed lines."""
    repo = git_repo
    repo.git("remote", "add", "origin", "https://github.com/acme/payments-api")
    lines = [f"limit_{i} = {i}\n" for i in range(20)]
    base = _commit(repo, "src/auth/limits.py", "".join(lines), "Initial import")
    repo.git("checkout", "-q", "-b", "rate-limit")
    ours = list(lines)
    ours[10] = "limit_10 = 'ai'\n"
    first = _commit(repo, "src/auth/limits.py", "".join(ours), f"Tune limit 10\n\n{CLAUDE}")
    last = _commit(repo, "docs/usage.md", "rate limits\n", "Document the rate limit")
    repo.git("checkout", "-q", "main")
    theirs = list(lines)
    theirs[8] = "limit_8 = 'other'\n"
    moved = _commit(repo, "src/auth/limits.py", "".join(theirs), "Another reviewed change")
    env = repo._identity(("Ana", "ana@acme.example"), RELEASER)
    repo.git("cherry-pick", first, last, env=env)
    head = repo.git("rev-parse", "HEAD")
    copy = repo.git("rev-parse", "HEAD~1")
    args = [*_pr_records(tmp_path, repo, base, last, head), "--head", head]
    prov, _ = _collect(
        capsys, "provenance", "--repo", str(repo.path), "--base", moved, "--head", head
    )
    review, _ = _collect(capsys, "review", *args, "--repo", str(repo.path), "--base", moved)
    assert review["changeRequest"]["commits"][-1] == copy
    assert _judge(prov, review).outcome == "allowed"

"""Review evidence from commit trailers, for changes that never went through GitHub or GitLab.

Mailing-list and Gerrit-style workflows record review as ``Reviewed-by:``, ``Acked-by:`` and
``Approved-by:`` trailers (``Name <email>``). A trailer vouches for the commit that carries it,
not for later ones, so only trailers on the head commit of ``base..head`` (a merge commit when the
change was merged) count as approvals of the final revision. Trailers on earlier commits are
recorded as approvals of those commits, with ``onFinalRevision: false``, and count for nothing.
Every author, committer and ``Co-authored-by`` of the range is a contributor, never independent.
The change holds what the head's trailers vouch for: the head commit, and for a merge the commits
it brought in; an earlier commit of the range is not held (``review.coversCommits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affidavit.attestations.predicates.provenance import Source
from affidavit.attestations.predicates.review import ChangeRequest, CodeReview, Identity
from affidavit.collect.git import run_git
from affidavit.collect.remote import public_url
from affidavit.collect.reviews import (
    AgentIdentities,
    Contributors,
    RawReview,
    ReviewEvidence,
    build_code_review,
    looks_like_bot,
    parse_name_email,
)
from affidavit.errors import CollectError

__all__ = ["REVIEW_TRAILERS", "collect_trailer_review"]

#: Trailer keys (compared case-insensitively) that record an approval.
REVIEW_TRAILERS = ("reviewed-by", "acked-by", "approved-by")

_FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%(trailers:only,unfold)")
# Every field ends in NUL, which no commit message, name or trailer can hold (git's own
# objects end text there); any other separator is text a commit message may carry.
_FORMAT = "".join(f + "%x00" for f in _FIELDS)


@dataclass(frozen=True)
class _Commit:
    sha: str
    parents: tuple[str, ...]
    author: Identity
    committer: Identity
    committed_at: str
    trailers: tuple[tuple[str, str], ...]  # (lower-case key, value)


def _git(repo: Path, *args: str) -> str:
    return run_git(repo, *args).decode("utf-8", "replace")


def _resolve(repo: Path, rev: str, name: str) -> str:
    try:
        return _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except CollectError as e:
        raise CollectError(
            f"{name} '{rev}' is not a commit in {repo}",
            hint=f"pass a commit that exists there (git -C {repo} log --oneline)",
        ) from e


def _read_commits(repo: Path, base: str, head: str) -> list[_Commit]:
    commits = []
    fields = _git(repo, "log", f"--format={_FORMAT}", f"{base}..{head}").split("\0")
    n = len(_FIELDS)
    for i in range(0, len(fields) - n + 1, n):  # the text after the last NUL is git's newline
        sha, parents, an, ae, _ai, cn, ce, ci, trailer_text = fields[i : i + n]
        sha = sha.lstrip("\n")  # the newline git ends each commit's output with
        trailers = []
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                trailers.append((key.strip().lower(), value.strip()))
        commits.append(
            _Commit(
                sha=sha,
                parents=tuple(parents.split()),
                author=Identity(name=an, email=ae),
                committer=Identity(name=cn, email=ce),
                committed_at=ci,
                trailers=tuple(trailers),
            )
        )
    return commits


def _vouched(repo: Path, tip: _Commit) -> list[str]:
    """What the head commit's trailers vouch for, as the commits the change holds: the head
    itself, and for a merge the commits it brought in (``head^1..head``), oldest first. Not
    the rest of ``base..head``: a commit pushed before it carries no approval of its own."""
    if len(tip.parents) < 2:
        return [tip.sha]
    brought = _git(repo, "rev-list", "--reverse", f"{tip.parents[0]}..{tip.sha}").split()
    return [c for c in brought if c != tip.sha] + [tip.sha]


def _origin(repo: Path) -> str:
    try:
        return _git(repo, "remote", "get-url", "origin").strip()
    except CollectError:
        return repo.resolve().as_uri()


def collect_trailer_review(
    repo: Path,
    base: str,
    head: str,
    *,
    repository: str | None = None,
    agents: AgentIdentities | None = None,
) -> CodeReview:
    """code-review/v1 from the review trailers of the commits in ``base..head`` of ``repo``."""
    if not (repo / ".git").exists() and not (repo / "HEAD").exists():
        raise CollectError(f"{repo} is not a git repository", hint="pass --repo PATH")
    base_sha = _resolve(repo, base, "--base")
    head_sha = _resolve(repo, head, "--head")
    commits = _read_commits(repo, base_sha, head_sha)
    if not commits:
        raise CollectError(
            f"no commits in {base}..{head} of {repo}",
            hint="--base must be an ancestor of --head, e.g. the merge base with the target branch",
        )
    contributors = Contributors()
    reviews = []
    for commit in reversed(commits):  # oldest first, like the APIs
        contributors.add(commit.author)
        contributors.add(commit.committer)
        for key, value in commit.trailers:
            if key == "co-authored-by":
                name, email = parse_name_email(value)
                contributors.add(Identity(name=name, email=email), listed=False)
            elif key in REVIEW_TRAILERS:
                name, email = parse_name_email(value)
                reviewer = Identity(name=name, email=email)
                reviews.append(
                    RawReview(
                        reviewer=reviewer.model_copy(update={"is_bot": looks_like_bot(reviewer)}),
                        state="approved",
                        submitted_at=commit.committed_at,
                        revision=commit.sha,
                    )
                )
    tip = commits[0]  # git log lists head first
    author_commit = next((c for c in commits if len(c.parents) < 2), tip)
    merged = len(tip.parents) > 1
    evidence = ReviewEvidence(
        source=Source(
            repository=public_url(repository or _origin(repo)),
            revision=head_sha,
            base_revision=base_sha,
        ),
        change_request=ChangeRequest(
            system="trailers",
            id=f"{base_sha[:12]}..{head_sha[:12]}",
            author=author_commit.author,
            merged_by=tip.committer if merged else None,
            merged_at=tip.committed_at if merged else None,
            commits=_vouched(repo, tip),
        ),
        final_revision=head_sha,
        reviews=tuple(reviews),
        contributors=contributors,
        match_names=True,  # a trailer's name is as good as its address: fail closed
    )
    return build_code_review(evidence, agents)

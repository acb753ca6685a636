"""Read a GitHub pull request, its reviews and its commits (REST API JSON) as review evidence.

Pipelines fetch these with ``gh api`` (the composite action in attestations/templates does);
this module checks that the three files belong together (the head commit is among the commits,
each review names the same pull request) and maps GitHub's review states onto code-review/v1.
A review counts for the revision in its ``commit_id``; when the image is built from the PR's
merge commit (``merge_commit_sha``) the reviewed final revision is still the PR head. The PR's
commits and its merge commit (the squash commit, once squashed) are recorded as the commits the
review holds, so that a policy can tell them from an earlier commit that reached the branch
unreviewed and rides along in the same build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affidavit.attestations.predicates.provenance import Source
from affidavit.attestations.predicates.review import (
    ChangeRequest,
    CodeReview,
    Identity,
    ReviewState,
)
from affidavit.collect.remote import public_url
from affidavit.collect.reviews import (
    AgentIdentities,
    Contributors,
    JsonInput,
    RawReview,
    ReviewEvidence,
    build_code_review,
    check_head,
    get_field,
    get_revision,
    load_json,
)
from affidavit.collect.reviews_input import shown

__all__ = ["collect_github_review"]

PR_ENDPOINT = "GET /repos/{o}/{r}/pulls/{n}"
REVIEWS_ENDPOINT = "GET /repos/{o}/{r}/pulls/{n}/reviews"
COMMITS_ENDPOINT = "GET /repos/{o}/{r}/pulls/{n}/commits"
COMMENTS_ENDPOINT = "GET /repos/{o}/{r}/pulls/{n}/comments"

_STATES: dict[str, ReviewState] = {
    "APPROVED": "approved",
    "CHANGES_REQUESTED": "changes_requested",
    "COMMENTED": "commented",
    "DISMISSED": "dismissed",
    "PENDING": "pending",
}


def _user(
    source: JsonInput, obj: Any, dotted: str, where: str, *, required: bool
) -> Identity | None:
    user = get_field(source, obj, dotted, dict, where=where, required=required)
    if user is None:
        return None
    login = get_field(source, obj, f"{dotted}.login", str, where=where)
    kind = get_field(source, obj, f"{dotted}.type", str, where=where, required=False)
    return Identity(
        login=login,
        name=get_field(source, obj, f"{dotted}.name", str, where=where, required=False),
        is_bot=kind == "Bot" or login.lower().endswith("[bot]"),
    )


def _commits(source: JsonInput, items: list[Any]) -> tuple[Contributors, list[str]]:
    """The authors and committers of the PR's commits, and the commits in the API's order."""
    contributors = Contributors()
    shas: list[str] = []
    for number, item in enumerate(items, start=1):
        where = f"item {number}"
        sha = get_revision(source, item, "sha", where=where)
        if sha not in shas:
            shas.append(sha)
        message = get_field(source, item, "commit.message", str, where=where, required=False)
        for role in ("author", "committer"):
            email = get_field(
                source, item, f"commit.{role}.email", str, where=where, required=role == "author"
            )
            name = get_field(source, item, f"commit.{role}.name", str, where=where, required=False)
            account = _user(source, item, role, where, required=False)
            contributors.add(
                Identity(
                    name=name,
                    email=email,
                    login=account.login if account else None,
                    is_bot=account.is_bot if account else False,
                )
            )
        contributors.add_co_authors(message or "")
    return contributors, shas


def _review_comment_counts(path: Path) -> dict[int, int]:
    source = JsonInput("github review comments file", str(path), COMMENTS_ENDPOINT)
    counts: dict[int, int] = {}
    for number, item in enumerate(load_json(source, array=True), start=1):
        review_id = get_field(
            source, item, "pull_request_review_id", int, where=f"item {number}", required=False
        )
        if review_id is not None:
            counts[review_id] = counts.get(review_id, 0) + 1
    return counts


def _reviews(
    source: JsonInput, items: list[Any], number: int, comments: dict[int, int] | None
) -> list[RawReview]:
    reviews: list[RawReview] = []
    for index, item in enumerate(items, start=1):
        where = f"item {index}"
        reviewer = _user(source, item, "user", where, required=True)
        assert reviewer is not None  # required=True
        state = get_field(source, item, "state", str, where=where)
        if state not in _STATES:
            raise source.error(
                f"{where} has 'state' = {shown(state)}, expected one of {', '.join(_STATES)}"
            )
        if not isinstance(item, dict) or "commit_id" not in item:
            raise source.error(f"{where} has no 'commit_id'")
        revision = get_revision(source, item, "commit_id", where=where, required=False)
        url = get_field(source, item, "pull_request_url", str, where=where, required=False)
        if url is not None and not url.rstrip("/").endswith(f"/pulls/{number}"):
            other = shown(url)
            other = other[1:-1] if other.endswith('"') else other  # unquoted unless cut
            raise source.error(
                f"{where} belongs to {other}, not to "
                f"pull request #{number} of the pull request file"
            )
        count = 0
        if comments is not None:
            review_id = get_field(source, item, "id", int, where=where)
            count = comments.get(review_id, 0)
        reviews.append(
            RawReview(
                reviewer=reviewer,
                state=_STATES[state],
                submitted_at=get_field(
                    source, item, "submitted_at", str, where=where, required=False
                ),
                revision=revision,
                comments=count,
            )
        )
    return reviews


def collect_github_review(
    pr_path: Path,
    reviews_path: Path,
    commits_path: Path,
    *,
    comments_path: Path | None = None,
    head: str | None = None,
    repository: str | None = None,
    agents: AgentIdentities | None = None,
) -> CodeReview:
    """code-review/v1 for a GitHub pull request from the JSON of its REST API endpoints.

    ``head`` is the revision the image was built from (default: the PR head). Approvals count
    only when they name the PR head and ``head`` is that commit or the PR's merge commit.
    """
    pr_src = JsonInput("github pull request file", str(pr_path), PR_ENDPOINT)
    pr = load_json(pr_src, array=False)
    where = "the pull request"
    number = get_field(pr_src, pr, "number", int, where=where)
    check_head(head)
    pr_head = get_revision(pr_src, pr, "head.sha", where=where)
    merge_sha = get_revision(pr_src, pr, "merge_commit_sha", where=where, required=False)
    author = _user(pr_src, pr, "user", where, required=True)
    assert author is not None  # required=True
    merged_by = _user(pr_src, pr, "merged_by", where, required=False)

    commits_src = JsonInput("github commits file", str(commits_path), COMMITS_ENDPOINT)
    contributors, shas = _commits(commits_src, load_json(commits_src, array=True))
    if pr_head not in shas:
        raise commits_src.error(
            f"no commit is the pull request's head {pr_head} (head.sha in {pr_path}); "
            "the commits must be those of the same pull request"
        )
    listed = get_field(pr_src, pr, "commits", int, where=where, required=False)
    if listed is not None and len(shas) < listed:  # GitHub lists at most 250 per pull request
        raise commits_src.error(
            f"holds {len(shas)} of the pull request's {listed} commits ('commits' in {pr_path}); "
            "the author of a missing one would count as an independent reviewer"
        )

    reviews_src = JsonInput("github reviews file", str(reviews_path), REVIEWS_ENDPOINT)
    comments = _review_comment_counts(comments_path) if comments_path is not None else None
    reviews = _reviews(reviews_src, load_json(reviews_src, array=True), number, comments)

    revision = head or pr_head
    final = pr_head if revision in (pr_head, merge_sha) else revision
    html_url = get_field(pr_src, pr, "html_url", str, where=where, required=False)
    repo_url = repository or get_field(
        pr_src, pr, "base.repo.html_url", str, where=where, required=False
    )
    if repo_url is None and html_url is not None:
        repo_url = html_url.rsplit("/pull/", 1)[0]
    if repo_url is None:
        raise pr_src.error(f"{where} has no 'base.repo.html_url'; pass --repository URL")
    head_ref = get_field(pr_src, pr, "head.ref", str, where=where, required=False)
    review_comments = get_field(pr_src, pr, "review_comments", int, where=where, required=False)
    evidence = ReviewEvidence(
        source=Source(
            repository=public_url(repo_url),
            revision=revision,
            base_revision=get_revision(pr_src, pr, "base.sha", where=where, required=False),
            ref=f"refs/heads/{head_ref}" if head_ref else None,
        ),
        change_request=ChangeRequest(
            system="github",
            id=str(number),
            url=html_url,
            title=get_field(pr_src, pr, "title", str, where=where, required=False),
            author=author,
            merged_by=merged_by,
            merged_at=get_field(pr_src, pr, "merged_at", str, where=where, required=False),
            commits=[*shas, merge_sha] if merge_sha and merge_sha not in shas else shas,
        ),
        final_revision=final,
        reviews=tuple(reviews),
        contributors=contributors,
        review_comments=review_comments if comments is None else None,
    )
    return build_code_review(evidence, agents)

"""Read a GitLab merge request and its approvals (REST API JSON) as review evidence.

GitLab's approvals carry no revision: they are the approvals in force for the merge request's
current head (``sha``). So they count for the final revision only when the image was built from
that head (or from the MR's merge or squash commit); approvals reset by a push are simply absent.
GitLab commits carry names and emails but no usernames, so independence also compares display
names, which errs toward "not independent" (fail closed).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from affidavit.attestations.predicates.provenance import Source
from affidavit.attestations.predicates.review import ChangeRequest, CodeReview, Identity
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

__all__ = ["collect_gitlab_review"]

MR_ENDPOINT = "GET /projects/:id/merge_requests/:iid"
APPROVALS_ENDPOINT = "GET /projects/:id/merge_requests/:iid/approvals"
COMMITS_ENDPOINT = "GET /projects/:id/merge_requests/:iid/commits"

# Project and group access tokens act as users named project_<id>_bot[_<hex>] / group_<id>_bot...
_TOKEN_BOT = re.compile(r"^(?:project|group)_\d+_bot(?:_[0-9a-f]+)?$")


def _user(
    source: JsonInput, obj: Any, dotted: str, where: str, *, required: bool
) -> Identity | None:
    user = get_field(source, obj, dotted, dict, where=where, required=required)
    if user is None:
        return None
    username = get_field(source, obj, f"{dotted}.username", str, where=where)
    bot_flag = get_field(source, obj, f"{dotted}.bot", bool, where=where, required=False)
    return Identity(
        login=username,
        name=get_field(source, obj, f"{dotted}.name", str, where=where, required=False),
        email=get_field(source, obj, f"{dotted}.public_email", str, where=where, required=False)
        or None,
        is_bot=bool(bot_flag)
        or bool(_TOKEN_BOT.match(username))
        or username.lower().endswith("[bot]"),
    )


def _commits(path: Path, contributors: Contributors) -> None:
    source = JsonInput("gitlab commits file", str(path), COMMITS_ENDPOINT)
    for number, item in enumerate(load_json(source, array=True), start=1):
        where = f"item {number}"
        for role in ("author", "committer"):
            contributors.add(
                Identity(
                    name=get_field(source, item, f"{role}_name", str, where=where, required=False),
                    email=get_field(
                        source, item, f"{role}_email", str, where=where, required=role == "author"
                    ),
                )
            )
        message = get_field(source, item, "message", str, where=where, required=False)
        contributors.add_co_authors(message or "")


def collect_gitlab_review(
    mr_path: Path,
    approvals_path: Path,
    *,
    commits_path: Path | None = None,
    head: str | None = None,
    repository: str | None = None,
    agents: AgentIdentities | None = None,
) -> CodeReview:
    """code-review/v1 for a GitLab merge request from the JSON of its REST API endpoints.

    ``commits_path`` (the MR's commits) adds commit authors and committers to the independence
    check; without it only the MR author is excluded.
    """
    mr_src = JsonInput("gitlab merge request file", str(mr_path), MR_ENDPOINT)
    mr = load_json(mr_src, array=False)
    where = "the merge request"
    iid = get_field(mr_src, mr, "iid", int, where=where)
    check_head(head)
    mr_head = get_revision(mr_src, mr, "sha", where=where)
    author = _user(mr_src, mr, "author", where, required=True)
    assert author is not None  # required=True
    merged_by = _user(mr_src, mr, "merged_by", where, required=False)
    merge_shas = {
        get_revision(mr_src, mr, key, where=where, required=False)
        for key in ("merge_commit_sha", "squash_commit_sha")
    } - {None}

    approvals_src = JsonInput("gitlab approvals file", str(approvals_path), APPROVALS_ENDPOINT)
    approvals = load_json(approvals_src, array=False)
    approvals_iid = get_field(
        approvals_src, approvals, "iid", int, where="the object", required=False
    )
    if approvals_iid is not None and approvals_iid != iid:
        raise approvals_src.error(
            f"the approvals are for merge request !{approvals_iid}, not !{iid} of {mr_path}"
        )
    approved_by = get_field(approvals_src, approvals, "approved_by", list, where="the object")
    reviews = []
    for number, item in enumerate(approved_by, start=1):
        user = _user(approvals_src, item, "user", f"approved_by item {number}", required=True)
        assert user is not None  # required=True
        reviews.append(
            RawReview(reviewer=user, state="approved", submitted_at=None, revision=mr_head)
        )

    contributors = Contributors()
    if commits_path is not None:
        _commits(commits_path, contributors)

    revision = head or mr_head
    final = mr_head if revision == mr_head or revision in merge_shas else revision
    web_url = get_field(mr_src, mr, "web_url", str, where=where, required=False)
    repo_url = repository or (web_url.split("/-/merge_requests/", 1)[0] if web_url else None)
    if repo_url is None:
        raise mr_src.error(f"{where} has no 'web_url'; pass --repository URL")
    branch = get_field(mr_src, mr, "source_branch", str, where=where, required=False)
    evidence = ReviewEvidence(
        source=Source(
            repository=public_url(repo_url),
            revision=revision,
            base_revision=get_revision(
                mr_src, mr, "diff_refs.base_sha", where=where, required=False
            ),
            ref=f"refs/heads/{branch}" if branch else None,
        ),
        change_request=ChangeRequest(
            system="gitlab",
            id=str(iid),
            url=web_url,
            title=get_field(mr_src, mr, "title", str, where=where, required=False),
            author=author,
            merged_by=merged_by,
            merged_at=get_field(mr_src, mr, "merged_at", str, where=where, required=False),
        ),
        final_revision=final,
        reviews=tuple(reviews),
        contributors=contributors,
        match_names=True,
        review_comments=get_field(mr_src, mr, "user_notes_count", int, where=where, required=False),
    )
    return build_code_review(evidence, agents)

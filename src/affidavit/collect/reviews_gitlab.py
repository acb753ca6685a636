"""Read a GitLab merge request and its approvals (REST API JSON) as review evidence.

GitLab's approvals carry no revision: they are the approvals in force, and one given before a
later push stays in force unless the project resets approvals on push. With the merge request's
versions and notes (``reviews_gitlab_pushes``) each approval is timed against the pushes and
approved the head current when it was given; without them, every approval is taken to be of the
current head (``sha``), as GitLab shows it. Approvals count for the final revision only when the
image was built from that head (or from the MR's merge or squash commit). GitLab commits carry
names and emails but no usernames, so independence also compares display names, which errs
toward "not independent" (fail closed).
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
from affidavit.collect.reviews_gitlab_pushes import (
    ApprovalTime,
    Push,
    approval_times,
    approved_revision,
    pushes,
)
from affidavit.errors import InputError, UsageError

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


def _commits(path: Path, contributors: Contributors) -> list[str]:
    """Add the MR's commit authors and committers to ``contributors``; the commits, in order."""
    source = JsonInput("gitlab commits file", str(path), COMMITS_ENDPOINT)
    shas: list[str] = []
    for number, item in enumerate(load_json(source, array=True), start=1):
        where = f"item {number}"
        sha = get_revision(source, item, "id", where=where)
        if sha not in shas:
            shas.append(sha)
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
    return shas


def _approved(
    username: str,
    mr_head: str,
    versions: list[Push] | None,
    times: dict[str, ApprovalTime] | None,
) -> tuple[str | None, str | None]:
    """The revision ``username``'s approval in force approved, and when it was given (None:
    not known; such an approval counts for no revision)."""
    when = times.get(username.lower()) if times is not None else None
    if versions is None or len(versions) == 1:  # no push since the head it approved
        return mr_head, when.text if when else None
    if when is None:  # pushed to since it opened, and no note says when this approval came
        return None, None
    return approved_revision(versions, when.at), when.text


def _versions(path: Path, notes_path: Path | None, mr_head: str) -> list[Push]:
    found = pushes(path)
    if found[-1].head != mr_head:
        raise InputError(
            f"gitlab versions file {path}: its newest version's head is {found[-1].head}, the "
            f"merge request's head is {mr_head}",
            hint="fetch the merge request, its approvals, versions and notes together, after "
            "the last push",
        )
    if len(found) > 1 and notes_path is None:
        raise UsageError(
            f"the merge request was pushed to {len(found) - 1} time(s) after it opened, so an "
            "approval in force may be of an earlier revision; --gitlab-notes says when each "
            "approval was given",
            hint="pass --gitlab-notes with the JSON of GET /projects/:id/merge_requests/:iid/"
            "notes (every page), as the GitLab template fetches it",
        )
    return found


def collect_gitlab_review(
    mr_path: Path,
    approvals_path: Path,
    *,
    commits_path: Path | None = None,
    versions_path: Path | None = None,
    notes_path: Path | None = None,
    head: str | None = None,
    repository: str | None = None,
    agents: AgentIdentities | None = None,
) -> CodeReview:
    """code-review/v1 for a GitLab merge request from the JSON of its REST API endpoints.

    ``commits_path`` (the MR's commits) adds commit authors and committers to the independence
    check; without it only the MR author is excluded. ``versions_path`` and ``notes_path`` (the
    MR's versions and notes) time each approval against the pushes: one given before the last
    push approved an earlier revision (``reviews_gitlab_pushes``). Notes without versions say
    when, not what: they are refused.
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
        sha
        for key in ("merge_commit_sha", "squash_commit_sha")
        if (sha := get_revision(mr_src, mr, key, where=where, required=False)) is not None
    }

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
    if notes_path is not None and versions_path is None:
        raise UsageError(
            "--gitlab-notes says when each approval was given, and only --gitlab-versions says "
            "which revision was current then",
            hint="pass --gitlab-versions with the JSON of GET /projects/:id/merge_requests/:iid/"
            "versions (every page)",
        )
    versions = _versions(versions_path, notes_path, mr_head) if versions_path else None
    times = approval_times(notes_path) if notes_path is not None else None
    reviews = []
    for number, item in enumerate(approved_by, start=1):
        user = _user(approvals_src, item, "user", f"approved_by item {number}", required=True)
        assert user is not None and user.login is not None  # required=True; username required
        revision, submitted_at = _approved(user.login, mr_head, versions, times)
        reviews.append(
            RawReview(reviewer=user, state="approved", submitted_at=submitted_at, revision=revision)
        )

    contributors = Contributors()
    # without the MR's commits, none is recorded as held (a policy then refuses AI-involved
    # commits that need review): the merge and squash commits alone would say the MR held
    # nothing else
    shas = _commits(commits_path, contributors) if commits_path is not None else None
    if shas is not None:
        if mr_head not in shas:
            raise InputError(
                f"gitlab commits file {commits_path}: no commit is the merge request's head "
                f"{mr_head} (sha in {mr_path})",
                hint="fetch the merge request and its commits together, after the last push",
            )
        shas += sorted(s for s in merge_shas if s not in shas)

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
            commits=shas,
        ),
        final_revision=final,
        reviews=tuple(reviews),
        contributors=contributors,
        match_names=True,
        review_comments=get_field(mr_src, mr, "user_notes_count", int, where=where, required=False),
    )
    return build_code_review(evidence, agents)

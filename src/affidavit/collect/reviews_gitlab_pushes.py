"""Which revision a GitLab approval approved: its time, against the merge request's pushes.

GitLab's approvals API lists the approvals in force, and neither their revision nor their time.
Unless the project resets approvals on push (a setting of GitLab's paid tiers, which a project
may turn off), an approval stays in force through later pushes: approve a harmless revision, push
an AI-written commit to the authentication code, merge, and the approval read as a review of the
final revision. Two more endpoints say what happened, each with the server's own clock:

- the merge request's diff versions (``GET .../merge_requests/:iid/versions``): one per push,
  with the head it made current and when (``created_at``);
- its notes (``GET .../merge_requests/:iid/notes``): an approval is a system note
  ``approved this merge request`` by the approver, at the time it was given.

An approval approved the head of the newest version pushed before it; it counts for the final
revision only when no push came after it. Commit dates are never used: whoever commits writes
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from affidavit.collect.reviews_input import JsonInput, get_field, get_revision, load_json, shown

__all__ = ["APPROVAL_NOTE", "ApprovalTime", "Push", "approval_times", "approved_revision", "pushes"]

VERSIONS_ENDPOINT = "GET /projects/:id/merge_requests/:iid/versions (every page)"
NOTES_ENDPOINT = "GET /projects/:id/merge_requests/:iid/notes (every page)"

#: The body of the system note GitLab writes when someone approves (older versions capitalise it).
APPROVAL_NOTE = "approved this merge request"


@dataclass(frozen=True)
class Push:
    """One diff version of a merge request: the head a push made current, and when."""

    head: str
    at: datetime


@dataclass(frozen=True)
class ApprovalTime:
    """The latest approval note of one user: when, as the server wrote it and as a time."""

    text: str
    at: datetime


def _time(source: JsonInput, obj: object, where: str) -> tuple[str, datetime]:
    text: str = get_field(source, obj, "created_at", str, where=where)
    problem = source.error(
        f"{where} has 'created_at' = {shown(text)}, expected an RFC 3339 time with its offset"
    )
    try:
        at = datetime.fromisoformat(text)
    except ValueError as e:
        raise problem from e
    if at.tzinfo is None:  # the server's times carry one; without it, times cannot be ordered
        raise problem
    return text, at


def pushes(path: Path) -> list[Push]:
    """The merge request's versions, oldest first (pages joined)."""
    source = JsonInput("gitlab versions file", str(path), VERSIONS_ENDPOINT)
    found = []
    for number, item in enumerate(load_json(source, array=True), start=1):
        where = f"item {number}"
        head = get_revision(source, item, "head_commit_sha", where=where)
        found.append(Push(head=head, at=_time(source, item, where)[1]))
    if not found:
        raise source.error("lists no version (a merge request has one from its first push)")
    return sorted(found, key=lambda push: push.at)


def approval_times(path: Path) -> dict[str, ApprovalTime]:
    """Each user's latest approval note, by lower-case username."""
    source = JsonInput("gitlab notes file", str(path), NOTES_ENDPOINT)
    latest: dict[str, ApprovalTime] = {}
    for number, item in enumerate(load_json(source, array=True), start=1):
        where = f"item {number}"
        if get_field(source, item, "system", bool, where=where, required=False) is not True:
            continue  # a person's comment: whatever it says, it is not an approval
        body: str = get_field(source, item, "body", str, where=where)
        if body.strip().lower() != APPROVAL_NOTE:
            continue
        username: str = get_field(source, item, "author.username", str, where=where)
        text, at = _time(source, item, where)
        key = username.lower()
        if key not in latest or at > latest[key].at:
            latest[key] = ApprovalTime(text=text, at=at)
    return latest


def approved_revision(versions: list[Push], at: datetime) -> str | None:
    """The head current at ``at``: that of the newest version pushed at or before it."""
    current = None
    for push in versions:  # oldest first
        if push.at > at:
            break
        current = push.head
    return current

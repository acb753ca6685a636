"""collect review from GitLab: an approval given before a later push approved an earlier revision.

GitLab's approvals API lists the approvals in force with neither revision nor time; unless the
project resets approvals on push, they stay in force through later pushes. In
``tests/fixtures/gitlab/approved-then-pushed`` (recorded real-shaped responses: a fake of GitLab's
API, which no test can reach) bob approves, then alice pushes a Claude-co-authored commit to the
session-token code, backdated to before his approval, and merges; carol unapproves and approves
again after the push. The versions (one per push, the server's time) and the notes (an approval
is a system note, the server's time) say that only carol's approval is of the final revision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_helpers import GITLAB, gitlab_args, review_json, run_cli

EditFn = Callable[[Path, str, Callable[[Any], Any]], Path]
PUSHED = GITLAB / "approved-then-pushed"


def _timed(folder: Path) -> list[str]:
    return [
        *gitlab_args(folder),
        "--gitlab-versions",
        str(folder / "versions.json"),
        "--gitlab-notes",
        str(folder / "notes.json"),
    ]


def _revisions(folder: Path) -> list[str]:
    """The heads of the merge request's versions, oldest first."""
    versions = json.loads((folder / "versions.json").read_text())
    return [v["head_commit_sha"] for v in sorted(versions, key=lambda v: v["created_at"])]


def test_an_approval_given_before_the_last_push_is_of_the_revision_it_saw(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second, final = _revisions(PUSHED)
    predicate = review_json(capsys, *_timed(PUSHED))
    reviews = {r["reviewer"]["login"]: r for r in predicate["reviews"]}
    assert (reviews["bob"]["revision"], reviews["bob"]["onFinalRevision"]) == (second, False)
    assert reviews["bob"]["submittedAt"] == "2025-06-02T15:47:09.803Z"  # his system note only:
    # the comment he typed after the push, "approved this merge request", is no approval
    assert (reviews["carol"]["revision"], reviews["carol"]["onFinalRevision"]) == (final, True)
    assert reviews["carol"]["submittedAt"] == "2025-06-03T11:14:52.071Z"  # approved again
    assert predicate["summary"]["approvalsOnFinalRevision"] == 1
    assert predicate["summary"]["independentApprovals"] == 1
    assert first not in {r.get("revision") for r in predicate["reviews"]}


def test_without_the_versions_both_approvals_would_count_for_the_ai_commit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the approvals API alone says: both in force, both read as of the head."""
    summary = review_json(capsys, *gitlab_args(PUSHED))["summary"]
    assert (summary["approvalsOnFinalRevision"], summary["independentApprovals"]) == (2, 2)


def test_an_approval_after_every_push_counts(capsys: pytest.CaptureFixture[str]) -> None:
    folder = GITLAB / "approved-final-revision"
    predicate = review_json(capsys, *_timed(folder))
    assert predicate["summary"]["independentApprovals"] == 1
    assert predicate["reviews"][0]["submittedAt"] == "2025-05-13T15:02:10.245Z"


def test_an_approver_without_an_approval_note_approved_no_known_revision(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    def no_carol(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [n for n in notes if n["author"]["username"] != "carol"]

    folder = edited(PUSHED, "notes.json", no_carol)
    predicate = review_json(capsys, *_timed(folder))
    carol = next(r for r in predicate["reviews"] if r["reviewer"]["login"] == "carol")
    assert "revision" not in carol and not carol["onFinalRevision"]
    assert predicate["summary"]["approvalsOnFinalRevision"] == 0


def test_one_version_means_every_approval_is_of_the_head(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    """Never pushed to after it opened: no note is needed (the template fetches them anyway)."""
    folder = edited(PUSHED, "versions.json", lambda versions: versions[:1])
    args = [*gitlab_args(folder), "--gitlab-versions", str(folder / "versions.json")]
    assert review_json(capsys, *args)["summary"]["approvalsOnFinalRevision"] == 2


def test_versions_of_a_pushed_merge_request_need_the_notes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [*gitlab_args(PUSHED), "--gitlab-versions", str(PUSHED / "versions.json")]
    code, out, err = run_cli(capsys, "collect", "review", *args)
    assert (code, out) == (2, "")
    assert err.startswith(
        "error: the merge request was pushed to 2 time(s) after it opened, so an approval in "
        "force may be of an earlier revision; --gitlab-notes says when each approval was given"
    )
    assert "GET /projects/:id/merge_requests/:iid/notes (every page)" in err


def test_notes_without_versions_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*gitlab_args(PUSHED), "--gitlab-notes", str(PUSHED / "notes.json")]
    code, _, err = run_cli(capsys, "collect", "review", *args)
    assert code == 2
    assert err.startswith("error: --gitlab-notes says when each approval was given, and only")


def test_versions_fetched_before_the_last_push_are_refused(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    folder = edited(PUSHED, "versions.json", lambda versions: versions[1:])
    code, _, err = run_cli(capsys, "collect", "review", *_timed(folder))
    assert code == 2
    second, final = _revisions(PUSHED)[1:]
    assert err.startswith(
        f"error: gitlab versions file {folder / 'versions.json'}: its newest version's head is "
        f"{second}, the merge request's head is {final}"
    )


@pytest.mark.parametrize(
    ("name", "change", "problem"),
    [
        (
            "versions.json",
            lambda v: [{**v[0], "created_at": "yesterday"}, *v[1:]],
            "item 1 has 'created_at' = \"yesterday\", expected an RFC 3339 time with its offset",
        ),
        (
            "versions.json",
            lambda v: [{**v[0], "created_at": "2025-06-03T10:58:41"}, *v[1:]],
            "item 1 has 'created_at' = \"2025-06-03T10:58:41\", expected an RFC 3339 time with "
            "its offset",
        ),
        (
            "versions.json",
            lambda v: [{**v[0], "head_commit_sha": "3ef980bc"}, *v[1:]],
            "item 1 has 'head_commit_sha' = \"3ef980bc\", expected a full commit id",
        ),
        ("versions.json", lambda v: [], "lists no version"),
        (
            "notes.json",
            lambda n: [{**x, "author": None} if x["id"] == 1950402 else x for x in n],
            "item 6 has no 'author.username'",  # bob's approval, the sixth newest note
        ),
        ("notes.json", lambda n: n[0], "holds an object, not an array"),
    ],
)
def test_malformed_versions_and_notes_name_the_file_item_and_field(
    capsys: pytest.CaptureFixture[str],
    edited: EditFn,
    name: str,
    change: Callable[[Any], Any],
    problem: str,
) -> None:
    folder = edited(PUSHED, name, change)
    code, out, err = run_cli(capsys, "collect", "review", *_timed(folder))
    assert (code, out) == (2, "")
    label = "versions" if name == "versions.json" else "notes"
    assert err.startswith(f"error: gitlab {label} file {folder / name}: ")
    assert problem in err
    assert err.rstrip().endswith("(every page)")
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("scenario", "approvals", "independent"),
    [
        ("approved-final-revision", 1, 1),
        ("self-approval", 2, 1),
        ("bot-approval", 1, 0),
        ("committer-approval", 2, 1),
    ],
)
def test_where_no_push_came_after_an_approval_the_counts_are_unchanged(
    capsys: pytest.CaptureFixture[str], scenario: str, approvals: int, independent: int
) -> None:
    summary = review_json(capsys, *_timed(GITLAB / scenario))["summary"]
    assert (summary["approvalsOnFinalRevision"], summary["independentApprovals"]) == (
        approvals,
        independent,
    )

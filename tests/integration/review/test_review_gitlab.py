"""collect review from GitLab REST JSON: approvals apply to the MR head, independence (author,
committers by name, token bots, AI co-authors), and exact errors for malformed inputs.

The inputs are the recorded real-shaped responses in tests/fixtures/gitlab.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_helpers import GITLAB, gitlab_args, review_json, run_cli

EditFn = Callable[[Path, str, Callable[[Any], Any]], Path]


@pytest.mark.parametrize(
    ("scenario", "approvals", "independent", "independent_reviewers"),
    [
        ("approved-final-revision", 1, 1, ["bob"]),
        ("self-approval", 2, 1, ["bob"]),
        ("bot-approval", 1, 0, []),
        ("committer-approval", 2, 1, ["carol"]),
    ],
)
def test_scenario_summary(
    capsys: pytest.CaptureFixture[str],
    scenario: str,
    approvals: int,
    independent: int,
    independent_reviewers: list[str],
) -> None:
    pred = review_json(capsys, *gitlab_args(scenario))
    assert pred["summary"]["approvalsOnFinalRevision"] == approvals
    assert pred["summary"]["independentApprovals"] == independent
    assert [r["reviewer"]["login"] for r in pred["reviews"] if r["independent"]] == (
        independent_reviewers
    )


def test_merged_request_is_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    folder = GITLAB / "approved-final-revision"
    mr = json.loads((folder / "mr.json").read_text())
    pred = review_json(capsys, *gitlab_args(folder))
    assert pred["source"] == {
        "repository": "https://gitlab.example.com/acme/platform/ledger-service",
        "revision": mr["sha"],
        "baseRevision": mr["diff_refs"]["base_sha"],
        "ref": "refs/heads/double-entry",
    }
    cr = pred["changeRequest"]
    assert (cr["system"], cr["id"], cr["mergedBy"]["login"], cr["mergedAt"]) == (
        "gitlab",
        "57",
        "bob",
        "2025-05-13T16:40:50.112Z",
    )
    assert pred["reviews"][0]["revision"] == mr["sha"]
    assert pred["summary"]["reviewComments"] == 4


def test_approvals_count_for_the_merge_commit_but_not_another_revision(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = GITLAB / "approved-final-revision"
    merge = json.loads((folder / "mr.json").read_text())["merge_commit_sha"]
    on_merge = review_json(capsys, *gitlab_args(folder), "--head", merge)["summary"]
    assert on_merge["independentApprovals"] == 1
    other = review_json(capsys, *gitlab_args(folder), "--head", "b" * 40)["summary"]
    assert (other["approvalsOnFinalRevision"], other["independentApprovals"]) == (0, 0)


def test_without_commits_only_the_author_is_excluded(capsys: pytest.CaptureFixture[str]) -> None:
    args = gitlab_args("committer-approval")[:4]  # no --gitlab-commits
    assert review_json(capsys, *args)["summary"]["independentApprovals"] == 2


def test_bot_flag_marks_a_bot(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    def bob_is_a_bot(approvals: dict[str, Any]) -> dict[str, Any]:
        approvals["approved_by"][0]["user"]["bot"] = True
        return approvals

    folder = edited(GITLAB / "approved-final-revision", "approvals.json", bob_is_a_bot)
    pred = review_json(capsys, *gitlab_args(folder))
    assert pred["reviews"][0]["reviewer"]["isBot"] is True
    assert pred["summary"]["independentApprovals"] == 0


ENDPOINT = "expected the JSON of GET /projects/:id/merge_requests/:iid/approvals"


def test_approvals_of_another_merge_request(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    folder = edited(
        GITLAB / "approved-final-revision", "approvals.json", lambda a: {**a, "iid": 58}
    )
    code, _, err = run_cli(capsys, "collect", "review", *gitlab_args(folder))
    assert code == 2
    assert err == (
        f"error: gitlab approvals file {folder / 'approvals.json'}: the approvals are for merge "
        f"request !58, not !57 of {folder / 'mr.json'}; {ENDPOINT}\n"
    )


def test_approval_without_user(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    folder = edited(
        GITLAB / "self-approval",
        "approvals.json",
        lambda a: {**a, "approved_by": [a["approved_by"][0], {"id": 202}]},
    )
    code, _, err = run_cli(capsys, "collect", "review", *gitlab_args(folder))
    assert code == 2
    assert err == (
        f"error: gitlab approvals file {folder / 'approvals.json'}: approved_by item 2 has no "
        f"'user'; {ENDPOINT}\n"
    )


def test_approvals_without_approved_by(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    folder = edited(
        GITLAB / "self-approval",
        "approvals.json",
        lambda a: {k: v for k, v in a.items() if k != "approved_by"},
    )
    code, _, err = run_cli(capsys, "collect", "review", *gitlab_args(folder))
    assert code == 2
    assert err == (
        f"error: gitlab approvals file {folder / 'approvals.json'}: the object has no "
        f"'approved_by'; {ENDPOINT}\n"
    )


def test_merge_request_without_sha(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    folder = edited(
        GITLAB / "self-approval", "mr.json", lambda m: {k: v for k, v in m.items() if k != "sha"}
    )
    code, _, err = run_cli(capsys, "collect", "review", *gitlab_args(folder))
    assert code == 2
    assert err == (
        f"error: gitlab merge request file {folder / 'mr.json'}: the merge request has no 'sha'; "
        "expected the JSON of GET /projects/:id/merge_requests/:iid\n"
    )


def test_the_commits_the_merge_request_holds_are_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # every commit of the MR and the commits it landed as: a policy admits AI commits only
    # where the reviewed request holds them (review.coversCommits)
    folder = GITLAB / "approved-final-revision"
    mr = json.loads((folder / "mr.json").read_text())
    ids = [c["id"] for c in json.loads((folder / "commits.json").read_text())]
    landed = sorted(s for s in (mr.get("merge_commit_sha"), mr.get("squash_commit_sha")) if s)
    assert landed  # the fixture was merged
    cr = review_json(capsys, *gitlab_args(folder))["changeRequest"]
    assert cr["commits"] == ids + [s for s in landed if s not in ids]
    # without the MR's commits none is recorded as held (not the merge commit alone)
    bare = review_json(capsys, *gitlab_args(folder)[:4])["changeRequest"]
    assert "commits" not in bare


def test_commits_of_another_merge_request_are_refused(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    folder = edited(GITLAB / "approved-final-revision", "commits.json", lambda c: c[1:] or c)
    mr = json.loads((folder / "mr.json").read_text())
    assert mr["sha"] not in [c["id"] for c in json.loads((folder / "commits.json").read_text())]
    code, out, err = run_cli(capsys, "collect", "review", *gitlab_args(folder))
    assert (code, out) == (2, "")
    assert f"no commit is the merge request's head {mr['sha']}" in err

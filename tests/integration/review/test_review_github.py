"""collect review from GitHub REST JSON: final-revision approvals, supersession, independence,
and the exact errors for inputs that are not what the API returns.

The inputs are the recorded real-shaped responses in tests/fixtures/github (GitHub's API is the
one thing no test can reach); every emitted predicate is validated against the JSON Schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from review_helpers import GITHUB, github_args, review_json, run_cli

from affidavit.collect.reviews import load_agent_identities
from affidavit.collect.tools import builtin_tools
from affidavit.errors import InputError

EditFn = Callable[[Path, str, Callable[[Any], Any]], Path]


@pytest.mark.parametrize(
    ("scenario", "approvals", "independent", "reviewers"),
    [
        ("approved-final-revision", 1, 1, ["bob"]),
        ("approval-then-new-push", 0, 0, ["bob", "carol"]),
        ("self-approval", 2, 0, ["dave", "erin"]),
        ("bot-approval", 1, 0, ["copilot-pull-request-reviewer[bot]", "github-actions[bot]"]),
        ("copilot-authored", 1, 1, ["alice", "bob"]),
        ("changes-requested-after-approval", 1, 1, ["bob", "carol"]),
        ("dismissed", 0, 0, ["bob", "carol"]),
    ],
)
def test_scenario_summary(
    capsys: pytest.CaptureFixture[str],
    scenario: str,
    approvals: int,
    independent: int,
    reviewers: list[str],
) -> None:
    summary = review_json(capsys, *github_args(scenario))["summary"]
    assert summary["approvalsOnFinalRevision"] == approvals
    assert summary["independentApprovals"] == independent
    assert summary["reviewers"] == reviewers


def test_approved_final_revision_records_everything(capsys: pytest.CaptureFixture[str]) -> None:
    folder = GITHUB / "approved-final-revision"
    pred = review_json(
        capsys, *github_args(folder), "--github-review-comments", str(folder / "comments.json")
    )
    head = json.loads((folder / "pr.json").read_text())["head"]["sha"]
    assert pred["source"]["revision"] == head
    assert pred["source"]["repository"] == "https://github.com/acme/payments-api"
    cr = pred["changeRequest"]
    assert (cr["system"], cr["id"], cr["author"]["login"], cr["mergedBy"]["login"]) == (
        "github",
        "1347",
        "alice",
        "bob",
    )
    assert [(r["state"], r["onFinalRevision"], r["comments"]) for r in pred["reviews"]] == [
        ("commented", False, 2),
        ("approved", True, 1),
    ]
    assert pred["summary"]["reviewComments"] == 3


def test_example_in_the_spec_is_what_the_collector_emits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = GITHUB / "approved-final-revision"
    pred = review_json(
        capsys, *github_args(folder), "--github-review-comments", str(folder / "comments.json")
    )
    example = Path(__file__).resolve().parents[3] / "attestations/code-review/v1/example.json"
    expected = json.loads(example.read_text())
    # createdAt is the collector's clock (what orders several review attestations): its shape only
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", pred.pop("createdAt"))
    expected.pop("createdAt")
    assert expected == pred


def test_image_built_from_the_merge_commit_keeps_the_approvals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pr = json.loads((GITHUB / "approved-final-revision" / "pr.json").read_text())
    pred = review_json(
        capsys, *github_args("approved-final-revision"), "--head", pr["merge_commit_sha"]
    )
    assert pred["source"]["revision"] == pr["merge_commit_sha"]
    assert pred["summary"]["independentApprovals"] == 1


def test_image_built_from_another_revision_has_no_approvals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pred = review_json(capsys, *github_args("approved-final-revision"), "--head", "a" * 40)
    assert pred["summary"]["approvalsOnFinalRevision"] == 0
    assert pred["summary"]["independentApprovals"] == 0
    assert [r["onFinalRevision"] for r in pred["reviews"]] == [False, False]


def test_later_changes_requested_supersedes_the_approval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pred = review_json(capsys, *github_args("changes-requested-after-approval"))
    states = [(r["reviewer"]["login"], r["state"]) for r in pred["reviews"]]
    assert states == [
        ("bob", "approved"),
        ("bob", "commented"),
        ("bob", "changes_requested"),
        ("carol", "approved"),
    ]
    assert pred["summary"]["approvalsOnFinalRevision"] == 1  # carol only


def test_comment_after_approval_does_not_withdraw_it(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    folder = edited(
        GITHUB / "changes-requested-after-approval",
        "reviews.json",
        lambda reviews: [r for r in reviews if r["state"] != "CHANGES_REQUESTED"],
    )
    assert review_json(capsys, *github_args(folder))["summary"]["approvalsOnFinalRevision"] == 2


def test_co_author_of_the_agent_commits_is_not_independent(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    def alice_approves(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
        reviews[0]["state"] = "APPROVED"
        return reviews

    folder = edited(GITHUB / "copilot-authored", "reviews.json", alice_approves)
    pred = review_json(capsys, *github_args(folder))
    assert pred["changeRequest"]["author"] == {"login": "Copilot", "isBot": True}
    assert [(r["reviewer"]["login"], r["independent"]) for r in pred["reviews"]] == [
        ("alice", False),
        ("bob", True),
    ]
    assert pred["summary"]["approvalsOnFinalRevision"] == 2
    assert pred["summary"]["independentApprovals"] == 1


def test_agent_identity_reviewer_is_not_independent_even_as_a_user(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    def copilot_user_approves(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bob = reviews[1]
        bob["user"]["login"] = "Copilot"
        bob["user"]["type"] = "User"
        return reviews

    folder = edited(GITHUB / "approved-final-revision", "reviews.json", copilot_user_approves)
    assert review_json(capsys, *github_args(folder))["summary"]["independentApprovals"] == 0


def test_tools_file_adds_agent_identities(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tools = tmp_path / "tools.yaml"
    tools.write_text("tools:\n  - id: inhouse\n    names: [bob]\n")
    pred = review_json(capsys, *github_args("approved-final-revision"), "--tools", str(tools))
    assert pred["summary"]["independentApprovals"] == 0


def test_paginated_responses_are_joined(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = GITHUB / "changes-requested-after-approval"
    reviews = json.loads((folder / "reviews.json").read_text())
    paged = tmp_path / "reviews.json"
    paged.write_text(json.dumps(reviews[:2]) + json.dumps(reviews[2:]))  # gh api --paginate
    slurped = tmp_path / "slurped.json"
    slurped.write_text(json.dumps([reviews[:2], reviews[2:]]))  # gh api --paginate --slurp
    for path in (paged, slurped):
        args = github_args(folder)
        args[3] = str(path)
        assert review_json(capsys, *args)["summary"]["approvalsOnFinalRevision"] == 1


ENDPOINT_REVIEWS = "expected the JSON of GET /repos/{o}/{r}/pulls/{n}/reviews"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: [r[0], r[1], {k: v for k, v in r[1].items() if k != "commit_id"}],
         "item 3 has no 'commit_id'"),
        (lambda r: [{**r[0], "state": "LGTM"}], 'item 1 has \'state\' = "LGTM", expected one of '
         "APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING"),
        (lambda r: [{**r[0], "user": None}], "item 1 has no 'user' (null)"),
        (lambda r: [{**r[0], "commit_id": "abc123"}],
         "item 1 has 'commit_id' = \"abc123\", expected a full commit id"),
        (lambda r: [{**r[0], "pull_request_url": "https://api.github.com/repos/acme/payments-api/pulls/9"}],
         "item 1 belongs to https://api.github.com/repos/acme/payments-api/pulls/9, not to pull "
         "request #1347 of the pull request file"),
        (lambda r: {"message": "Not Found"}, "holds an object, not an array"),
    ],
)  # fmt: skip
def test_malformed_reviews_name_file_item_and_field(
    capsys: pytest.CaptureFixture[str], edited: EditFn, change: Callable[[Any], Any], problem: str
) -> None:
    folder = edited(GITHUB / "approved-final-revision", "reviews.json", change)
    code, out, err = run_cli(capsys, "collect", "review", *github_args(folder))
    assert (code, out) == (2, "")
    assert (
        err
        == f"error: github reviews file {folder / 'reviews.json'}: {problem}; {ENDPOINT_REVIEWS}\n"
    )


def test_invalid_json_is_an_input_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "pr.json"
    bad.write_text('{"number": 1,,}')
    args = github_args("approved-final-revision")
    args[1] = str(bad)
    code, _, err = run_cli(capsys, "collect", "review", *args)
    assert code == 2
    assert err == (
        f"error: github pull request file {bad}: is not valid JSON (line 1, column 14: Expecting "
        "property name enclosed in double quotes); expected the JSON of GET /repos/{o}/{r}/pulls/{n}\n"
    )


def test_missing_head_sha_in_pr(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    def drop_head_sha(pr: dict[str, Any]) -> dict[str, Any]:
        del pr["head"]["sha"]
        return pr

    folder = edited(GITHUB / "approved-final-revision", "pr.json", drop_head_sha)
    code, _, err = run_cli(capsys, "collect", "review", *github_args(folder))
    assert code == 2
    assert err == (
        f"error: github pull request file {folder / 'pr.json'}: the pull request has no "
        "'head.sha'; expected the JSON of GET /repos/{o}/{r}/pulls/{n}\n"
    )


def test_missing_commit_author_email(capsys: pytest.CaptureFixture[str], edited: EditFn) -> None:
    def drop_email(commits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        del commits[1]["commit"]["author"]["email"]
        return commits

    folder = edited(GITHUB / "approved-final-revision", "commits.json", drop_email)
    code, _, err = run_cli(capsys, "collect", "review", *github_args(folder))
    assert code == 2
    assert err == (
        f"error: github commits file {folder / 'commits.json'}: item 2 has no "
        "'commit.author.email'; expected the JSON of GET /repos/{o}/{r}/pulls/{n}/commits\n"
    )


def test_commits_of_another_pull_request_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = github_args("approved-final-revision")
    args[5] = str(GITHUB / "dismissed" / "commits.json")
    pr = json.loads((GITHUB / "approved-final-revision" / "pr.json").read_text())
    code, _, err = run_cli(capsys, "collect", "review", *args)
    assert code == 2
    assert err == (
        f"error: github commits file {args[5]}: no commit is the pull request's head "
        f"{pr['head']['sha']} (head.sha in {args[1]}); the commits must be those of the same pull "
        "request; expected the JSON of GET /repos/{o}/{r}/pulls/{n}/commits\n"
    )


def test_unreadable_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = github_args("approved-final-revision")
    args[3] = str(tmp_path / "nope.json")
    code, _, err = run_cli(capsys, "collect", "review", *args)
    assert code == 2
    assert err == (
        f"error: github reviews file {args[3]}: cannot be read (No such file or directory); "
        f"{ENDPOINT_REVIEWS}\n"
    )


def test_a_broken_tools_file_is_an_error_not_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """collect review reads --tools with the same strict reader as collect provenance."""
    tools = tmp_path / "tools.yaml"
    tools.write_text("tools:\n  - id: inhouse\n    logins: bob\n")  # a string, not a list
    with pytest.raises(InputError) as e:
        load_agent_identities(tools)
    assert e.value.message.startswith(f"{tools}: invalid tools registry at tools.0.logins: ")


def test_agent_identities_come_from_the_tools_registry() -> None:
    """One source: every identity the provenance collector knows is an agent for reviews too."""
    agents = load_agent_identities()
    for tool in builtin_tools():
        assert {e.lower() for e in tool.emails} <= agents.emails
        assert {x.lower() for x in (*tool.logins, *tool.names)} <= agents.logins
    assert "copilot-pull-request-reviewer[bot]" in agents.logins


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 100_000 + "]" * 100_000, "is not valid JSON (nested too deeply to read)"),
        (
            '{"number": ' + "9" * 5000 + "}",
            "is not valid JSON (Exceeds the limit (4300 digits) for integer string conversion: "
            "value has 5000 digits; use sys.set_int_max_str_digits() to increase the limit)",
        ),
        (
            '{"number": "' + "x" * 3_000_000 + '"}',
            "the pull request has 'number' = \"" + "x" * 79 + "... (3000002 characters), "
            "expected int",
        ),
    ],
    ids=["deep", "long-integer", "huge-field"],
)
def test_odd_json_is_a_short_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, problem: str
) -> None:
    """A deeply nested file ended in RecursionError and a 5000-digit number in ValueError (stack
    traces); a wrong field of megabytes was quoted whole in the message."""
    bad = tmp_path / "pr.json"
    bad.write_text(text)
    args = github_args("approved-final-revision")
    args[1] = str(bad)
    code, _, err = run_cli(capsys, "collect", "review", *args)
    assert code == 2
    assert err == (
        f"error: github pull request file {bad}: {problem}; "
        "expected the JSON of GET /repos/{o}/{r}/pulls/{n}\n"
    )


def test_a_commits_file_missing_commits_of_the_pull_request_is_refused(
    capsys: pytest.CaptureFixture[str], edited: EditFn
) -> None:
    """GitHub lists at most 250 commits of a pull request (and a page can be lost): the author
    of a commit past them was no contributor, so their approval counted as independent."""

    def grow(pr: dict[str, Any]) -> dict[str, Any]:
        return {**pr, "commits": 300}

    folder = edited(GITHUB / "approved-final-revision", "pr.json", grow)
    code, out, err = run_cli(capsys, "collect", "review", *github_args(folder))
    assert (code, out) == (2, "")
    assert err == (
        f"error: github commits file {folder / 'commits.json'}: holds 2 of the pull request's "
        f"300 commits ('commits' in {folder / 'pr.json'}); the author of a missing one would "
        "count as an independent reviewer; expected the JSON of "
        "GET /repos/{o}/{r}/pulls/{n}/commits\n"
    )


def test_the_commits_the_pull_request_holds_are_recorded(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the PR's commits in the API's order, then its merge commit (the squash commit, once
    # squashed): a policy admits AI commits only where the reviewed request holds them
    folder = GITHUB / "approved-final-revision"
    pr = json.loads((folder / "pr.json").read_text())
    shas = [c["sha"] for c in json.loads((folder / "commits.json").read_text())]
    cr = review_json(capsys, *github_args(folder))["changeRequest"]
    assert cr["commits"] == [*shas, pr["merge_commit_sha"]]

"""review.coversCommits: a change request's approval covers the commits it holds, not every
commit of the provenance's range.

The hole it closes: an AI commit pushed to the branch without review, then an approved one-line
docs change. The second build's provenance (from the last release, or any base before the pull
request's own) holds the AI commit, and before this rule the docs change's approval stood in
for it: the image was admitted.
"""

from __future__ import annotations

from typing import Any

from affidavit.policy import Decision, PolicyIndex, evaluate
from policy_builders import (
    NOW,
    REV,
    approval,
    change,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    review,
)

PUSHED = "5a1d" + "0" * 36  # an AI commit pushed straight to the branch, never reviewed
DOCS = (("docs/usage.md", "low"),)


def _run(ix: PolicyIndex, prov: dict[str, Any], rev: dict[str, Any]) -> Decision:
    c = ctx()
    return evaluate(c, {c.images[0]: evidence(prov, rev)}, ix, now=NOW, decision_id="d-1")


def _ride_along() -> dict[str, Any]:
    """The range from the last release: the pushed AI commit to src/auth, then the reviewed PR
    whose only commit (REV) is a docs change."""
    return provenance(
        change(PUSHED, "generated", files=(("src/auth/tokens.py", "critical"),)),
        change(REV, "none", files=DOCS),
    )


def test_an_unreviewed_ai_commit_riding_along_with_a_reviewed_change_is_refused() -> None:
    d = _run(index(), _ride_along(), review(approval("bob")))
    assert d.outcome == "denied"
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    (v,) = d.violations
    assert v.found == (
        f"AI-involved commit {PUSHED[:12]} (tier critical), which "
        "https://github.com/example/shop/pull/42 does not hold (1 commit held: its own and the "
        "commit it landed as)"
    )
    assert v.expected == "every commit whose tier needs review held by the reviewed change request"
    assert "propose them in a pull or merge request of their own" in v.fix


def test_the_same_commits_held_by_the_reviewed_request_pass() -> None:
    held = review(approval("bob"), commits=(PUSHED, REV))
    assert _run(index(), _ride_along(), held).outcome == "allowed"


def test_commits_are_compared_as_hex_in_any_case() -> None:
    held = review(approval("bob"), commits=(PUSHED.upper(), REV.upper()))
    assert _run(index(), _ride_along(), held).outcome == "allowed"


def test_a_commit_no_tier_rule_covers_needs_no_review() -> None:
    # an AI docs commit outside the request: the policy asks no review of tier low
    prov = provenance(change(PUSHED, "generated", files=DOCS), change(REV, "none", files=DOCS))
    assert _run(index(), prov, review(approval("bob"))).outcome == "allowed"


def test_a_human_commit_outside_the_request_needs_nothing_under_ai_scope() -> None:
    prov = provenance(
        change(PUSHED, "none", files=(("src/auth/tokens.py", "critical"),)),
        change(REV, "generated"),
    )
    assert _run(index(), prov, review(approval("bob"))).outcome == "allowed"


def test_under_applies_to_all_every_commit_of_the_tier_must_be_held() -> None:
    require = {"tiers": {"critical": {"independentApprovals": 1, "appliesTo": "all"}}}
    prov = provenance(
        change(PUSHED, "none", files=(("src/auth/tokens.py", "critical"),)),
        change(REV, "generated"),
    )
    d = _run(index([policy(require=require)]), prov, review(approval("bob")))
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    assert d.violations[0].found.startswith(f"commit {PUSHED[:12]} (tier critical), which")


def test_every_commit_outside_is_named_up_to_five() -> None:
    pushed = [f"{i:x}" * 40 for i in range(1, 8)]
    prov = provenance(*(change(c) for c in pushed), change(REV))
    d = _run(index(), prov, review(approval("bob")))
    (v,) = d.violations
    shown = ", ".join(f"AI-involved commit {c[:12]} (tier critical)" for c in pushed[:5])
    assert v.found.startswith(shown + " +2 more, which")


def test_a_review_that_lists_no_commits_is_refused_with_the_fix() -> None:
    old = review(approval("bob"))
    del old["changeRequest"]["commits"]  # collected before the field existed
    d = _run(index(), provenance(), old)
    (v,) = d.violations
    assert v.rule == "review.coversCommits"
    assert v.found == (
        f"AI-involved commit {REV[:12]} (tier critical), and a review of "
        "https://github.com/example/shop/pull/42 that lists no commits (collected before "
        "Affidavit recorded the commits a change request holds, or from GitLab without the "
        "merge request's commits)"
    )
    assert v.fix.startswith(
        "collect the review of https://github.com/example/shop/pull/42 again with this "
        "version of Affidavit (from GitLab with --gitlab-commits), then run `affidavit collect "
        "review"
    )
    assert v.fix.endswith(
        " (until every pipeline does, `require.reviewCoversCommits: false` in "
        "AccountabilityPolicy/baseline and every other policy that applies turns the rule off)"
    )


def test_every_policy_turning_it_off_restores_the_old_judgement() -> None:
    off = {
        "provenance": {"required": True},
        "tiers": {"critical": {"independentApprovals": 1}},
        "reviewCoversCommits": False,
    }
    assert _run(index([policy(require=off)]), _ride_along(), review(approval("bob"))).outcome == (
        "allowed"
    )
    # one policy turning it off cannot weaken another that is silent (the default holds)
    both = index([policy(require=off), policy("strict")])
    d = _run(both, _ride_along(), review(approval("bob")))
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("review.coversCommits", "AccountabilityPolicy/strict")
    ]


def test_a_trailer_review_holds_only_what_its_head_vouches_for() -> None:
    # what `collect review --trailers` records: the head commit (a merge: what it brought in),
    # not a commit pushed before it, whose message carries no approval of its own
    trusting = {
        "provenance": {"required": True},
        "tiers": {"critical": {"independentApprovals": 1}},
        "platformReview": False,
    }
    rev = review(approval("bob"))
    rev["changeRequest"] = {
        "system": "trailers",
        "id": f"{'b' * 12}..{REV[:12]}",
        "author": {"name": "Alice", "email": "alice@example.com"},
        "commits": [REV],
    }
    d = _run(index([policy(require=trusting)]), _ride_along(), rev)
    assert [v.rule for v in d.violations] == ["review.coversCommits"]
    rev["changeRequest"]["commits"] = [PUSHED, REV]  # a merge that brought PUSHED in
    assert _run(index([policy(require=trusting)]), _ride_along(), rev).outcome == "allowed"

"""Tests that approvals read from commit trailers are no review unless every policy trusts them.

``affidavit collect review --trailers`` reads ``Reviewed-by:``/``Approved-by:`` trailers on the
head commit; the pipeline templates fall back to it when a build has no pull or merge request.
A trailer is words in a commit message, which whoever commits writes: before, a direct push
carrying ``Reviewed-by: Bob <bob@example.com>`` satisfied ``independentApprovals`` on the
critical tier, signed by CI like any review. ``require.platformReview`` (omitted in an
AccountabilityPolicy = true, strictest wins) now refuses such approvals as ``review.platform``;
a cluster whose trailers are written by a system it trusts (Gerrit's submit) says false.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.explain import requirements
from policy_builders import (
    IMAGE,
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

RANGE = f"{'b' * 40}..{REV}"


def _trailer_review(*reviews: dict[str, Any]) -> dict[str, Any]:
    """What ``collect review --trailers`` signs for a direct push carrying the trailers."""
    predicate = review(*reviews, merged_by=None)
    predicate["changeRequest"] = {
        "system": "trailers",
        "id": RANGE,
        "author": {"name": "Alice", "email": "alice@example.com"},
        "commits": [REV],  # the range base..REV is the change
    }
    return predicate


def _run(ix: PolicyIndex, rev: dict[str, Any], prov: dict[str, Any] | None = None) -> Decision:
    c = ctx()
    prov = prov if prov is not None else provenance()
    return evaluate(c, {c.images[0]: evidence(prov, rev)}, ix, now=NOW, decision_id="d-1")


def test_trailer_approvals_are_refused_by_default() -> None:
    d = _run(index(), _trailer_review(approval("bob")))
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: review.platform (AccountabilityPolicy/baseline): found approvals read from "
        f"the commit trailers of {RANGE} (approved by: bob), which whoever commits writes; "
        "expected approvals recorded by a code-review platform (GitHub, GitLab) on the final "
        "revision (AI-involved changes touch tier critical: src/auth/login.py); fix: build from "
        "the merged pull or merge request and collect the review its platform recorded (if a "
        "system you trust writes these trailers, as Gerrit's submit does, set "
        "`require.platformReview: false` in AccountabilityPolicy/baseline and every other policy "
        "that applies instead), then run `affidavit collect review --github-pr pr.json "
        "--github-reviews reviews.json --github-commits commits.json "
        f"--head {REV} --output review.json && affidavit attest {IMAGE} --predicate review.json "
        "--type https://affidavit.dev/attestations/code-review/v1 --key <key>`"
    ]


def test_the_same_approval_recorded_by_a_platform_passes() -> None:
    assert _run(index(), review(approval("bob"))).outcome == "allowed"


def test_a_policy_that_trusts_its_trailers_counts_them() -> None:
    trusting = index([policy(require=_require(platformReview=False))])
    assert _run(trusting, _trailer_review(approval("bob"))).outcome == "allowed"
    # still counted as what they are: no approval is no approval
    d = _run(trusting, _trailer_review())
    assert [v.rule for v in d.violations] == ["review.critical.independentApprovals"]


def test_one_policy_trusting_trailers_cannot_weaken_a_silent_one() -> None:
    ix = index([policy(require=_require(platformReview=False)), policy("strict")])
    d = _run(ix, _trailer_review(approval("bob")))
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("review.platform", "AccountabilityPolicy/strict")
    ]


def test_a_change_no_tier_rule_covers_needs_no_platform() -> None:
    docs = provenance(change(files=(("docs/readme.md", "low"),)))
    assert _run(index(), _trailer_review(), docs).outcome == "allowed"


@pytest.mark.parametrize("rule", ["review.platform", "review.coversCommits"])
def test_explain_lists_the_rule_and_its_default(rule: str) -> None:
    c = ctx()
    eff = index().effective(
        cluster=c.cluster,
        region=c.region,
        namespace=c.namespace,
        namespace_labels=c.namespace_labels,
        image=IMAGE,
    )
    assert eff is not None
    (entry,) = [r for r in requirements(eff) if r[0] == rule]
    assert entry[1] == "true"
    assert str(entry[2]) == "AccountabilityPolicy/baseline (default)"


def _require(**extra: Any) -> dict[str, Any]:
    return {
        "provenance": {"required": True},
        "tiers": {"critical": {"independentApprovals": 1}},
        "consistentRevision": True,
    } | extra


def test_a_merger_read_from_a_committer_field_is_no_independent_release_approver() -> None:
    # what collect review --trailers records for a merge commit: its committer as mergedBy
    merged = _trailer_review(approval("bob"))
    merged["changeRequest"]["mergedBy"] = {"name": "Mia Release", "email": "mia@example.com"}
    require = _require(independentReleaseApprover=True)
    d = _run(index([policy(require=require)]), merged)
    assert [v.rule for v in d.violations] == ["review.platform", "review.releaseApprover"]
    (release,) = [v for v in d.violations if v.rule == "review.releaseApprover"]
    assert release.found == (
        f"merged by mia@example.com as the committer field of change {RANGE}'s last commit "
        "says, which whoever commits writes (`require.platformReview`)"
    )
    trusting = index([policy(require=require | {"platformReview": False})])
    assert _run(trusting, merged).outcome == "allowed"

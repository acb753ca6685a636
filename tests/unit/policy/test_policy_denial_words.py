"""Tests the words of a denial: who can satisfy a reviewer-group rule (its members, minus the
change's author and committers), and a fix command shared by several violations given once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from affidavit.policy import evaluate
from affidavit.policy.decision import Decision, Violation
from affidavit.policy.messages import admission_message
from policy_builders import (
    IMAGE,
    PR_URL,
    approval,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    review,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
GROUP_RULE = {"critical": {"independentApprovals": 1, "reviewerGroups": ["secure-code-reviewers"]}}


def _group_fix(groups: dict[str, list[str]], author: str) -> str:
    ix = index(
        [policy(groups=groups, require={"provenance": {"required": True}, "tiers": GROUP_RULE})]
    )
    rv = review(approval("bo"))
    rv["changeRequest"]["author"] = {"login": author}
    decision = evaluate(ctx(), {IMAGE: evidence(provenance(), rv)}, ix, now=NOW, decision_id="d-1")
    (v,) = decision.violations
    assert v.rule == "review.critical.reviewerGroups"
    return v.fix.split(", then run", 1)[0]


def test_a_group_rule_names_the_members_who_can_approve_but_not_the_author() -> None:
    fix = _group_fix({"secure-code-reviewers": ["rita", "sam", "tess"]}, author="sam")
    assert fix == (
        "get an approval from a member of `secure-code-reviewers` (rita, tess) on the final "
        f"revision of {PR_URL}"
    )


def test_a_group_whose_only_member_wrote_the_change_says_so() -> None:
    fix = _group_fix({"secure-code-reviewers": ["sam"]}, author="sam")
    assert fix == (
        "get an approval from a member of `secure-code-reviewers` (none but the change's author "
        f"or committers: add a reviewer to the group) on the final revision of {PR_URL}"
    )


def _violation(rule: str, fix: str) -> Violation:
    return Violation(rule, "AccountabilityPolicy/p", "X", "Y", fix, IMAGE)


def test_a_command_several_violations_end_with_is_given_once() -> None:
    review_cmd = "affidavit collect review --trailers --repo . && affidavit attest ..."
    d = Decision(
        id="d-2", time="2026-03-01T00:00:00Z", cluster="c", region="r", namespace="shop",
        kind="Deployment", name="web", operation="CREATE", user="u", outcome="denied",
        mode="Enforce", images=(), evidence=(), policies=(), exception=None,
        violations=(
            _violation("review.a", f"get 1 more approval, then run `{review_cmd}`"),
            _violation("provenance.present", "run `affidavit collect provenance ...`"),
            _violation("review.b", f"get an approval from `security`, then run `{review_cmd}`"),
        ),
    )  # fmt: skip
    assert admission_message(d) == (
        "Affidavit denied Deployment/web in namespace shop (decision d-2): 3 violations\n"
        f"- {IMAGE}: review.a (AccountabilityPolicy/p): found X; expected Y; fix: get 1 more "
        "approval\n"
        f"- {IMAGE}: provenance.present (AccountabilityPolicy/p): found X; expected Y; fix: run "
        "`affidavit collect provenance ...`\n"
        f"- {IMAGE}: review.b (AccountabilityPolicy/p): found X; expected Y; fix: get an approval "
        "from `security`\n"
        f"then run, once for all of the above: `{review_cmd}`\n"
        "run `affidavit explain --decision d-2` for the full record"
    )
    # a command only one violation ends with stays in its fix
    alone = admission_message(replace(d, violations=d.violations[:1]))
    assert f"fix: get 1 more approval, then run `{review_cmd}`" in alone
    assert "once for all" not in alone

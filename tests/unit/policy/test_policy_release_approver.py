"""Table tests of the PCI DSS 6.2.3.1 release-approver rule (``review.releaseApprover``).

Whoever merged an AI-involved change must be neither its author nor one of its reviewers, matched
by login or email without regard to case; a change with no recorded merger is refused. Covers the
exact violation texts, the rule's scope (AI-involved changes, pci-dss and FedRAMP presets only),
strictest-wins combination and what ``explain`` shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.attestations.evidence import ImageEvidence
from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.combine import Origin, Req
from affidavit.policy.explain import explain_policy
from policy_builders import (
    IMAGE,
    NOW,
    PR_URL,
    REV,
    approval,
    change,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    pseudonymous,
    region_policy,
    review,
)

REVIEW_TYPE = "https://affidavit.dev/attestations/code-review/v1"
ATTEST_REVIEW = f"affidavit attest {IMAGE} --predicate review.json --type {REVIEW_TYPE} --key <key>"
COLLECT_REVIEW = (
    "affidavit collect review --github-pr pr.json --github-reviews reviews.json "
    f"--github-commits commits.json --head {REV} --output review.json"
)
PCI = "preset/pci-dss via AccountabilityPolicy/baseline"
EXPECTED = (
    f"{PR_URL} merged by someone who is neither its author nor one of its reviewers "
    "(AI-involved changes: src/auth/login.py)"
)
RELAND = (
    f"have someone who neither wrote nor reviewed {PR_URL} merge it (re-land it in a new change "
    f"request if it is already merged), then run `{COLLECT_REVIEW} && {ATTEST_REVIEW}`"
)
UNMERGED = (
    f"have someone who neither wrote nor reviewed {PR_URL} merge it, and collect the review "
    f"after the merge so that mergedBy is recorded, then run `{COLLECT_REVIEW} && {ATTEST_REVIEW}`"
)


def message(
    found: str, fix: str = RELAND, source: str = PCI, control: str = "PCI DSS 6.2.3.1"
) -> str:
    return (
        f"{IMAGE}: review.releaseApprover ({source} [{control}]): found {found}; "
        f"expected {EXPECTED}; fix: {fix}"
    )


#: Where the test registry keeps data, for the presets that require a residency (us, eu).
LOCATED = region_policy(
    "located",
    ["*"],
    evidence={"registryLocations": [{"registry": "registry.example", "location": "us"}]},
)


def pci(*jurisdictions: str) -> PolicyIndex:
    """The baseline policy under ``jurisdictions`` (pci-dss unless named otherwise), its
    registry located in the us."""
    return index([policy(jurisdictions=list(jurisdictions or ("pci-dss",)))], [LOCATED])


def reviewed(merged_by: dict[str, Any] | None, *extra: dict[str, Any]) -> ImageEvidence:
    """Provenance of an AI change to src/auth/login.py, approved by rita and sam (all the
    pci-dss review rules hold), plus any ``extra`` reviews, merged by ``merged_by``."""
    return evidence(
        provenance(), review(approval("rita"), approval("sam"), *extra, merged_by=merged_by)
    )


def run(ix: PolicyIndex, ev: ImageEvidence) -> Decision:
    return evaluate(ctx(), {IMAGE: ev}, ix, now=NOW, decision_id="d-1")


COMMENTED = {
    "reviewer": {"login": "carl", "email": "carl@example.com"},
    "state": "commented",
    "revision": REV,
    "onFinalRevision": True,
}


@pytest.mark.parametrize(
    ("merged_by", "extra", "found"),
    [
        pytest.param({"login": "alice"}, (), f"merged by alice, who is the author of {PR_URL}",
                     id="author-login"),
        pytest.param({"login": "ALICE", "name": "Alice"}, (),
                     f"merged by ALICE, who is the author of {PR_URL}", id="author-login-case"),
        pytest.param({"email": "Alice@Example.com"}, (),
                     f"merged by Alice@Example.com, who is the author of {PR_URL}",
                     id="author-email"),
        pytest.param({"login": "sam"}, (), f"merged by sam, who is a reviewer of {PR_URL}",
                     id="approving-reviewer"),
        pytest.param({"login": "Rita"}, (), f"merged by Rita, who is a reviewer of {PR_URL}",
                     id="approving-reviewer-case"),
        pytest.param({"login": "carl-admin", "email": "CARL@example.com"}, (COMMENTED,),
                     f"merged by carl-admin, who is a reviewer of {PR_URL}",
                     id="commenting-reviewer-by-email"),
        pytest.param({"name": "Mia Release"}, (),
                     "merged by Mia Release, with no login or email recorded to compare",
                     id="merger-without-identity"),
    ],
)  # fmt: skip
def test_merge_by_the_author_or_a_reviewer_is_denied(
    merged_by: dict[str, Any], extra: tuple[dict[str, Any], ...], found: str
) -> None:
    d = run(pci(), reviewed(merged_by, *extra))
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [message(found)]


def test_merge_by_a_third_person_is_admitted() -> None:
    d = run(pci(), reviewed({"login": "mia", "email": "mia@example.com", "name": "Mia Release"}))
    assert d.outcome == "allowed"
    assert d.violations == ()


def test_no_merged_by_is_denied() -> None:
    d = run(pci(), reviewed(None))
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        message(f"no mergedBy recorded for {PR_URL}", UNMERGED)
    ]


def test_fedramp_moderate_takes_the_rule_from_pci_dss_review_rules() -> None:
    d = run(pci("us-fedramp-moderate"), reviewed({"login": "alice"}))
    assert [v.message for v in d.violations] == [
        message(
            f"merged by alice, who is the author of {PR_URL}",
            source="preset/us-fedramp-moderate via AccountabilityPolicy/baseline",
            control="NIST SP 800-53 CM-3",
        )
    ]


@pytest.mark.parametrize("jurisdictions", [[], ["soc2"], ["eu"], ["slsa-source-l4"]])
def test_policy_without_pci_dss_does_not_check_the_merger(jurisdictions: list[str]) -> None:
    in_eu = {"registryLocations": [{"registry": "registry.example", "location": "eu-west-1"}]}
    ix = index([policy(jurisdictions=jurisdictions)], [region_policy("eu", ["*"], evidence=in_eu)])
    for merged_by in ({"login": "alice"}, None):
        rev = review(approval("rita"), approval("sam"), merged_by=merged_by)
        ev = evidence(pseudonymous(provenance()), pseudonymous(rev))  # eu: people by pseudonyms
        d = run(ix, ev)
        assert [v.rule for v in d.violations] == [], (jurisdictions, merged_by)


def test_change_without_ai_involvement_is_not_checked() -> None:
    human = provenance(change(involvement="none"))
    d = run(pci(), evidence(human, review(approval("rita"), approval("sam"), merged_by=None)))
    assert d.outcome == "allowed"
    # The same merge, for an undeclared change: pci-dss treats unknown as AI-involved.
    unknown = provenance(change(involvement="unknown"))
    d = run(pci(), evidence(unknown, review(approval("rita"), approval("sam"), merged_by=None)))
    assert [v.rule for v in d.violations] == ["review.releaseApprover"]


def test_missing_review_is_reported_once() -> None:
    d = run(pci(), evidence(provenance()))
    assert [v.rule for v in d.violations] == ["review.present"]


def test_rule_alone_fails_closed_without_a_review() -> None:
    ix = index(
        [policy(require={"provenance": {"required": True}, "independentReleaseApprover": True})]
    )
    d = run(ix, evidence(provenance()))
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: review.releaseApprover (AccountabilityPolicy/baseline): found no verified "
        "code-review/v1 attestation; expected a code-review/v1 attestation naming who merged "
        "the change (AI-involved changes: src/auth/login.py); fix: have the change merged by "
        "someone who neither wrote nor reviewed it, then run `affidavit collect review ... "
        f"--output review.json && {ATTEST_REVIEW}`"
    ]
    ok = run(ix, evidence(provenance(), review(merged_by={"login": "mia"})))
    assert ok.outcome == "allowed"


def test_combination_is_strictest_wins_and_keeps_the_origin() -> None:
    off = policy("lenient", require={"independentReleaseApprover": False})
    on = policy("strict", require={"independentReleaseApprover": True})
    for order in ([off, on], [on, off]):
        e = index(order).effective(
            cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
        )
        assert e is not None
        assert e.independent_release_approver == Req(True, Origin("AccountabilityPolicy/strict"))
    e = index([off]).effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert e is not None and e.independent_release_approver is None


@pytest.mark.parametrize(
    ("jurisdiction", "line"),
    [
        ("pci-dss", f"review.releaseApprover (AI-involved changes): true <- {PCI} [PCI DSS 6.2.3.1]"),
        ("us-fedramp-moderate", "review.releaseApprover (AI-involved changes): true <- "
         "preset/us-fedramp-moderate via AccountabilityPolicy/baseline [NIST SP 800-53 CM-3]"),
    ],
)  # fmt: skip
def test_explain_shows_the_requirement_with_its_origin(jurisdiction: str, line: str) -> None:
    e = pci(jurisdiction).effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert e is not None
    body = [" ".join(x.split()) for x in explain_policy(e).splitlines()]
    assert line in body
    plain = index([policy()]).effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert plain is not None
    assert "releaseApprover" not in explain_policy(plain)


def test_merge_by_someone_who_pushed_into_the_change_is_denied() -> None:
    # bob opened it, mallory pushed an AI commit into it, rita and sam approved, mallory
    # merged: she is neither its author nor a reviewer, yet released what she wrote
    rev = review(approval("rita"), approval("sam"), merged_by={"login": "mallory"})
    rev["changeRequest"]["committers"] = [{"login": "alice"}, {"login": "Mallory"}]
    d = run(pci(), evidence(provenance(), rev))
    assert [v.message for v in d.violations] == [
        message(f"merged by mallory, who committed to {PR_URL}")
    ]
    rev["changeRequest"]["mergedBy"] = {"login": "mia"}
    assert run(pci(), evidence(provenance(), rev)).outcome == "allowed"

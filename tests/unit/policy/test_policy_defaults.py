"""The secure defaults of a matched policy, and which of several attestations counts.

Issue 7: a policy that says nothing about provenance still requires it (13); the review must be
for the revision the provenance describes (14); an omitted failurePolicy is Fail and beats
another policy's Ignore (7); of several attestations of one type the newest by its signed time
counts, whatever order the registry lists them in (15).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from affidavit.attestations.evidence import ImageEvidence, newest
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.policy import Decision, PolicyIndex, evaluate
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    PEM,
    REV,
    approval,
    att,
    ctx,
    evidence,
    index,
    obj,
    provenance,
    review,
)

SIGNERS = {"keys": [{"name": "ci", "publicKey": PEM}]}
COLLECT_PROV = (
    "affidavit collect provenance --repo . --base <base> --head <revision> --output provenance.json"
)
ATTEST_PROV = (
    f"affidavit attest {IMAGE} --predicate provenance.json --type {AI_PROVENANCE_V1} --key <key>"
)
OTHER_REV = "beef" + "0" * 36


def bare(name: str = "bare", **require: Any) -> dict[str, Any]:
    """A policy that writes only what the test gives it (no provenance section by default)."""
    return obj("AccountabilityPolicy", name, {"signers": SIGNERS, "require": require})


def run(ix: PolicyIndex, ev: ImageEvidence | None) -> Decision:
    return evaluate(ctx(), {IMAGE: ev}, ix, now=NOW, decision_id="d-1")


def test_policy_without_provenance_section_denies_an_image_without_attestations() -> None:
    d = run(index([bare()]), ImageEvidence(IMAGE, DIGEST))
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: provenance.present (AccountabilityPolicy/bare): found no verified "
        f"ai-provenance/v1 attestation; expected an ai-provenance/v1 attestation signed by ci "
        f"with subject {DIGEST}; fix: run `{COLLECT_PROV} && {ATTEST_PROV}`"
    ]


def test_provenance_is_optional_only_when_every_matching_policy_says_so() -> None:
    optional = bare("optional", provenance={"required": False})
    assert run(index([optional]), ImageEvidence(IMAGE, DIGEST)).outcome == "allowed"
    d = run(index([optional, bare("silent")]), ImageEvidence(IMAGE, DIGEST))
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("provenance.present", "AccountabilityPolicy/silent")
    ]


def test_review_of_another_revision_is_refused_by_default() -> None:
    ev = evidence(provenance(), review(approval("bob"), revision=OTHER_REV))
    d = run(index([bare()]), ev)
    assert [v.message for v in d.violations] == [
        f"{IMAGE}: revision.consistent (AccountabilityPolicy/bare): found ai-provenance "
        f"{REV[:12]}, code-review {OTHER_REV[:12]}; expected one source revision across all "
        "attestations; fix: collect provenance and review for the revision the image was built "
        f"from, then attest both: run `{COLLECT_PROV} && {ATTEST_PROV}`"
    ]
    relaxed = bare(consistentRevision=False)
    assert run(index([relaxed]), ev).outcome == "allowed"


def test_a_silent_policys_fail_beats_anothers_ignore_when_the_registry_is_down() -> None:
    ignore = bare("lenient", failurePolicy="Ignore", provenance={"required": False})
    assert run(index([ignore]), None).outcome == "allowed"
    d = run(index([ignore, bare("strict")]), None)
    assert d.outcome == "denied"
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("evidence.unavailable", "AccountabilityPolicy/strict")
    ]


# --- several attestations of one type: the newest by its signed time ------------------------

CHANGES_REQUESTED = {
    "reviewer": {"login": "bob"},
    "state": "changes_requested",
    "revision": REV,
    "onFinalRevision": True,
    "independent": True,
}


def reviews_at(approved_at: str, rejected_at: str) -> tuple[Any, Any]:
    approved = review(approval("bob")) | {"createdAt": approved_at}
    rejected = review(CHANGES_REQUESTED) | {"createdAt": rejected_at}
    return (
        att(CODE_REVIEW_V1, approved, n=2),
        att(CODE_REVIEW_V1, rejected, n=3),
    )


def test_newer_changes_requested_review_supersedes_the_older_approval_in_any_order() -> None:
    approved, rejected = reviews_at("2026-11-28T11:00:00Z", "2026-11-28T12:00:00Z")
    prov = att(AI_PROVENANCE_V1, provenance(), n=1)
    for order in ((prov, approved, rejected), (prov, rejected, approved)):
        d = run(index([bare(tiers={"critical": {"independentApprovals": 1}})]), _ev(order))
        assert d.outcome == "denied"
        assert [v.rule for v in d.violations] == ["review.critical.independentApprovals"]
        assert [e.envelope_digest for e in d.evidence if e.predicate_type == CODE_REVIEW_V1] == [
            rejected.envelope_digest
        ]


def test_newer_approval_supersedes_an_older_changes_requested() -> None:
    approved, rejected = reviews_at("2026-11-28T12:00:00Z", "2026-11-28T11:00:00Z")
    prov = att(AI_PROVENANCE_V1, provenance(), n=1)
    ix = index([bare(tiers={"critical": {"independentApprovals": 1}})])
    assert run(ix, _ev((prov, rejected, approved))).outcome == "allowed"


def test_signed_time_falls_back_to_the_content_and_then_to_the_digest() -> None:
    old = review(approval("bob") | {"submittedAt": "2026-11-20T10:00:00Z"})
    new = review(CHANGES_REQUESTED | {"submittedAt": "2026-11-21T10:00:00Z"})
    a, b = att(CODE_REVIEW_V1, old, n=7), att(CODE_REVIEW_V1, new, n=5)
    assert newest([a, b], CODE_REVIEW_V1) is b
    assert newest([b, a], CODE_REVIEW_V1) is b
    # createdAt outranks content times; no time at all is the oldest; ties go by digest
    dated = att(CODE_REVIEW_V1, old | {"createdAt": "2026-11-22T00:00:00Z"}, n=1)
    assert newest([b, dated], CODE_REVIEW_V1) is dated
    undated = [att(CODE_REVIEW_V1, review(), n=n) for n in (4, 9, 6)]
    assert newest(undated, CODE_REVIEW_V1) is undated[1]
    assert newest([*undated, a], CODE_REVIEW_V1) is a
    assert newest(undated, AI_PROVENANCE_V1) is None


def test_the_only_attestation_of_a_type_is_the_newest_without_its_predicate_being_parsed() -> None:
    text = json.dumps(review(approval("bob"))).encode()
    only = att(CODE_REVIEW_V1, {}, n=3, predicate_json=text)
    assert newest([only], CODE_REVIEW_V1) is only
    assert "predicate" not in only.__dict__  # still its JSON text: no signed time was read
    assert only.predicate == json.loads(text)


def _ev(atts: tuple[Any, ...]) -> ImageEvidence:
    return ImageEvidence(IMAGE, DIGEST, tuple(atts))


@pytest.mark.parametrize(
    "created",
    ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-22T00:00:00"],
    ids=["before-year-1-in-utc", "after-9999-in-utc", "no-zone"],
)
def test_a_created_at_that_is_no_utc_time_counts_as_none(created: str) -> None:
    # Signed, but no instant in UTC (the zone moves it out of datetime's range) or no instant at
    # all (no zone): read as no createdAt, so the content's times decide. Before, the first two
    # raised OverflowError out of the evaluation (the webhook denied as an internal error).
    odd = att(CODE_REVIEW_V1, review(approval("bob")) | {"createdAt": created}, n=1)
    dated = att(CODE_REVIEW_V1, review() | {"createdAt": "2026-11-22T00:00:00Z"}, n=2)
    assert newest([odd, dated], CODE_REVIEW_V1) is dated
    assert newest([dated, odd], CODE_REVIEW_V1) is dated

"""The decision-time snapshot evaluate() records: AI involvement from the verified provenance
(the newest, as the rules judge), review evidence, only the exceptions actually used, and an
undetermined image (no or unreadable provenance) never passing for a human-only one.
"""

from __future__ import annotations

import dataclasses

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import AI_PROVENANCE_V1
from affidavit.names import REQUESTED_BY_ANNOTATION
from affidavit.policy import PolicyIndex, evaluate
from affidavit.policy.decision import (
    AiInvolvement,
    Caller,
    Decision,
    ExceptionUsed,
    NotJudged,
    ReviewSeen,
    Snapshot,
    ToolUse,
)
from affidavit.policy.explain import explain_decision
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    PR_URL,
    approval,
    att,
    change,
    ctx,
    evidence,
    exception,
    index,
    policy,
    provenance,
    review,
)


def run(ix: PolicyIndex, ev: ImageEvidence | None) -> Decision:
    return evaluate(ctx(), {IMAGE: ev}, ix, now=NOW, decision_id="d-1")


def test_ai_involvement_counts_by_tool_and_model_and_names_the_tiers() -> None:
    prov = provenance(
        change("1" * 40, "generated"),
        change("2" * 40, "assisted", files=(("docs/a.md", "low"),)),
        change(
            "3" * 40,
            "assisted",
            files=(("src/app.py", "standard"),),
            tools=({"name": "aider", "model": "gpt-5"},),
        ),
        change("4" * 40, "unknown", files=(("src/b.py", "standard"),)),
        change("5" * 40, "none", files=(("src/c.py", "standard"),)),
    )
    ix = index([policy()])
    held = tuple(c * 40 for c in "12345")  # the pull request holds every commit of the range
    d = run(ix, evidence(prov, review(approval("bo"), commits=held)))
    assert d.outcome == "allowed"
    assert d.snapshot == Snapshot(
        policy_index=ix.digest,
        caller=Caller(authenticated=False),
        images=(
            AiInvolvement(
                image=IMAGE,
                digest=DIGEST,
                provenance="sha256:" + "01" * 32,
                commits=5,
                assisted=2,
                generated=1,
                undeclared=1,
                tools=(
                    ToolUse("aider", "gpt-5", 1),
                    ToolUse("claude-code", "claude-sonnet-4-5", 2),
                ),
                tiers=("critical", "low", "standard"),
                review=ReviewSeen(PR_URL, approvals=1, independent_approvals=1),
            ),
        ),
    )
    assert (d.snapshot.images[0].ai_touched, d.snapshot.images[0].reviewed) == (True, True)


def test_a_human_only_image_is_not_ai_touched_and_no_evidence_is_undetermined() -> None:
    human = provenance(change(involvement="none"))
    d = run(index([policy()]), evidence(human, review(approval("bo"))))
    assert d.snapshot is not None and d.snapshot.images[0].ai_touched is False
    nothing = run(index([policy()]), None)
    assert nothing.snapshot is not None
    assert nothing.snapshot.images == (AiInvolvement(IMAGE, DIGEST),)
    assert nothing.snapshot.images[0].ai_touched is None


def test_provenance_that_does_not_parse_is_undetermined() -> None:
    broken = ImageEvidence(IMAGE, DIGEST, (att(AI_PROVENANCE_V1, {"changes": "?"}),))
    d = run(index([policy()]), broken)
    assert d.snapshot is not None
    assert d.snapshot.images == (AiInvolvement(IMAGE, DIGEST),)


def test_only_the_exceptions_used_are_recorded_with_their_details() -> None:
    ix = index([policy()], exceptions=[exception("hotfix")])
    unreviewed = evidence(provenance(), review())
    excepted = run(ix, unreviewed)
    assert excepted.outcome == "excepted"
    assert excepted.snapshot is not None
    assert excepted.snapshot.exceptions == (
        ExceptionUsed(
            namespace="shop",
            name="hotfix",
            owner="olga",
            incident_id="INC-7",
            approvers=("victor",),
            expires_at="2026-11-30T00:00:00Z",
            reason="payment outage hotfix",
        ),
    )
    assert excepted.snapshot.exception("shop/hotfix") == excepted.snapshot.exceptions[0]
    # Active but not needed: a clean image is allowed and records no exception.
    clean = run(ix, evidence(provenance(), review(approval("bo"))))
    assert clean.outcome == "allowed"
    assert clean.snapshot is not None and clean.snapshot.exceptions == ()


def test_the_snapshot_round_trips_through_its_json_form() -> None:
    ix = index([policy()], exceptions=[exception("hotfix")])
    d = run(ix, evidence(provenance(), review()))
    assert Decision.from_dict(dataclasses.asdict(d)) == d


def test_explain_shows_what_the_decision_recorded() -> None:
    ix = index([policy()], exceptions=[exception("hotfix")])
    lines = explain_decision(run(ix, evidence(provenance(), review()))).splitlines()
    start = lines.index("  exception: shop/hotfix")
    assert lines[start + 1 : start + 4] == [
        f"  recorded: policy index {ix.digest}; caller not authenticated by a client certificate",
        f"  ai: {IMAGE}: 1 of 1 commits AI-touched (0 assisted, 1 generated), 0 undeclared; "
        f"tools: claude-code (claude-sonnet-4-5) in 1; tiers: critical; review: {PR_URL}, "
        "0 approvals on the final revision, 0 independent",
        "  exception shop/hotfix: owner olga, incident INC-7, approvers victor, requested by "
        "(not stamped), expires 2026-11-30T00:00:00Z; reason: payment outage hotfix",
    ]
    assert f"  ai: {IMAGE}: undetermined (no verified provenance)" in (
        explain_decision(run(ix, None)).splitlines()
    )


def test_who_asked_for_an_exception_is_recorded_from_its_stamp_through_the_index() -> None:
    """The webhook stamps an exception with the API server's name for its author; the index
    carries the stamp (through its JSON, as the webhook loads it) into the decision, and
    explain shows it beside the owner and approvers the author typed."""
    stamped = exception("hotfix")
    requester = "oidc:mallory@example.com"
    stamped["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: requester}
    ix = PolicyIndex.from_json(index([policy()], exceptions=[stamped]).to_json())
    d = run(ix, evidence(provenance(), review()))
    assert d.snapshot is not None
    assert [e.requested_by for e in d.snapshot.exceptions] == [requester]
    assert Decision.from_dict(dataclasses.asdict(d)) == d
    assert f"approvers victor, requested by {requester}, expires" in explain_decision(d)
    # The annotation on anything but an exception means nothing: not carried into the index.
    annotated = policy()
    annotated["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: requester}
    assert index([annotated]).to_json() == index([policy()]).to_json()


def test_the_images_a_decision_did_not_judge_are_recorded_and_explained() -> None:
    """A meshed Pod judged on its proxy alone says, inside the hashed record, which image ran
    on its owner's admission; explain shows it."""
    d = run(index([policy()]), evidence(provenance(), review(approval("bo"))))
    assert d.snapshot is not None and d.snapshot.not_judged == ()
    owner = "runs on the admission of its owner ReplicaSet/web-5d8f (uid u1)"
    partial = dataclasses.replace(
        d,
        snapshot=dataclasses.replace(d.snapshot, not_judged=(NotJudged("r.example/app:1", owner),)),
    )
    assert Decision.from_dict(dataclasses.asdict(partial)) == partial
    assert f"  not judged here: r.example/app:1 ({owner})" in explain_decision(partial).splitlines()

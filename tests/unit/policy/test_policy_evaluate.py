"""Table tests of evaluate(): outcomes and the exact violation texts a release manager reads.

Covers differentiated review by tier, modes, exceptions (active, expired, over-long), the digest
requirement, revision consistency, the subject check, unavailable evidence and fail-open,
freshness, tools, labels, and the admission message.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from affidavit.attestations.evidence import ImageEvidence, RejectedAttestation
from affidavit.attestations.predicates import AI_PROVENANCE_V1, SLSA_PROVENANCE_V1
from affidavit.policy import Decision, PolicyIndex, PolicyRef, admission_message, evaluate
from affidavit.policy.presets import PRESETS
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    OTHER_DIGEST,
    OWNER,
    PEM,
    PR_URL,
    REPO,
    REV,
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
    slsa,
)

REVIEW_TYPE = "https://affidavit.dev/attestations/code-review/v1"
ATTEST_REVIEW = f"affidavit attest {IMAGE} --predicate review.json --type {REVIEW_TYPE} --key <key>"
COLLECT_REVIEW = (
    "affidavit collect review --github-pr pr.json --github-reviews reviews.json "
    f"--github-commits commits.json --head {REV} --output review.json"
)
ATTEST_PROV = (
    f"affidavit attest {IMAGE} --predicate provenance.json --type {AI_PROVENANCE_V1} --key <key>"
)
COLLECT_PROV = (
    "affidavit collect provenance --repo . --base <base> --head <revision> --output provenance.json"
)
CRITICAL_WHY = "AI-involved changes touch tier critical: src/auth/login.py"
NO_INDEPENDENT = (
    f"{IMAGE}: review.critical.independentApprovals (AccountabilityPolicy/baseline): "
    f"found 0 independent approvals on the final revision of {PR_URL}; "
    f"expected at least 1 ({CRITICAL_WHY}); "
    f"fix: get 1 more independent approval on the final revision of {PR_URL}, "
    f"then run `{COLLECT_REVIEW} && {ATTEST_REVIEW}`"
)


def run(ix: PolicyIndex, ev: Any, **kw: Any) -> Decision:
    c = ctx(**kw)
    evmap = ev if isinstance(ev, dict) else {c.images[0]: ev}
    return evaluate(c, evmap, ix, now=NOW, decision_id="d-1")


def messages(d: Decision) -> list[str]:
    return [v.message for v in d.violations]


def test_critical_ai_change_without_independent_approval_is_denied() -> None:
    d = run(index(), evidence(provenance(), review(approval("alice", independent=False))))
    assert d.outcome == "denied"
    assert not d.allowed
    assert messages(d) == [NO_INDEPENDENT]
    assert d.policies == (PolicyRef("AccountabilityPolicy", "baseline", 1),)
    assert admission_message(d) == (
        "Affidavit denied Deployment/payments in namespace shop (decision d-1): 1 violation\n"
        f"- {NO_INDEPENDENT}\n"
        "run `affidavit explain --decision d-1` for the full record"
    )


def test_critical_ai_change_with_independent_approval_is_admitted() -> None:
    d = run(index(), evidence(provenance(), review(approval("bob"))))
    assert (d.outcome, d.violations, d.exception) == ("allowed", (), None)
    assert [(e.predicate_type, e.signer) for e in d.evidence] == [
        (AI_PROVENANCE_V1, "ci"),
        (REVIEW_TYPE, "ci"),
    ]
    assert d.images[0].digest == DIGEST
    assert admission_message(d) == (
        "Affidavit admitted Deployment/payments in namespace shop (decision d-1)"
    )


@pytest.mark.parametrize(
    ("involvement", "tier", "outcome"),
    [
        ("generated", "critical", "denied"),
        ("assisted", "critical", "denied"),
        ("generated", "low", "allowed"),  # differentiated: no rule for the low tier
        ("none", "critical", "allowed"),  # human change: AI tier rules do not apply
        ("unknown", "critical", "allowed"),  # plain policy: unknown is not AI by default
    ],
)
def test_tier_rules_apply_to_ai_changes_in_their_tier(
    involvement: str, tier: str, outcome: str
) -> None:
    prov = provenance(change(involvement=involvement, files=(("src/x.py", tier),)))
    d = run(index(), evidence(prov, review()))
    assert d.outcome == outcome


def test_unknown_counts_as_ai_when_policy_says_so() -> None:
    strict = policy(
        require={"tiers": {"critical": {"independentApprovals": 1}}, "treatUnknownAsAi": True}
    )
    prov = provenance(change(involvement="unknown"))
    d = run(index([strict]), evidence(prov, review()))
    assert [v.rule for v in d.violations] == ["review.critical.independentApprovals"]


def test_missing_review_attestation_names_what_is_missing_and_rejections() -> None:
    rej = RejectedAttestation("sha256:" + "ee" * 32, "signature does not verify with key ci")
    d = run(index(), evidence(provenance(), None, rejected=(rej,)))
    assert messages(d) == [
        f"{IMAGE}: review.present (AccountabilityPolicy/baseline): found no verified "
        "code-review/v1 attestation (rejected: signature does not verify with key ci); "
        f"expected a code-review/v1 attestation ({CRITICAL_WHY}); "
        "fix: review the change on its final revision, then run "
        f"`affidavit collect review ... --output review.json && {ATTEST_REVIEW}`"
    ]


def test_a_thousand_rejected_layers_are_summed_up_not_listed() -> None:
    """Whoever may push to the repository can attach a thousand junk layers beside an image:
    each named in full made the finding tens of KB, in every denial, ledger row and report."""
    junk = [
        RejectedAttestation(f"sha256:{i:064x}", f"envelope is not valid JSON: junk {i % 7}")
        for i in range(1000)
    ] + [RejectedAttestation("sha256:" + "ab" * 32, "x" * 5000)]
    d = run(index(), evidence(provenance(), None, rejected=tuple(junk)))
    (found,) = [v.found for v in d.violations if v.rule == "review.present"]
    assert found == (
        "no verified code-review/v1 attestation (rejected: "
        + "; ".join(f"envelope is not valid JSON: junk {k} (x{143 if k < 6 else 142})"
                    for k in range(5))
        + "; and 3 other reasons)"
    )  # fmt: skip
    assert len(found) < 600


def test_missing_provenance() -> None:
    d = run(index(), evidence(None, review(approval("bob"))))
    assert messages(d) == [
        f"{IMAGE}: provenance.present (AccountabilityPolicy/baseline): found no verified "
        f"ai-provenance/v1 attestation; expected an ai-provenance/v1 attestation signed by ci "
        f"with subject {DIGEST}; fix: run `{COLLECT_PROV} && {ATTEST_PROV}`"
    ]


def test_warn_mode_admits_with_the_violation_recorded() -> None:
    d = run(index([policy(mode="Warn")]), evidence(provenance(), review()))
    assert (d.outcome, d.mode, d.allowed) == ("warned", "Warn", True)
    assert admission_message(d).splitlines()[0] == (
        "Affidavit warning for Deployment/payments in namespace shop "
        "(admitted, policy in Warn mode) (decision d-1): 1 violation"
    )


def test_audit_mode_records_only() -> None:
    d = run(index([policy(mode="Audit")]), evidence(provenance(), review()))
    assert (d.outcome, d.allowed, len(d.violations)) == ("audited", True, 1)


@pytest.mark.parametrize(
    ("exc", "outcome", "used"),
    [
        (exception("hotfix"), "excepted", "shop/hotfix"),
        (exception("hotfix", expiresAt="2026-11-29T11:59:59Z"), "denied", None),  # expired
        (exception("hotfix", namespace="other"), "denied", None),
        (exception("hotfix", images=["registry.example/other/*"]), "denied", None),
        (
            exception("hotfix", images=[], workloads=[{"kind": "Deployment", "name": "pay*"}]),
            "excepted",
            "shop/hotfix",
        ),
        (
            exception("hotfix", workloads=[{"kind": "StatefulSet", "name": "payments"}]),
            "denied",
            None,
        ),
    ],
)
def test_exceptions_active_vs_expired(exc: dict[str, Any], outcome: str, used: str | None) -> None:
    ix = index([policy()], exceptions=[exc])
    d = run(ix, evidence(provenance(), review()))
    assert (d.outcome, d.exception) == (outcome, used)
    assert messages(d) == [NO_INDEPENDENT]  # the violation stays on record either way


def test_exception_longer_than_policy_allows_is_not_used() -> None:
    ix = index([policy(exceptions={"maxDays": 1})], exceptions=[exception("hotfix")])
    assert run(ix, evidence(provenance(), review())).outcome == "excepted"
    long = exception("long", expiresAt="2026-12-05T00:00:00Z")
    ix = index([policy(exceptions={"maxDays": 1})], exceptions=[long])
    assert run(ix, evidence(provenance(), review())).outcome == "denied"


def test_exceptions_for_lists_only_active_ones() -> None:
    ix = index(exceptions=[exception("a"), exception("b", expiresAt="2026-11-01T00:00:00Z")])
    assert [e.key for e in ix.exceptions_for("shop", "Deployment", "x", IMAGE, NOW)] == ["shop/a"]
    later = NOW + timedelta(days=2)
    assert ix.exceptions_for("shop", "Deployment", "x", IMAGE, later) == []


def test_digest_requirement() -> None:
    tagged = f"{REPO}:1.4.2"
    ix = index([policy(require={"requireDigest": True})])
    ev = ImageEvidence(tagged, DIGEST, evidence(provenance(), review()).verified)
    d = run(ix, {tagged: ev}, images=(tagged,))
    assert messages(d) == [
        f"{tagged}: image.digest (AccountabilityPolicy/baseline): found tag reference {tagged}; "
        "expected an image reference pinned by digest (REPOSITORY@sha256:...); "
        f"fix: deploy `{REPO}@sha256:<digest>` with the digest your build pushed"
    ]
    assert run(ix, evidence(provenance(), review())).outcome == "allowed"


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_preset_refuses_a_tag(preset: str) -> None:
    """Tags are pinned to the verified digest on each new Pod (admission.pin), so presets leave
    templates by tag alone; a policy may still demand digests (above)."""
    tagged = f"{REPO}:1.4.2"
    ix = index([policy(jurisdictions=[preset])])
    ev = ImageEvidence(tagged, DIGEST, evidence(provenance(), review()).verified)
    d = run(ix, {tagged: ev}, images=(tagged,))
    assert "image.digest" not in {v.rule for v in d.violations}


def test_inconsistent_revisions_across_attestations() -> None:
    other = "bad" + "1" * 37
    ev = evidence(
        provenance(),
        review(approval("bob"), revision=other),
        extra=(att(SLSA_PROVENANCE_V1, slsa("5" * 40), n=3),),
    )
    d = run(index(), ev)
    assert messages(d) == [
        f"{IMAGE}: revision.consistent (AccountabilityPolicy/baseline): found ai-provenance "
        f"{REV[:12]}, code-review {other[:12]}, slsa 555555555555; expected one source "
        "revision across all attestations; fix: collect provenance and review for the revision "
        f"the image was built from, then attest both: run `{COLLECT_PROV} && {ATTEST_PROV}`"
    ]
    good = evidence(
        provenance(), review(approval("bob")), extra=(att(SLSA_PROVENANCE_V1, slsa(REV), n=3),)
    )
    assert run(index(), good).outcome == "allowed"


def test_wrong_subject_is_reported_and_not_used() -> None:
    ev = ImageEvidence(
        IMAGE,
        DIGEST,
        (att(AI_PROVENANCE_V1, provenance(), subject=OTHER_DIGEST),),
    )
    d = run(index([policy(require={"provenance": {"required": True}})]), ev)
    assert messages(d) == [
        f"{IMAGE}: subject.digest (AccountabilityPolicy/baseline): found an ai-provenance/v1 "
        f"attestation whose subject is {OTHER_DIGEST}; expected subject {DIGEST} (the image "
        f"being deployed); fix: attest the image that is deployed: `affidavit attest "
        f"{IMAGE} --predicate <file> --type {AI_PROVENANCE_V1} --key <key>`",
        f"{IMAGE}: provenance.present (AccountabilityPolicy/baseline): found no verified "
        f"ai-provenance/v1 attestation; expected an ai-provenance/v1 attestation signed by ci "
        f"with subject {DIGEST}; fix: run `{COLLECT_PROV} && {ATTEST_PROV}`",
    ]
    assert d.evidence == ()


def test_attestation_from_untrusted_signer_is_ignored() -> None:
    ev = ImageEvidence(IMAGE, DIGEST, (att(AI_PROVENANCE_V1, provenance(), signer="stranger"),))
    d = run(index([policy(require={"provenance": {"required": True}})]), ev)
    assert [v.rule for v in d.violations] == ["provenance.present"]


def test_unavailable_evidence_fails_closed_unless_fail_open() -> None:
    d = run(index(), {IMAGE: None})
    assert messages(d) == [
        f"{IMAGE}: evidence.unavailable (AccountabilityPolicy/baseline): found no evidence: "
        "the image's registry could not be reached; expected verified attestations for the "
        "image (failurePolicy: Fail); fix: make the registry reachable from the webhook and "
        "retry, or set `spec.require.failurePolicy: Ignore` to fail open"
    ]
    assert d.outcome == "denied"
    ix = index([policy(require={"failurePolicy": "Ignore"})])
    assert run(ix, {IMAGE: None}).outcome == "allowed"


def test_missing_evidence_fails_closed_even_when_the_policy_fails_open() -> None:
    """A problem of the request itself (a bad pull secret, an unnamed registry) is no outage."""
    ix = index([policy(require={"failurePolicy": "Ignore"})])
    c = ctx()
    missing = {IMAGE: ("evidence.missing", "missing evidence: a bad pull secret", "fix it")}
    d = evaluate(c, {IMAGE: None}, ix, now=NOW, decision_id="d-1", missing=missing)
    assert d.outcome == "denied"
    assert messages(d) == [
        f"{IMAGE}: evidence.missing (AccountabilityPolicy/baseline): found missing evidence: a "
        "bad pull secret; expected verified attestations for the image (missing evidence, not "
        "a registry outage: failurePolicy does not apply); fix: fix it"
    ]


def test_stale_provenance() -> None:
    ix = index([policy(require={"provenance": {"required": True, "maxAgeDays": 30}})])
    old = provenance(change(committed_at="2026-09-01T00:00:00Z"))
    d = run(ix, evidence(old, review()))
    assert messages(d) == [
        f"{IMAGE}: provenance.fresh (AccountabilityPolicy/baseline): found revision "
        f"{REV[:12]} committed 89 days ago; expected a revision committed at most 30 days ago; "
        f"fix: rebuild from a recent revision, then run `{COLLECT_PROV} && {ATTEST_PROV}`"
    ]
    assert run(ix, evidence(provenance(), review())).outcome == "allowed"


def test_a_commit_time_set_ahead_shows_no_freshness() -> None:
    # a commit time is what the committer's clock (or GIT_COMMITTER_DATE) said: one in the
    # future would pass maxAgeDays forever, one after the attestation was made is no age either
    ix = index([policy(require={"provenance": {"required": True, "maxAgeDays": 30}})])
    future = provenance(change(committed_at="2099-01-01T00:00:00Z"))
    d = run(ix, evidence(future, review()))
    assert d.outcome == "denied"
    assert messages(d)[0].startswith(
        f"{IMAGE}: provenance.fresh (AccountabilityPolicy/baseline): found revision {REV[:12]}"
        " committed at 2099-01-01T00:00:00Z, after now (2026-11-29T12:00:00Z): a commit time set"
        " ahead shows no age; expected a revision committed at most 30 days ago; fix: commit with"
        " the real time (no GIT_COMMITTER_DATE, a synchronised clock), rebuild, then run `"
    )
    made_before = provenance(change(committed_at="2026-11-28T19:00:00+09:00"))
    made_before["createdAt"] = "2026-11-20T09:00:00Z"
    d = run(ix, evidence(made_before, review()))
    # shown in UTC, whatever offset the committer's clock wrote
    assert (
        "committed at 2026-11-28T10:00:00Z, after the attestation was made (2026-11-20T09:00:00Z)"
    ) in messages(d)[0]
    # within the clock skew of the attestation's making: a time
    made_just_before = provenance(change(committed_at="2026-11-28T10:00:00Z"))
    made_just_before["createdAt"] = "2026-11-28T09:56:00Z"
    assert run(ix, evidence(made_just_before, review())).outcome == "allowed"


def test_a_revision_hours_past_the_limit_is_stale_and_says_so() -> None:
    # whole days were compared: 30 days and 23 hours passed a 30-day limit
    ix = index([policy(require={"provenance": {"required": True, "maxAgeDays": 30}})])
    late = provenance(change(committed_at="2026-10-29T13:00:00Z"))  # 30 days 23 hours
    d = run(ix, evidence(late, review()))
    assert f"found revision {REV[:12]} committed 30 days 23 hours ago;" in messages(d)[0]
    on_time = provenance(change(committed_at="2026-10-30T12:00:00Z"))  # 30 days exactly
    assert run(ix, evidence(on_time, review())).outcome == "allowed"


def test_allowed_tools_hold_undeclared_changes_where_they_count_as_ai() -> None:
    # treatUnknownAsAi counted an undeclared commit naming a tool for requireToolDetails but
    # not for allowedTools: a tool off the list passed by leaving out the declaration
    require = {"provenance": {"required": True}, "allowedTools": ["claude-code"]}
    unknown = change(involvement="unknown", files=(("README.md", "low"),))
    unknown["tools"] = [{"name": "evil-tool"}]
    prov = provenance(unknown)
    lax = index([policy(require=require)])
    assert run(lax, evidence(prov, review())).outcome == "allowed"
    strict = index([policy(require={**require, "treatUnknownAsAi": True})])
    assert [v.rule for v in run(strict, evidence(prov, review())).violations] == ["tools.allowed"]
    # an ordinary commit with no declaration at all names no tool: nothing to hold it to
    plain = change(involvement="unknown", files=(("README.md", "low"),))
    plain["tools"] = []
    assert run(strict, evidence(provenance(plain), review())).outcome == "allowed"


def test_allowed_tools_and_owner_labels() -> None:
    ix = index(
        [
            policy(
                require={
                    "allowedTools": ["claude-*", "aider"],
                    "ownerLabel": OWNER,
                    "escalationLabel": "affidavit.dev/escalation",
                }
            )
        ]
    )
    cursor = change(tools=({"name": "cursor", "model": "gpt-5", "version": "1"},))
    d = run(ix, evidence(provenance(cursor), review()), labels={OWNER: "payments-team"})
    assert messages(d) == [
        f"{IMAGE}: tools.allowed (AccountabilityPolicy/baseline): found AI tool cursor in "
        f"commit {REV[:12]}; expected a tool matching one of: claude-*, aider; fix: rework the "
        "change without cursor, or have AccountabilityPolicy/baseline add it to "
        "`spec.require.allowedTools`",
        "labels.escalation (AccountabilityPolicy/baseline): found no label "
        "`affidavit.dev/escalation` on Deployment/payments; expected label "
        "`affidavit.dev/escalation` naming the escalation contact; fix: set "
        "`metadata.labels.affidavit.dev/escalation` in the manifest (`kubectl label deployment "
        "payments -n shop affidavit.dev/escalation=<value>`)",
    ]


def test_a_label_rule_is_judged_under_every_image_that_asks_for_it() -> None:
    # it was judged once, under the first image listed: an Audit policy's image first made a
    # missing owner label an audit, and an exception naming only that image excepted the Pod,
    # though an Enforce policy also required the label for the other image
    tools, shop = "registry.example/tools/debug@" + DIGEST, IMAGE
    audit = policy("audit", mode="Audit", match={"images": ["registry.example/tools/*"]},
                   require={"provenance": {"required": False}, "ownerLabel": OWNER})  # fmt: skip
    enforce = policy(match={"images": ["registry.example/shop/*"]},
                     require={"provenance": {"required": False}, "ownerLabel": OWNER})  # fmt: skip
    for images in ((tools, shop), (shop, tools)):
        d = run(index([audit, enforce]), {i: evidence(image=i) for i in images}, images=images)
        assert d.outcome == "denied", images
        assert sorted((v.rule, v.policy) for v in d.violations) == [  # once per policy
            ("labels.owner", "AccountabilityPolicy/audit"),
            ("labels.owner", "AccountabilityPolicy/baseline"),
        ]
    only_tools = exception("debug", images=["registry.example/tools/*"])
    d = run(index([audit, enforce], exceptions=[only_tools]), {tools: evidence(image=tools), shop: evidence(image=shop)},
            images=(tools, shop))  # fmt: skip
    assert d.outcome == "denied"
    labelled = run(index([audit, enforce]), {tools: evidence(image=tools), shop: evidence(image=shop)}, images=(tools, shop),
                   labels={OWNER: "payments-team"})  # fmt: skip
    assert labelled.outcome == "allowed"


def test_image_outside_every_policy_is_allowed_without_policies_when_the_cluster_allows() -> None:
    ix = index([policy(match={"images": ["registry.example/other/*"]})])
    d = run(ix, evidence(provenance(), review()), unmatched_images="Allow")
    assert (d.outcome, d.policies, d.violations) == ("allowed", (), ())


def test_bot_approval_never_counts_as_human() -> None:
    ix = index([policy(require={"tiers": {"*": {"humanApprovals": 1, "appliesTo": "all"}}})])
    d = run(ix, evidence(provenance(), review(approval("copilot[bot]", bot=True))))
    assert [(v.rule, v.found) for v in d.violations] == [
        ("review.*.humanApprovals", f"0 human approvals on the final revision of {PR_URL}")
    ]


GHA = {
    "name": "gha",
    "issuer": "https://token.actions.githubusercontent.com",
    "identity": "https://github.com/example/shop/.github/workflows/release.yml@refs/heads/main",
}


@pytest.mark.parametrize(
    ("signers", "flag"),
    [
        ({"keyless": [GHA]}, "--sigstore"),  # a key-signed attestation would not count
        ({"keyless": [GHA], "keys": [{"name": "ci", "publicKey": PEM}]}, "--key <key>"),
    ],
)
def test_the_fix_signs_the_way_the_policys_signers_are_trusted(
    signers: dict[str, Any], flag: str
) -> None:
    d = run(index([policy(signers=signers)]), evidence())
    (fix,) = [v.fix for v in d.violations if v.rule == "provenance.present"]
    assert fix == f"run `{COLLECT_PROV} && {ATTEST_PROV}`".replace("--key <key>", flag)


@pytest.mark.parametrize(
    "predicate",
    [
        {"buildDefinition": []},
        {"buildDefinition": "v1"},
        {"buildDefinition": None},
        {"buildDefinition": {"resolvedDependencies": {"uri": "git+https://x"}}},
        {"buildDefinition": {"resolvedDependencies": [{"digest": ["gitCommit", "5" * 40]}]}},
        {"buildDefinition": {"resolvedDependencies": [{"digest": "5" * 40}, 7, None]}},
    ],
    ids=["list", "string", "null", "deps-object", "digest-list", "digest-string"],
)
def test_a_slsa_provenance_of_another_shape_names_no_revision_and_breaks_nothing(
    predicate: dict[str, Any],
) -> None:
    # A signed SLSA provenance is any builder's JSON: a field of another shape than v1's means
    # no revision is read from it (the other attestations still have to agree), never a crash.
    extra = (att(SLSA_PROVENANCE_V1, predicate, n=3),)
    good = evidence(provenance(), review(approval("bob")), extra=extra)
    assert run(index(), good).outcome == "allowed"
    other = "bad" + "1" * 37
    bad = evidence(provenance(), review(approval("bob"), revision=other), extra=extra)
    assert [v.rule for v in run(index(), bad).violations] == ["revision.consistent"]


@pytest.mark.parametrize(
    "times",
    [("2026-11-28T10:00:00",), ("2026-11-28T10:00:00Z", "2026-11-27T10:00:00")],
    ids=["no-zone", "one-without-zone"],
)
def test_a_commit_time_without_a_zone_is_no_commit_time(times: tuple[str, ...]) -> None:
    # maxAgeDays compares commit times with now (in UTC): a time without a zone is no instant.
    # Before, subtracting it (or comparing it with one that had a zone) raised TypeError.
    ix = index([policy(require={"provenance": {"required": True, "maxAgeDays": 30}})])
    changes = [change(commit=f"{i}" * 40, committed_at=t) for i, t in enumerate(times)]
    d = run(ix, evidence(provenance(*changes), review()))
    if len(times) == 1:
        assert [v.rule for v in d.violations] == ["provenance.fresh"]
        assert "found no commit time for revision" in messages(d)[0]
    else:
        assert d.outcome == "allowed"


def test_approvals_of_earlier_revisions_are_named_as_not_counted() -> None:
    """A reviewer who approved before the last push (or at no known time: a GitLab approval
    without its note) is named, so the release manager sees why it does not count; an approval
    that would not count anyway (the author's own) is not named under independent approvals."""
    earlier = {**approval("bob"), "revision": "e" * 40, "onFinalRevision": False}
    unknown = {k: v for k, v in approval("carol").items() if k != "revision"}
    own = {**approval("alice", independent=False), "revision": "a" * 40, "onFinalRevision": False}
    d = run(
        index(), evidence(provenance(), review(earlier, {**unknown, "onFinalRevision": False}, own))
    )
    expected = NO_INDEPENDENT.replace(
        f"found 0 independent approvals on the final revision of {PR_URL}; ",
        f"found 0 independent approvals on the final revision of {PR_URL} (not counted: bob "
        "approved earlier revision eeeeeeeeeeee, carol approved no known revision); ",
    )
    assert messages(d) == [expected]


def withdrawn(login: str, at: str, state: str = "changes_requested") -> dict[str, Any]:
    """``login``'s later review of the final revision that takes back their approval."""
    return approval(login) | {"state": state, "submittedAt": at}


def test_an_approval_withdrawn_later_counts_for_nobody() -> None:
    """bob approves the final revision, then requests changes on it: his approval no longer
    stands, for the security review, the reviewer groups and the human count alike (the
    collector's summary already left it out; the reviews are read the same way)."""
    rules = {"humanApprovals": 2, "securityReview": True, "appliesTo": "all"}
    ix = index([policy(groups={"security": ["bob"]}, require={"tiers": {"*": rules}})])
    bob, carol = approval("bob") | {"submittedAt": "2026-11-28T09:00:00Z"}, approval("carol")
    standing = run(ix, evidence(provenance(), review(bob, carol)))
    assert standing.outcome == "allowed", messages(standing)
    for state in ("changes_requested", "dismissed"):
        later = withdrawn("bob", "2026-11-28T11:00:00Z", state)
        d = run(ix, evidence(provenance(), review(bob, later, carol)))
        assert sorted(v.rule for v in d.violations) == [
            "review.*.humanApprovals",
            "review.*.securityReview",
        ], state
        found = {v.rule: v.found for v in d.violations}
        assert found["review.*.humanApprovals"].startswith("1 human approval on the final")
    # a comment after the approval takes nothing back
    comment = withdrawn("bob", "2026-11-28T11:00:00Z", "commented")
    assert run(ix, evidence(provenance(), review(bob, comment, carol))).outcome == "allowed"


def test_a_summary_that_counts_more_than_its_reviews_show_is_not_believed() -> None:
    ix = index()  # critical: one independent approval
    lying = review(approval("alice", independent=False))
    lying["summary"] = {"approvalsOnFinalRevision": 3, "independentApprovals": 3}
    d = run(ix, evidence(provenance(), lying))
    assert [v.rule for v in d.violations] == ["review.critical.independentApprovals"]

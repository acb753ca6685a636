"""Strictest-wins combination: policies, region policies and presets, and who each rule came from.

Also the EU scenario of the e2e: one RegionPolicy for eu-* makes eu-west-1 stricter than
us-east-1 for the same evidence, and the messages cite the preset, the RegionPolicy and the
control.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from pydantic import ValidationError

from affidavit.attestations.evidence import KeylessSigner, KeySigner
from affidavit.policy import EffectivePolicy, Origin, PolicyIndex, Req, evaluate
from affidavit.policy.explain import explain_policy
from affidavit.policy.signer_model import Signers
from policy_builders import (
    IMAGE,
    NOW,
    PEM,
    PR_URL,
    approval,
    change,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    region_policy,
    review,
)

OTHER_PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAother\n-----END PUBLIC KEY-----\n"


def eff(ix: PolicyIndex, region: str = "us-east-1", **kw: str) -> EffectivePolicy:
    e = ix.effective(
        cluster=kw.get("cluster", "prod-1"),
        region=region,
        namespace="shop",
        namespace_labels={"team": kw.get("team", "payments")},
        image=kw.get("image", IMAGE),
    )
    assert e is not None
    return e


def two(a: Mapping[str, object], b: Mapping[str, object]) -> EffectivePolicy:
    return eff(index([policy("a", **a), policy("b", **b)]))


def test_modes_take_the_strictest() -> None:
    assert two({"mode": "Warn"}, {"mode": "Audit"}).mode_req == Req(
        "Warn", Origin("AccountabilityPolicy/a")
    )
    assert two({"mode": "Audit"}, {"mode": "Enforce"}).mode == "Enforce"


def test_numbers_take_the_max_and_name_their_policy() -> None:
    e = two(
        {"require": {"tiers": {"critical": {"approvals": 2, "independentApprovals": 1}}}},
        {"require": {"tiers": {"critical": {"independentApprovals": 2}}, "retentionDays": 30}},
    )
    (t,) = e.tiers
    assert t.approvals == Req(2, Origin("AccountabilityPolicy/a"))
    assert t.independent_approvals == Req(2, Origin("AccountabilityPolicy/b"))
    assert e.retention_days == Req(30, Origin("AccountabilityPolicy/b"))


def test_booleans_or_and_labels_add_up() -> None:
    e = two(
        {"require": {"requireDigest": False, "ownerLabel": "owner"}},
        {"require": {"requireDigest": True, "ownerLabel": "team"}},
    )
    assert e.require_digest
    assert [r.value for r in e.owner_labels] == ["owner", "team"]


def test_allow_lists_intersect() -> None:
    ix = index(
        [
            policy("a", require={"allowedTools": ["claude-code", "aider"]}),
            policy("b", require={"allowedTools": ["claude-*"]}),
        ]
    )
    aider = change(tools=({"name": "aider", "model": "m", "version": "1"},))
    d = evaluate(ctx(), {IMAGE: evidence(provenance(aider))}, ix, now=NOW, decision_id="d")
    assert [(v.rule, v.policy) for v in d.violations] == [
        ("tools.allowed", "AccountabilityPolicy/b")
    ]
    ok = evidence(provenance(change()))
    assert evaluate(ctx(), {IMAGE: ok}, ix, now=NOW, decision_id="d").outcome == "allowed"


def test_failure_policy_fail_wins_over_ignore() -> None:
    ignore = {"require": {"failurePolicy": "Ignore"}}
    assert two(ignore, ignore).fail_open
    assert not two(ignore, {"require": {"failurePolicy": "Fail"}}).fail_open
    assert not two({}, {}).fail_open


def test_a_silent_policy_counts_as_fail_against_another_policys_ignore() -> None:
    """Issue 7 item 7: the default Fail is a value in the merge, so Ignore cannot fail open."""
    e = two({"require": {"failurePolicy": "Ignore"}}, {"require": {}})
    assert not e.fail_open
    assert e.failure_policy == Req("Fail", Origin("AccountabilityPolicy/b", default=True))
    e = two({"require": {}}, {"require": {"failurePolicy": "Ignore"}})
    assert e.failure_policy == Req("Fail", Origin("AccountabilityPolicy/a", default=True))


def test_a_region_policy_that_is_silent_does_not_override_ignore() -> None:
    """Only an AccountabilityPolicy has defaults; a RegionPolicy adds what it states."""
    ix = index(
        [policy("a", require={"failurePolicy": "Ignore"})],
        [region_policy("eu", ["eu-*"], require={"tiers": {"*": {"approvals": 1}}})],
    )
    assert eff(ix, "eu-west-1").fail_open
    ix = index(
        [policy("a", require={"failurePolicy": "Ignore"})],
        [region_policy("eu", ["eu-*"], require={"failurePolicy": "Fail"})],
    )
    assert eff(ix, "eu-west-1").failure_policy == Req("Fail", Origin("RegionPolicy/eu"))


def test_provenance_and_revision_consistency_are_required_unless_a_policy_says_otherwise() -> None:
    """Issue 7 items 13, 14: the defaults of a matched policy; a relaxed one cannot weaken it."""
    silent = eff(index([policy("a", require={})]))
    assert silent.provenance == Req(True, Origin("AccountabilityPolicy/a", default=True))
    assert silent.consistent_revision == Req(True, Origin("AccountabilityPolicy/a", default=True))
    relaxed = {"require": {"provenance": {"required": False}, "consistentRevision": False}}
    off = eff(index([policy("a", **relaxed)]))
    assert off.provenance is None
    assert off.consistent_revision is None
    both = two(relaxed, {"require": {}})
    assert both.provenance == Req(True, Origin("AccountabilityPolicy/b", default=True))
    assert both.consistent_revision == Req(True, Origin("AccountabilityPolicy/b", default=True))


def test_signers_intersect() -> None:
    both = {"keys": [{"name": "ci", "publicKey": PEM}, {"name": "old", "publicKey": OTHER_PEM}]}
    only_ci = {"keys": [{"name": "ci-renamed", "publicKey": PEM}]}
    assert two({"signers": both}, {"signers": only_ci}).signers == (KeySigner("ci", PEM),)
    keyless = {
        "keyless": [
            {
                "name": "gha",
                "issuer": "https://token.actions.githubusercontent.com",
                "identity": "https://github.com/example/shop/.github/workflows/release.yml@refs/heads/main",
            }
        ]
    }
    e = two({"signers": keyless}, {"signers": None})
    assert e.signers == (
        KeylessSigner(
            "gha",
            "https://token.actions.githubusercontent.com",
            "https://github.com/example/shop/.github/workflows/release.yml@refs/heads/main",
        ),
    )
    assert two({"signers": both}, {"signers": keyless}).signers == ()


def test_keyless_signers_subject_regexp_and_trusted_root() -> None:
    issuer = "https://token.actions.githubusercontent.com"
    regexp = r"https://github\.com/example/shop/\.github/workflows/release\.yml@refs/tags/v.*"
    keyless: dict[str, list[dict[str, object]]] = {
        "keyless": [
            {
                "name": "gha-tags",
                "issuer": issuer,
                "subjectRegExp": regexp,
                "trustedRoot": {"configMapRef": {"name": "private-sigstore"}},
            },
            {"name": "k8s", "issuer": "https://kubernetes.default.svc/", "subject": "x"},
        ]
    }
    e = two({"signers": keyless}, {"signers": None})
    assert e.signers == (
        KeylessSigner(
            "gha-tags",
            issuer,
            identity_regexp=regexp,
            trusted_root_ref="private-sigstore/trusted_root.json",
        ),
        KeylessSigner("k8s", "https://kubernetes.default.svc/", "x"),
    )
    # The same issuer and subject with another trusted root is another signer: no intersection.
    other_root = {"keyless": [{**keyless["keyless"][0], "trustedRoot": None}]}
    assert two({"signers": keyless}, {"signers": other_root}).signers == ()


@pytest.mark.parametrize(
    ("signer", "error"),
    [
        ({"subject": "a", "subjectRegExp": "b"}, "give exactly one of subject and subjectRegExp"),
        ({}, "give exactly one of subject and subjectRegExp"),
        ({"subjectRegExp": "("}, "subjectRegExp is not a regular expression: missing ), "),
    ],
)
def test_keyless_signer_needs_one_valid_subject(signer: dict[str, str], error: str) -> None:
    with pytest.raises(ValidationError) as info:
        Signers.model_validate(
            {"keyless": [{"name": "ci", "issuer": "https://issuer.example", **signer}]}
        )
    assert f"keyless signer ci: {error}" in str(info.value)


def test_exception_length_takes_the_minimum_and_groups_intersect() -> None:
    e = two(
        {"exceptions": {"maxDays": 3}, "groups": {"security": ["sam", "rita"]}},
        {"exceptions": {"maxDays": 7}, "groups": {"security": ["SAM"]}},
    )
    assert e.exception_max_days == Req(3, Origin("AccountabilityPolicy/a"))
    assert e.members("security") == frozenset({"sam"})


def test_match_by_namespace_selector_region_and_cluster() -> None:
    sel = {
        "matchLabels": {"team": "payments"},
        "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["dev"]}],
    }
    ix = index(
        [policy(match={"namespaceSelector": sel, "regions": ["eu-*"], "clusters": ["prod-*"]})]
    )

    def hit(**kw: object) -> bool:
        args = {
            "cluster": "prod-1",
            "region": "eu-west-1",
            "namespace": "shop",
            "namespace_labels": {"team": "payments"},
            "image": IMAGE,
        } | kw
        return ix.effective(**args) is not None  # type: ignore[arg-type]

    assert hit()
    assert not hit(region="us-east-1")
    assert not hit(cluster="staging-1")
    assert not hit(namespace_labels={"team": "web"})
    assert not hit(namespace_labels={"team": "payments", "tier": "dev"})


EU = region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"])
#: The test registry, declared in a location below us (us-east-1 is in us).
US_REGISTRY = {"registry": "registry.example", "location": "us-east-1"}
SECURITY_FIX = (
    f"get an approval from a member of `security` (sam) on the final revision of {PR_URL}, then run"
)


def test_eu_region_policy_is_stricter_in_eu_west_1_than_us_east_1() -> None:
    ix = index([policy()], [EU])
    ev = {IMAGE: evidence(provenance(), review(approval("rita")))}
    us = evaluate(ctx(region="us-east-1"), ev, ix, now=NOW, decision_id="d")
    eu = evaluate(ctx(region="eu-west-1"), ev, ix, now=NOW, decision_id="d")
    assert us.outcome == "allowed"
    assert eu.outcome == "denied"
    (v,) = eu.violations
    assert (v.rule, v.policy, v.control) == (
        "review.critical.securityReview",
        "preset/pci-dss via RegionPolicy/eu",
        "PCI DSS 6.2.4",
    )
    assert v.found == "independent approvals by rita, none a member of `security`"
    assert v.expected == (
        "an independent approval by a member of `security` "
        "(AI-involved changes touch tier critical: src/auth/login.py)"
    )
    assert v.fix.startswith(SECURITY_FIX)
    assert [p.name for p in eu.policies] == ["baseline", "eu"]
    ok = {IMAGE: evidence(provenance(), review(approval("rita"), approval("sam")))}
    assert evaluate(ctx(region="eu-west-1"), ok, ix, now=NOW, decision_id="d").outcome == "allowed"


def test_region_policy_alone_brings_no_image_under_policy() -> None:
    ix = index([], [EU])
    assert (
        ix.effective(
            cluster="c", region="eu-west-1", namespace="shop", namespace_labels={}, image=IMAGE
        )
        is None
    )


def test_preset_rules_cite_their_controls_through_extends() -> None:
    e = eff(index([policy()], [EU]), region="eu-west-1")
    assert e.retention_days == Req(
        365, Origin("preset/pci-dss via RegionPolicy/eu", "PCI DSS 10.5.1")
    )
    assert e.exception_max_days == Req(
        7, Origin("preset/soc2 via preset/pci-dss via RegionPolicy/eu", "SOC 2 CC8.1")
    )
    assert e.require_digest_req is None  # no preset demands digests: the webhook pins tags
    assert e.treat_unknown_as_ai is not None


def test_explain_policy_names_the_source_of_each_requirement() -> None:
    text = explain_policy(eff(index([policy()], [EU]), region="eu-west-1"))
    lines = text.splitlines()
    assert lines[:4] == [
        "Effective policy",
        "  policies: AccountabilityPolicy/baseline (generation 1), RegionPolicy/eu (generation 1)",
        "  trusted signers: ci (key)  <- AccountabilityPolicy/baseline",
        "  group secure-code-reviewers: rita, sam",
    ]
    body = [" ".join(line.split()) for line in lines]
    assert (
        "review.critical.securityReview (AI-involved changes): true <- preset/pci-dss via RegionPolicy/eu [PCI DSS 6.2.4]"
        in body
    )
    assert (
        "review.critical.independentApprovals (AI-involved changes): 1 <- AccountabilityPolicy/baseline"
        in body
    )
    assert (
        "review.*.reviewerGroups (all changes): [secure-code-reviewers] <- preset/pci-dss via RegionPolicy/eu [PCI DSS 6.2.3.1]"
        in body
    )
    assert (
        "evidence.retentionDays (not checked at admission): 365 <- preset/pci-dss via "
        "RegionPolicy/eu [PCI DSS 10.5.1]" in body
    )
    assert "mode: Enforce <- AccountabilityPolicy/baseline" in body
    assert "failurePolicy: Fail <- AccountabilityPolicy/baseline (default)" in body
    # one switch, both rules it governs named, each with where it comes from
    assert "revision.consistent: true <- AccountabilityPolicy/baseline" in body
    assert "repository.consistent: true <- AccountabilityPolicy/baseline" in body


def test_fedramp_requires_tool_details_and_us_residency() -> None:
    where = region_policy("us", ["us-*"], evidence={"registryLocations": [US_REGISTRY]})
    ix = index([policy(jurisdictions=["us-fedramp-moderate"])], [where])
    e = eff(ix)
    assert [r.value for r in e.residency] == ["us"]
    bare = change(tools=({"name": "claude-code"},))
    d = evaluate(
        ctx(),
        {IMAGE: evidence(provenance(bare), review(approval("rita"), approval("sam")))},
        ix,
        now=NOW,
        decision_id="d",
    )
    assert [(v.rule, v.control) for v in d.violations] == [
        ("tools.details", "NIST SP 800-53 SA-15")
    ]


def test_slsa_source_l4_needs_two_humans_on_every_change() -> None:
    ix = index([policy(jurisdictions=["slsa-source-l4"])])
    human = provenance(change(involvement="none", files=(("README.md", "low"),)))
    d = evaluate(
        ctx(), {IMAGE: evidence(human, review(approval("rita")))}, ix, now=NOW, decision_id="d"
    )
    assert [(v.rule, v.expected) for v in d.violations] == [
        ("review.*.independentApprovals", "at least 2 (changes touch any tier: README.md)"),
        ("review.*.humanApprovals", "at least 2 (changes touch any tier: README.md)"),
    ]


@pytest.mark.parametrize("preset", ["soc2", "pci-dss", "us-fedramp-moderate", "eu"])
def test_compliance_presets_review_every_change_not_only_declared_ai(preset: str) -> None:
    # their controls (CC8.1, PCI 6.2.3, CM-3) cover every change, whoever wrote it; whether a
    # change was AI-involved is the committer's own word (an "AI-Assisted: no" trailer), so a
    # change declared human-written to the auth code was allowed with no review at all
    ix = index([policy(jurisdictions=[preset])])
    human = provenance(change(involvement="none"))
    d = evaluate(ctx(), {IMAGE: evidence(human)}, ix, now=NOW, decision_id="d")
    assert "review.present" in [v.rule for v in d.violations], preset
    reviewed = evidence(human, review(approval("rita"), approval("sam")))
    d = evaluate(ctx(), {IMAGE: reviewed}, ix, now=NOW, decision_id="d")
    assert not [v.rule for v in d.violations if v.rule.startswith("review.")], preset


def test_every_preset_rule_cites_a_control() -> None:
    from affidavit.policy.explain import requirements
    from affidavit.policy.presets import PRESETS

    for name in PRESETS:
        e = eff(index([policy("p", jurisdictions=[name], require={}, signers=None)]))
        uncited = [
            rule
            for rule, _, origin in requirements(e)
            if origin.source.startswith("preset/") and not origin.control
        ]
        assert uncited == [], name

"""Exceptions that cannot apply, and policies that cannot be met, say so (issue 7, items 17, 21).

Every exception is bounded by the cluster's maximum (default 7 days) even without presets, and
by every policy or preset that governs its images; ``images: ["*"]`` is refused; an exception no
policy here governs is refused; a policy whose reviewer group no policy defines, and a region
glob that can match no region, are reported. ``explain`` says why an exception did not apply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from affidavit.policy import Origin, PolicyIndex, Req, evaluate
from affidavit.policy.health import (
    exception_problems,
    missing_groups,
    region_condition,
    why_not_applied,
    without_exceptions,
)
from affidavit.policy.model import AccountabilityPolicySpec
from policy_builders import (
    IMAGE,
    NOW,
    REPO,
    ctx,
    evidence,
    exception,
    index,
    obj,
    policy,
    provenance,
)

KEY = "AccountabilityException/shop/hotfix"
CLUSTER_MAX = (
    "spec.expiresAt: the exception lasts {lasts} (creationTimestamp 2026-11-29T00:00:00Z to "
    "expiresAt {expires}); {source} allows at most {days} days; set expiresAt no later than "
    "{latest}"
)


def hotfix(**spec: Any) -> dict[str, Any]:
    return exception("hotfix", **spec)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            {"images": ["*"]},
            "spec: Value error, images[0] '*' must start with literal text (a registry, "
            "repository or name prefix), not a wildcard: an exception for every image switches "
            "the policy off",
        ),
        (
            {"images": ["registry.example/shop/*", "*/payments"]},
            "spec: Value error, images[1] '*/payments' must start with literal text (a "
            "registry, repository or name prefix), not a wildcard: an exception for every image "
            "switches the policy off",
        ),
        (
            {"images": [], "workloads": [{"kind": "Deployment", "name": "*"}]},
            "spec: Value error, workloads[0].name '*' must start with literal text (a workload "
            "name or prefix), not a wildcard: an exception for every workload switches the "
            "policy off",
        ),
        (
            {"workloads": [{"kind": "Pod", "name": "checkout-*"}, {"kind": "Pod", "name": "?*"}]},
            "spec: Value error, workloads[1].name '?*' must start with literal text (a workload "
            "name or prefix), not a wildcard: an exception for every workload switches the "
            "policy off",
        ),
    ],
)
def test_an_exception_for_everything_is_refused(spec: dict[str, Any], error: str) -> None:
    ix = index(exceptions=[hotfix(**spec)])
    assert ix.errors == {KEY: error}
    assert ix.exceptions == ()


def test_every_exception_is_bounded_by_the_cluster_maximum_without_any_preset() -> None:
    long = hotfix(expiresAt="2026-12-09T00:00:00Z")  # 10 days after creationTimestamp
    ix = index(exceptions=[long])
    assert ix.errors == {
        KEY: CLUSTER_MAX.format(
            lasts="10 days",
            expires="2026-12-09T00:00:00Z",
            source="cluster setting exceptionMaxDays",
            days=7,
            latest="2026-12-06T00:00:00Z",
        )
    }
    roomy = PolicyIndex.from_objects([policy()], [], [long], exception_max_days=14)
    assert roomy.errors == {}
    assert PolicyIndex.from_json(roomy.to_json()).exception_max_days == 14


def test_the_cluster_maximum_is_part_of_every_effective_policy() -> None:
    eff = index().effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None
    assert eff.exception_max_days == Req(7, Origin("cluster setting exceptionMaxDays"))


def test_an_exception_without_creation_time_is_measured_from_the_request() -> None:
    far = exception("far", expiresAt=(NOW + timedelta(days=30)).isoformat())
    del far["metadata"]["creationTimestamp"]
    ix = index(exceptions=[far])
    assert ix.errors == {}
    d = evaluate(ctx(), {IMAGE: evidence(provenance())}, ix, now=NOW, decision_id="d")
    assert (d.outcome, d.exception) == ("denied", None)


def test_an_exception_longer_than_a_governing_policy_allows_is_invalid() -> None:
    six = hotfix(expiresAt="2026-12-05T00:00:00Z")  # 6 days: within the cluster's 7
    strict = policy("strict", exceptions={"maxDays": 3})
    ix = index([policy(), strict], exceptions=[six])
    problems = exception_problems(ix, cluster="prod-1", region="us-east-1")
    assert problems == {
        KEY: CLUSTER_MAX.format(
            lasts="6 days",
            expires="2026-12-05T00:00:00Z",
            source="AccountabilityPolicy/strict",
            days=3,
            latest="2026-12-02T00:00:00Z",
        )
    }
    cleaned = without_exceptions(ix, problems)
    assert cleaned.exceptions == ()
    assert cleaned.errors == problems
    elsewhere = policy("strict", exceptions={"maxDays": 3}, match={"images": ["other.example/*"]})
    ix = index([policy(), elsewhere], exceptions=[six])
    assert exception_problems(ix, cluster="prod-1", region="us-east-1") == {}


def test_a_preset_through_a_region_policy_bounds_the_exception_in_its_region_only() -> None:
    ten_days = hotfix(expiresAt="2026-12-09T00:00:00Z")
    ix = PolicyIndex.from_objects(
        [policy()],
        [obj("RegionPolicy", "eu", {"regions": ["eu-*"], "jurisdictions": ["pci-dss"]})],
        [ten_days],
        exception_max_days=14,
    )
    assert exception_problems(ix, cluster="prod-1", region="us-east-1") == {}
    assert exception_problems(ix, cluster="prod-1", region="eu-west-1") == {
        KEY: CLUSTER_MAX.format(
            lasts="10 days",
            expires="2026-12-09T00:00:00Z",
            source="preset/soc2 via RegionPolicy/eu",
            days=7,
            latest="2026-12-06T00:00:00Z",
        )
    }


def test_an_exception_for_images_no_policy_governs_is_invalid() -> None:
    typo = hotfix(images=["registry.example/shop/paymnets*"])
    scoped = policy(match={"images": [f"{REPO}*"]})
    ix = index([scoped], exceptions=[typo])
    assert exception_problems(ix, cluster="prod-1", region="us-east-1") == {
        KEY: "spec.images: no AccountabilityPolicy in cluster prod-1 (region us-east-1) governs "
        "registry.example/shop/paymnets*, so there is nothing to except; name the images as the "
        "policy's match.images does"
    }
    broad = policy(match={"images": ["registry.example/shop/*"]})
    assert exception_problems(index([broad], exceptions=[typo]), cluster="c", region="r") == {}


def test_explain_says_why_an_exception_does_not_apply() -> None:
    ix = index([policy(exceptions={"maxDays": 1})], exceptions=[hotfix()])
    eff = ix.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None and eff.exception_max_days is not None
    (e,) = ix.exceptions
    (ref,) = ix.exceptions_for("shop", "Deployment", "payments", IMAGE, NOW)
    bound = (eff.exception_max_days.value, str(eff.exception_max_days.origin))

    def why(**kw: Any) -> str | None:
        args: dict[str, Any] = {"kind": "Deployment", "name": "payments", "image": IMAGE}
        return why_not_applied(e, ref, max_days=bound, **({"now": NOW} | args | kw))

    assert why() is None  # 24 hours: within the policy's 1 day
    assert why(image="other.example/x:1") == (f"names images {REPO}*, not other.example/x:1")
    assert why(now=NOW + timedelta(days=1)) == "expired at 2026-11-30T00:00:00Z"
    short = (1, "AccountabilityPolicy/baseline")
    long_ix = index([policy()], exceptions=[hotfix(expiresAt="2026-12-01T00:00:00Z")])
    (long_e,) = long_ix.exceptions
    (long_ref,) = long_ix.exceptions_for("shop", "Deployment", "payments", IMAGE, NOW)
    assert (
        why_not_applied(
            long_e,
            long_ref,
            kind="Deployment",
            name="payments",
            image=IMAGE,
            now=NOW,
            max_days=short,
        )
        == "lasts 2 days, longer than the 1 days AccountabilityPolicy/baseline allows"
    )


def test_a_preset_needing_a_group_no_policy_defines_is_reported() -> None:
    spec = AccountabilityPolicySpec.model_validate({"jurisdictions": ["pci-dss"]})
    lonely = index([obj("AccountabilityPolicy", "p", {"jurisdictions": ["pci-dss"]})])
    assert missing_groups(lonely, spec.require, spec.jurisdictions, "AccountabilityPolicy/p") == (
        "preset/pci-dss tiers.*.reviewerGroups needs an approver from `secure-code-reviewers`; "
        "preset/pci-dss tiers.critical.securityReview needs an approver from `security`, and no "
        "AccountabilityPolicy or RegionPolicy defines it: every change that rule covers is "
        "denied; define the group in spec.groups (members' logins or emails)"
    )
    defined = index([policy("p", jurisdictions=["pci-dss"])])  # baseline defines both groups
    assert missing_groups(defined, spec.require, spec.jurisdictions, "p") is None


def test_region_globs_that_match_no_region_are_refused_and_others_reported() -> None:
    ix = index(regions=[obj("RegionPolicy", "eu", {"regions": ["EU-*"]})])
    assert ix.errors == {
        "RegionPolicy/eu": "spec.regions: Value error, regions[0] 'EU-*' can match no region: "
        "region names are lower-case letters, digits and '-' (e.g. eu-west-1), globs may add "
        "* ? [...]"
    }
    assert region_condition(["eu-*"], "eu-west-1").status == "True"
    other = region_condition(["eu-*"], "us-east-1")
    assert (other.status, other.reason, other.message) == (
        "False",
        "OtherRegion",
        "regions eu-* do not include this cluster's region us-east-1: it has no effect here",
    )
    assert region_condition(["eu-*"], "").reason == "RegionUnknown"

"""evidence.residency: the image's registry must be one a RegionPolicy places in the location.

The eu and us-fedramp-moderate presets require it; before this rule it was only shown by
``explain``. Each case goes through the real index, combination and evaluation.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.explain import explain_policy
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    approval,
    ctx,
    evidence,
    index,
    policy,
    provenance,
    pseudonymous,
    region_policy,
    review,
)

EU_SOURCE = "preset/eu via RegionPolicy/eu"


def eu(*locations: dict[str, str], preset: bool = True) -> dict[str, Any]:
    """The EU regional operator's RegionPolicy: the eu preset and where registries are."""
    spec: dict[str, Any] = {"evidence": {"registryLocations": list(locations)}}
    if preset:
        spec["jurisdictions"] = ["eu"]
    return region_policy("eu", ["eu-*"], **spec)


def at(registry: str, location: str) -> dict[str, str]:
    return {"registry": registry, "location": location}


def judge(
    ix: PolicyIndex, image: str = IMAGE, *, reachable: bool = True, region: str = "eu-west-1"
) -> Decision:
    # the eu preset also names people by pseudonyms (test_policy_pseudonymous)
    rev = review(approval("rita"), approval("sam"))
    ev = evidence(pseudonymous(provenance()), pseudonymous(rev), image=image)
    found = {image: ev if reachable else None}
    return evaluate(ctx(region=region, images=(image,)), found, ix, now=NOW, decision_id="d")


def residency(d: Decision) -> list[str]:
    return [v.message for v in d.violations if v.rule == "evidence.residency"]


@pytest.mark.parametrize(
    "location",
    ["eu", "eu-central-1", "EU", "Eu-West-3"],
)
def test_a_registry_declared_in_the_location_or_below_it_meets_the_residency(
    location: str,
) -> None:
    d = judge(index([policy()], [eu(at("registry.example", location))]))
    assert d.outcome == "allowed", [v.message for v in d.violations]


def test_an_undeclared_registry_is_in_no_location_and_the_fix_says_how_to_declare_it() -> None:
    d = judge(index([policy()], [eu()]))
    assert d.outcome == "denied"
    assert residency(d) == [
        f"{IMAGE}: evidence.residency ({EU_SOURCE} [GDPR Chapter V]): found registry.example "
        "keeps the image and its attestations, and no RegionPolicy that applies here says where "
        "it stores data; expected the image and its attestations in a registry located in eu (no "
        "RegionPolicy that applies here declares one); fix: declare where this region's "
        "registries store data: add `evidence.registryLocations: [{registry: registry.example, "
        "location: eu}]` to the RegionPolicy for this region if registry.example stores data in "
        "eu, or copy the image with its attestations (`affidavit copy`) into a registry that does"
    ]


def test_a_registry_elsewhere_is_refused_and_the_fix_copies_the_image_into_the_region() -> None:
    ix = index(
        [policy()],
        [eu(at("registry.example", "us"), at("*.eu.example", "eu"), at("mirror.eu.example", "eu"))],
    )
    d = judge(ix)
    assert d.outcome == "denied"
    assert residency(d) == [
        f"{IMAGE}: evidence.residency ({EU_SOURCE} [GDPR Chapter V]): found registry.example "
        "keeps the image and its attestations, and is declared in us (RegionPolicy/eu); expected "
        "the image and its attestations in a registry located in eu: *.eu.example "
        "(RegionPolicy/eu), mirror.eu.example (RegionPolicy/eu); fix: copy the image with its "
        "attestations into a registry in eu (`affidavit copy registry.example/shop/payments@"
        f"{DIGEST} mirror.eu.example/shop/payments`), deploy that copy, and let a policy's "
        "match.images name it"
    ]


@pytest.mark.parametrize(
    ("declared", "image", "met"),
    [
        ("*.eu.example", "mirror.eu.example/shop/payments", True),
        ("*.eu.example", "a.b.eu.example/shop/payments", True),
        ("*.eu.example", "mirror.eu.example.attacker.net/shop/payments", False),
        ("*.eu.example", "eu.example/shop/payments", False),
        ("registry.eu.example", "registry.eu.example:5000/shop/payments", False),
        ("registry.eu.example:*", "registry.eu.example:5000/shop/payments", True),
        ("REGISTRY.EU.EXAMPLE:443", "registry.eu.example/shop/payments", True),
        ("index.docker.io", "nginx", True),
        ("docker.io", "registry-1.docker.io/library/nginx", True),
        ("127.0.0.1:5000", "127.0.0.1:5000/shop/payments", True),
        ("127.0.0.1:5000", "127.0.0.1:5001/shop/payments", False),
        ("[::1]:5000", "[::1]:5000/shop/payments", True),
        ("[0:0::1]:5000", "[::1]:5000/shop/payments", True),
        ("[::1]:5000", "[::2]:5000/shop/payments", False),
    ],
)
def test_registries_are_compared_in_canonical_form(declared: str, image: str, met: bool) -> None:
    ix = index([policy(match={"images": []})], [eu(at(declared, "eu"))])
    pinned = f"{image}@{DIGEST}"
    d = judge(ix, pinned)
    assert (residency(d) == []) is met, residency(d)


def test_conflicting_declarations_meet_neither_location() -> None:
    us = region_policy(
        "us-mirror", ["*"], evidence={"registryLocations": [at("registry.example", "us")]}
    )
    d = judge(index([policy()], [eu(at("registry.example", "eu")), us]))
    assert d.outcome == "denied"
    (message,) = residency(d)
    assert "declared in eu (RegionPolicy/eu), us (RegionPolicy/us-mirror)" in message


def test_residency_holds_when_the_registry_cannot_be_reached_even_failing_open() -> None:
    """The registry's location is known without asking it: Ignore admits an outage, not a
    registry outside the region."""
    lax = policy(require={"provenance": {"required": True}, "failurePolicy": "Ignore"})
    d = judge(index([lax], [eu()]), reachable=False)
    assert d.outcome == "denied"
    assert [v.rule for v in d.violations] == ["evidence.residency"]
    inside = judge(index([lax], [eu(at("registry.example", "eu"))]), reachable=False)
    assert inside.outcome == "allowed"


def test_a_warn_policy_warns() -> None:
    d = judge(index([policy(mode="Warn")], [eu()]))
    assert d.outcome == "warned"
    assert len(residency(d)) == 1


def test_a_region_policy_of_another_region_neither_requires_nor_declares() -> None:
    assert judge(index([policy()], [eu()]), region="us-east-1").outcome == "allowed"
    declared_elsewhere = region_policy(
        "apac", ["ap-*"], evidence={"registryLocations": [at("registry.example", "eu")]}
    )
    d = judge(index([policy()], [eu(), declared_elsewhere]))
    assert len(residency(d)) == 1


def test_declarations_without_a_residency_require_nothing() -> None:
    d = judge(index([policy()], [eu(at("registry.example", "us"), preset=False)]))
    assert d.outcome == "allowed"


def test_a_residency_written_by_a_region_policy_is_compared_in_lower_case() -> None:
    spec = {"evidence": {"residency": "EU", "registryLocations": [at("registry.example", "eu")]}}
    d = judge(index([policy()], [region_policy("eu", ["eu-*"], **spec)]))
    assert d.outcome == "allowed", residency(d)


@pytest.mark.parametrize(
    "registry", ["registry.example/shop", "", "registry example", "https://registry.example"]
)
def test_a_declaration_that_names_no_registry_host_is_invalid(registry: str) -> None:
    ix = index([policy()], [eu(at(registry, "eu"))])
    assert "RegionPolicy/eu" in ix.errors


def test_explain_shows_the_residency_and_where_each_registry_is() -> None:
    ix = index([policy()], [eu(at("registry.example", "eu-central-1"))])
    effective = ctx(region="eu-west-1").effective(ix, IMAGE)
    assert effective is not None
    body = [" ".join(line.split()) for line in explain_policy(effective).splitlines()]
    assert "evidence.residency: eu <- preset/eu via RegionPolicy/eu [GDPR Chapter V]" in body
    assert "evidence.registryLocation: registry.example in eu-central-1 <- RegionPolicy/eu" in body
    assert any(line.startswith("evidence.pseudonymousIdentities: true") for line in body)


def test_the_status_says_when_no_registry_of_the_region_is_declared_in_the_residency() -> None:
    from affidavit.policy import health

    ix = index([policy(jurisdictions=["eu"])], [eu(at("registry.example", "us"))])
    (region,) = ix.region_policies
    (baseline,) = ix.policies
    for spec, source in (
        (region.spec, "RegionPolicy/eu"),
        (baseline.spec, "AccountabilityPolicy/baseline"),
    ):
        evidence = region.spec.evidence if spec is region.spec else None
        why = health.missing_locations(ix, evidence, spec.jurisdictions, source, "eu-west-1")
        assert why == (
            "preset/eu evidence.residency needs images from registries located in eu, and no "
            "RegionPolicy that applies in region eu-west-1 declares one: every image it covers is "
            "denied; declare where this region's registries store data in a RegionPolicy's "
            "evidence.registryLocations"
        )
    placed = index([policy()], [eu(at("*.eu.example", "eu-central-1"))])
    (region,) = placed.region_policies
    assert (
        health.missing_locations(
            placed, region.spec.evidence, region.spec.jurisdictions, "RegionPolicy/eu", "eu-west-1"
        )
        is None
    )
    # a RegionPolicy of another region declares nothing here
    assert (
        health.missing_locations(
            placed, region.spec.evidence, region.spec.jurisdictions, "RegionPolicy/eu", "us-east-1"
        )
        is not None
    )
    assert not health.applies_here(region.spec, "prod-eu-1", "us-east-1")
    assert health.applies_here(region.spec, "prod-eu-1", "eu-north-1")


def test_the_evidence_a_decision_used_records_where_its_registry_is_placed() -> None:
    from affidavit.policy.explain import explain_decision

    d = judge(index([policy()], [eu(at("registry.example", "eu-central-1"))]))
    assert d.outcome == "allowed"
    assert {e.location for e in d.evidence} == {"registry.example in eu-central-1"}
    assert "stored at registry.example in eu-central-1" in explain_decision(d)
    # no residency in force: nothing recorded, the row stays as it was
    elsewhere = judge(index([policy()], [eu(at("registry.example", "eu"))]), region="us-east-1")
    assert elsewhere.evidence and {e.location for e in elsewhere.evidence} == {None}


@pytest.mark.parametrize(
    ("registry", "valid"),
    [
        ("*", False),
        ("*:5000", False),
        ("*.com", False),
        ("*.*.com", False),
        ("registry.*", False),
        ("*.eu.example", True),
        ("registry-?.eu.example:*", True),
        ("localhost:5000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:5000", True),
    ],
)
def test_a_glob_that_names_no_domain_cannot_place_registries(registry: str, valid: bool) -> None:
    ix = index([policy()], [eu(at(registry, "eu"))])
    assert ("RegionPolicy/eu" not in ix.errors) is valid, ix.errors
    if not valid:
        assert (
            "a glob must end with a domain of at least two literal labels"
            in ix.errors["RegionPolicy/eu"]
        )


def test_an_ipv6_registry_is_named_as_written_in_the_denial_and_explain() -> None:
    ix = index([policy(match={"images": []})], [eu(at("[::1]:5000", "eu"))])
    d = judge(ix)
    (message,) = residency(d)
    assert (
        "expected the image and its attestations in a registry located in eu: [::1]:5000 ("
        in message
    )
    assert "`affidavit copy registry.example/shop/payments@" in message
    assert "[::1]:5000/shop/payments`" in message
    effective = ctx(region="eu-west-1").effective(ix, IMAGE)
    assert effective is not None
    assert "evidence.registryLocation: [::1]:5000 in eu" in " ".join(
        explain_policy(effective).split()
    )

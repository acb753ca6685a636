"""One name for one image in the policy layer, and what an image outside every policy gets.

A policy naming the canonical form covers every spelling of the image (and a policy written
``acme/*`` means ``docker.io/acme/*``); decisions record the canonical reference. An image no
policy matches is warned about by default, denied under ``unmatchedImages: Deny`` or under a
preset that demands it (pci-dss, us-fedramp-moderate) from a RegionPolicy of the cluster's region
or a policy that governs the namespace, and never excepted.
"""

from __future__ import annotations

from typing import Any

import pytest

from affidavit.policy import Decision, ImageRef, PolicyIndex, admission_message, evaluate
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    approval,
    ctx,
    evidence,
    exception,
    index,
    policy,
    provenance,
    region_policy,
    review,
)

HUB = f"docker.io/acme/app@{DIGEST}"


def judge(ix: PolicyIndex, *images: str, ev: dict[str, Any] | None = None, **kw: Any) -> Decision:
    c = ctx(images=images, **kw)
    return evaluate(c, ev or {}, ix, now=NOW, decision_id="d-1")


@pytest.mark.parametrize(
    "written",
    [
        f"acme/app@{DIGEST}",
        f"docker.io/acme/app@{DIGEST}",
        f"index.docker.io/acme/app@{DIGEST}",
        f"registry-1.docker.io:443/acme/app@{DIGEST}",
        f"DOCKER.IO/acme/app@{DIGEST}",
    ],
)
@pytest.mark.parametrize("glob", ["docker.io/acme/*", "acme/*", "INDEX.DOCKER.IO/acme/app"])
def test_every_spelling_is_judged_by_the_policy_that_names_the_image(
    written: str, glob: str
) -> None:
    ix = index([policy(match={"images": [glob]})])
    d = judge(ix, written, ev={HUB: evidence(provenance(), None, image=HUB)})
    assert d.outcome == "denied"
    assert d.images == (ImageRef(HUB, DIGEST),)
    assert [(v.rule, v.image) for v in d.violations] == [("review.present", HUB)]
    assert f"affidavit attest {HUB} --predicate review.json" in admission_message(d)


@pytest.mark.parametrize(
    "written", ["registry.example.com:443/x", "REGISTRY.EXAMPLE.COM/x", "registry.example.com/x"]
)
def test_host_case_and_default_port_do_not_escape(written: str) -> None:
    ix = index([policy(match={"images": ["registry.example.com/x"]})])
    eff = ix.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=written
    )
    assert eff is not None
    d = judge(ix, written)
    assert d.images == (ImageRef("registry.example.com/x:latest", None),)
    assert d.outcome == "denied"


def test_official_image_globs_and_duplicates() -> None:
    ix = index([policy(match={"images": ["nginx"]})])
    d = judge(ix, "nginx", "docker.io/library/nginx:latest", "index.docker.io/nginx")
    assert d.images == (ImageRef("docker.io/library/nginx:latest", None),)  # judged once
    assert {v.image for v in d.violations} == {"docker.io/library/nginx:latest"}


def test_an_exception_names_the_image_in_any_spelling() -> None:
    ix = index(
        [policy(match={"images": ["acme/*"]})],
        exceptions=[exception("hotfix", images=["index.docker.io/acme/app*"])],
    )
    d = judge(ix, f"acme/app@{DIGEST}")
    assert (d.outcome, d.exception) == ("excepted", "shop/hotfix")


# --- images no policy matches ------------------------------------------------------------------

UNMATCHED = "localhost:5000/shop/payments:latest"


def unmatched_message(image: str, source: str, setting: str, control: str | None = None) -> str:
    cite = f" [{control}]" if control else ""
    name = image.rsplit(":", 1)[0]
    return (
        f"{image}: image.unmatched ({source}{cite}): found no AccountabilityPolicy matches this "
        f"image; expected every image under an AccountabilityPolicy (unmatchedImages: {setting}); "
        f"fix: add {name} (or a glob that covers it) to match.images of an AccountabilityPolicy, "
        "or run the image under the name a policy covers; "
        f"`affidavit explain {image} --policy FILE` shows what matches"
    )


def covered_only() -> PolicyIndex:
    return index([policy(match={"images": ["127.0.0.1:5000/shop/*"]})])


def test_an_unmatched_image_is_warned_about_by_default() -> None:
    d = judge(covered_only(), "localhost:5000/shop/payments")
    assert (d.outcome, d.mode, d.policies) == ("warned", "Warn", ())
    assert d.images == (ImageRef(UNMATCHED, None),)
    assert [v.message for v in d.violations] == [
        unmatched_message(UNMATCHED, "cluster setting unmatchedImages=Warn", "Warn")
    ]


def test_deny_refuses_and_allow_admits_in_silence() -> None:
    d = judge(covered_only(), "localhost:5000/shop/payments", unmatched_images="Deny")
    assert (d.outcome, d.mode) == ("denied", "Enforce")
    assert admission_message(d) == (
        "Affidavit denied Deployment/payments in namespace shop (decision d-1): 1 violation\n- "
        + unmatched_message(UNMATCHED, "cluster setting unmatchedImages=Deny", "Deny")
        + "\nrun `affidavit explain --decision d-1` for the full record"
    )
    d = judge(covered_only(), "localhost:5000/shop/payments", unmatched_images="Allow")
    assert (d.outcome, d.violations) == ("allowed", ())
    assert d.images == (ImageRef(UNMATCHED, None),)


def test_a_region_policy_preset_raises_the_cluster_setting() -> None:
    pci = region_policy("eu", ["eu-*"], jurisdictions=["pci-dss"])
    ix = index([policy(match={"images": ["127.0.0.1:5000/shop/*"]})], regions=[pci])
    d = judge(ix, "localhost:5000/shop/payments", region="eu-west-1")
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [
        unmatched_message(UNMATCHED, "preset/pci-dss via RegionPolicy/eu", "Deny", "PCI DSS 6.3.2")
    ]
    # the same cluster in another region: only the cluster's own setting
    d = judge(ix, "localhost:5000/shop/payments", region="us-east-1")
    assert d.outcome == "warned"


def test_a_policy_governing_the_namespace_raises_it_and_one_elsewhere_does_not() -> None:
    fedramp = policy(
        "gov",
        match={
            "images": ["127.0.0.1:5000/shop/*"],
            "namespaceSelector": {"matchLabels": {"tier": "gov"}},
        },
        jurisdictions=["us-fedramp-moderate"],
    )
    ix = index([fedramp])
    d = judge(ix, "localhost:5000/shop/payments", namespace_labels={"tier": "gov"})
    assert [v.message for v in d.violations] == [
        unmatched_message(
            UNMATCHED,
            "preset/us-fedramp-moderate via AccountabilityPolicy/gov",
            "Deny",
            "NIST SP 800-53 CM-7(5)",
        )
    ]
    d = judge(ix, "localhost:5000/shop/payments", namespace_labels={"tier": "dev"})
    assert d.outcome == "warned"


def test_soc2_and_eu_leave_the_cluster_setting_alone() -> None:
    regions = [region_policy("eu", ["eu-*"], jurisdictions=["eu", "soc2", "slsa-source-l4"])]
    ix = index([policy(match={"images": ["127.0.0.1:5000/shop/*"]})], regions=regions)
    assert judge(ix, "localhost:5000/shop/payments", region="eu-west-1").outcome == "warned"


def test_an_unmatched_image_cannot_be_excepted() -> None:
    ix = index(
        [policy(match={"images": ["127.0.0.1:5000/shop/*"]})],
        exceptions=[exception("hotfix", images=["localhost:5000/shop/*"])],
    )
    d = judge(ix, "localhost:5000/shop/payments", unmatched_images="Deny")
    assert (d.outcome, d.exception) == ("denied", None)


def test_a_conforming_image_beside_an_unmatched_one_is_warned() -> None:
    ix = index([policy(match={"images": ["registry.example/*"]})])
    ev = {IMAGE: evidence(provenance(), review(approval("rita")))}
    d = judge(ix, IMAGE, "nginx", ev=ev)
    assert d.outcome == "warned"
    assert [v.image for v in d.violations] == ["docker.io/library/nginx:latest"]

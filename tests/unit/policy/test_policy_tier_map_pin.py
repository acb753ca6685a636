"""Table tests of ``require.tierMapDigest`` (rule ``provenance.tierMap``).

A policy may pin the trust-tier map that classified the files of an image's provenance: a
pipeline that classified with another map (``--tiers`` of its own, a relaxed map committed on the
base revision, the built-in default) or that does not record its map is denied with the exact
text; pins from several policies must all hold; ``explain`` names the policy behind each pin; the
CRD rejects a digest that is not ``sha256:<64 hex>``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from affidavit.attestations.evidence import ImageEvidence
from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.combine import Origin, Req
from affidavit.policy.explain import requirements
from affidavit.policy.model import Require
from policy_builders import IMAGE, NOW, ctx, evidence, index, policy, provenance

PIN = "sha256:" + "11" * 32
OTHER = "sha256:" + "22" * 32
BASE = "b" * 40
PROV_TYPE = "https://affidavit.dev/attestations/ai-provenance/v1"
FIX = (
    "classify with the pinned map (commit it as .affidavit/tiers.yaml on the base revision, or "
    "pass it with --tiers), then run `affidavit collect provenance --repo . --base <base> "
    "--head <revision> --output provenance.json && affidavit attest "
    f"{IMAGE} --predicate provenance.json --type {PROV_TYPE} --key <key>`; if the map changed on "
    "purpose, update `require.tierMapDigest` in AccountabilityPolicy/{name}"
)


def pinned(name: str = "baseline", digest: str = PIN) -> dict[str, Any]:
    return policy(name, require={"provenance": {"required": True}, "tierMapDigest": digest})


def classified(digest: str | None, source: dict[str, str] | None = None) -> ImageEvidence:
    prov = provenance()
    if digest is not None:
        prov["collector"]["tiersDigest"] = digest
    if source is not None:
        prov["collector"]["tiersSource"] = source
    return evidence(prov)


def run(ix: PolicyIndex, ev: ImageEvidence) -> Decision:
    return evaluate(ctx(), {IMAGE: ev}, ix, now=NOW, decision_id="d-1")


def message(found: str, name: str = "baseline", digest: str = PIN) -> str:
    return (
        f"{IMAGE}: provenance.tierMap (AccountabilityPolicy/{name}): found {found}; expected "
        f"files classified with the pinned tier map {digest}; fix: {FIX.format(name=name)}"
    )


def test_the_pinned_map_is_admitted() -> None:
    ev = classified(
        PIN, {"kind": "base-revision", "path": ".affidavit/tiers.yaml", "revision": BASE}
    )
    d = run(index([pinned()]), ev)
    assert d.outcome == "allowed"
    assert d.violations == ()


@pytest.mark.parametrize(
    ("digest", "source", "found"),
    [
        pytest.param(OTHER, {"kind": "base-revision", "path": ".affidavit/tiers.yaml",
                             "revision": BASE},
                     f"provenance classified with tier map {OTHER} (.affidavit/tiers.yaml at "
                     f"base revision {BASE[:12]})", id="relaxed-map-at-base"),
        pytest.param(OTHER, {"kind": "file", "path": "/ci/lenient.yaml"},
                     f"provenance classified with tier map {OTHER} (--tiers /ci/lenient.yaml)",
                     id="tiers-file"),
        pytest.param(OTHER, {"kind": "built-in"},
                     f"provenance classified with tier map {OTHER} (the built-in default map)",
                     id="built-in"),
        pytest.param(OTHER, None,
                     f"provenance classified with tier map {OTHER} (source not recorded)",
                     id="no-source"),
        pytest.param(None, None,
                     "provenance that does not record its tier map (no collector.tiersDigest)",
                     id="no-digest"),
    ],
)  # fmt: skip
def test_another_map_is_denied(
    digest: str | None, source: dict[str, str] | None, found: str
) -> None:
    d = run(index([pinned()]), classified(digest, source))
    assert d.outcome == "denied"
    assert [v.message for v in d.violations] == [message(found)]


def test_pins_of_several_policies_must_all_hold() -> None:
    ix = index([pinned("a", PIN), pinned("b", OTHER)])
    d = run(ix, classified(PIN))
    assert [v.message for v in d.violations] == [
        message(f"provenance classified with tier map {PIN} (source not recorded)", "b", OTHER)
    ]
    e = ix.effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert e is not None
    assert e.tier_map_digests == (
        Req(PIN, Origin("AccountabilityPolicy/a")),
        Req(OTHER, Origin("AccountabilityPolicy/b")),
    )
    assert [(r, v, str(o)) for r, v, o in requirements(e) if r == "provenance.tierMap"] == [
        ("provenance.tierMap", PIN, "AccountabilityPolicy/a"),
        ("provenance.tierMap", OTHER, "AccountabilityPolicy/b"),
    ]


def test_without_a_pin_any_map_is_accepted() -> None:
    d = run(index([policy(require={"provenance": {"required": True}})]), classified(OTHER))
    assert d.outcome == "allowed"


@pytest.mark.parametrize("bad", ["sha256:" + "AB" * 32, "sha512:" + "ab" * 32, "11" * 32])
def test_a_pin_must_be_a_sha256_digest(bad: str) -> None:
    with pytest.raises(ValidationError):
        Require.model_validate({"tierMapDigest": bad})

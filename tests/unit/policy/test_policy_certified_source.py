"""``certifiedSource``: a keyless statement's ``source`` is the one its certificate names.

A policy trusting a whole organisation's workflows would otherwise let a workflow of any of its
repositories sign provenance and review that claim another repository (collected from a clone
of it at a reviewed revision). The certificate's source is the CI platform's word; the
predicate's is the pipeline's. Here the engine is given attestations as verification makes them
(``certified_source`` set from the certificate, see tests/e2e/admission for the real Fulcio).
"""

from __future__ import annotations

from typing import Any

from affidavit.attestations.evidence import CertifiedSource, ImageEvidence, VerifiedAttestation
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.policy import Decision, PolicyIndex, evaluate
from affidavit.policy.explain import explain_decision, explain_policy
from policy_builders import (
    DIGEST,
    IMAGE,
    NOW,
    REV,
    approval,
    att,
    ctx,
    index,
    policy,
    provenance,
    review,
)

SHOP = "https://github.com/example/shop"
SCRATCH = "https://github.com/example/scratch"
OTHER_REV = "0badc0de" * 5


def judged(
    prov_cert: CertifiedSource | None,
    review_cert: CertifiedSource | None = None,
    *,
    ix: PolicyIndex | None = None,
    prov: dict[str, Any] | None = None,
    extra: tuple[VerifiedAttestation, ...] = (),
) -> Decision:
    """A reviewed AI change (one independent approval of the critical tier), its provenance and
    review signed by certificates naming ``prov_cert`` and ``review_cert``."""
    statements = (
        att(AI_PROVENANCE_V1, prov or provenance(), n=1, certified=prov_cert),
        att(CODE_REVIEW_V1, review(approval("bob")), n=2, certified=review_cert),
        *extra,
    )
    ev = ImageEvidence(IMAGE, DIGEST, statements, ())
    return evaluate(ctx(), {IMAGE: ev}, ix or index([policy()]), now=NOW, decision_id="d-1")


def test_the_source_the_certificate_names_is_admitted_however_it_is_spelt() -> None:
    d = judged(CertifiedSource(SHOP, REV), CertifiedSource(SHOP, ""))
    assert d.outcome == "allowed"
    # the decision records what each certificate certified, for the auditor
    assert [(e.certified_repository, e.certified_revision) for e in d.evidence] == [
        (SHOP, REV),
        (SHOP, None),
    ]
    assert f"signed by ci (certified source {SHOP} at {REV}) for {IMAGE}" in explain_decision(d)
    assert judged(None).evidence[0].certified_repository is None
    spelt = CertifiedSource("https://GitHub.com/Example/Shop/", REV.upper())
    prov = provenance()
    prov["source"]["repository"] = "git@github.com:example/shop.git"
    assert judged(spelt, spelt, prov=prov).outcome == "allowed"


def test_provenance_claiming_another_repository_than_its_certificate_is_not_used() -> None:
    d = judged(CertifiedSource(SCRATCH, REV), CertifiedSource(SHOP, REV))
    assert d.outcome == "denied"
    (v,) = [v for v in d.violations if v.rule == "source.certified"]
    assert v.policy == "AccountabilityPolicy/baseline"
    assert v.found == (
        f"an ai-provenance/v1 attestation claiming {SHOP} at {REV[:12]}, signed by ci with a "
        f"certificate for {SCRATCH} at {REV[:12]}"
    )
    assert v.expected == (
        "the repository and revision the signing certificate certifies (the CI platform's "
        "claims, not the pipeline's)"
    )
    assert v.fix.startswith(f"sign the ai-provenance/v1 in the pipeline of {SHOP} for the ")
    assert "`spec.require.certifiedSource: false`" in v.fix
    # the statement is left out, as one for another image is: no provenance counts
    assert "provenance.present" in {x.rule for x in d.violations}


def test_a_review_signed_at_another_revision_is_not_used() -> None:
    d = judged(CertifiedSource(SHOP, REV), CertifiedSource(SHOP, OTHER_REV))
    assert d.outcome == "denied"
    (v,) = [v for v in d.violations if v.rule == "source.certified"]
    assert v.found == (
        f"a code-review/v1 attestation claiming {SHOP} at {REV[:12]}, signed by ci with a "
        f"certificate for {SHOP} at {OTHER_REV[:12]}"
    )
    assert v.fix.startswith(f"sign the code-review/v1 in the pipeline of {SHOP} ")


def test_a_certificate_naming_no_commit_is_held_to_its_repository_only() -> None:
    assert judged(CertifiedSource(SHOP, "")).outcome == "allowed"
    assert judged(CertifiedSource(SCRATCH, "")).outcome == "denied"


def test_a_predicate_without_a_source_does_not_agree_with_a_certified_one() -> None:
    prov = provenance()
    del prov["source"]
    d = judged(CertifiedSource(SHOP, REV), prov=prov)
    (v,) = [v for v in d.violations if v.rule == "source.certified"]
    assert v.found.startswith(
        "an ai-provenance/v1 attestation claiming no repository at no revision, signed by ci"
    )


def test_key_signatures_and_identities_naming_no_source_are_not_compared() -> None:
    assert judged(None, None).outcome == "allowed"
    # another predicate type carries no source of ours to compare
    custom = att("https://example.com/sbom/v1", {"source": {"repository": SHOP}}, n=3,
                 certified=CertifiedSource(SCRATCH, OTHER_REV))  # fmt: skip
    assert judged(None, None, extra=(custom,)).outcome == "allowed"


def test_on_by_default_and_off_only_where_every_policy_says_so() -> None:
    forged = CertifiedSource(SCRATCH, REV)
    off = policy("central-build", require={**policy()["spec"]["require"], "certifiedSource": False})
    assert judged(forged, ix=index([off])).outcome == "allowed"
    d = judged(forged, ix=index([off, policy("silent")]))
    assert d.outcome == "denied"
    (v,) = [v for v in d.violations if v.rule == "source.certified"]
    assert v.policy == "AccountabilityPolicy/silent"
    eff = index([policy()]).effective(
        cluster="prod-1", region="us-east-1", namespace="shop", namespace_labels={}, image=IMAGE
    )
    assert eff is not None and eff.certified_source is not None
    assert "source.certified" in explain_policy(eff)

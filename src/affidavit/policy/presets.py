"""Jurisdiction presets: rules as data, each citing the existing control it serves.

No law today mandates provenance for AI-generated code; what binds is ordinary change control
and code review. Each preset therefore says which existing control (SOC 2 CC8.1, PCI DSS 6.2.x,
NIST SP 800-53 CM-3/SA-10/SA-15/SA-9(5)/AU-11, EU AI Act articles, SLSA Source L4) a rule
extends, so that ``explain`` can show an auditor the reason behind every requirement.

Decision on ``unknown`` AI involvement: every preset sets ``treatUnknownAsAi``. A commit that
declares nothing cannot prove it is human-only, so under a compliance preset it needs the review
an AI-involved change needs (fail closed). Plain policies keep the default (false) so a team can
adopt Affidavit before every commit carries a declaration.

Every preset also requires signed provenance; an AI agent or bot never counts as an approver
(independent and human approvals exclude bots by definition).

Decision on ``requireDigest``: no preset sets it. What a change-control preset needs is that
what runs is what was judged, and the webhook guarantees that for tags too: the mutating webhook
pins each new Pod's tags to the digests it verified (``affidavit.admission.pin``), while workload
templates keep their tags so GitOps tools see no drift. A preset demanding digests would refuse
exactly the tag-based templates that design admits. A policy may still set ``requireDigest``.

Decision on images no policy covers: ``pci-dss`` (6.3.2, an inventory of the software that runs)
and ``us-fedramp-moderate`` (CM-7(5), allow-by-exception) demand ``unmatchedImages: Deny``; the
others leave the cluster's setting (``Warn`` by default) alone. A policy that does not match an
image cannot speak for it, so the demand acts cluster-wide (``affidavit.policy.unmatched``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from affidavit.policy.model import EvidenceRules, ExceptionRules, Require

UnmatchedImages = Literal["Allow", "Warn", "Deny"]


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    require: Require
    controls: Mapping[str, str]  # rule path (e.g. "tiers.*.independentApprovals") -> control
    extends: tuple[str, ...] = ()
    evidence: EvidenceRules | None = None
    exceptions: ExceptionRules | None = None
    description: str = ""
    # What an image no AccountabilityPolicy matches gets in a cluster under this preset (None:
    # the cluster's own setting). Cluster-wide, see ``affidavit.policy.unmatched``.
    unmatched_images: UnmatchedImages | None = None

    def control(self, path: str) -> str | None:
        return self.controls.get(path)


_BASE_CONTROLS = (
    "provenance.required",
    "consistentRevision",
    "certifiedSource",
    "platformReview",
    "reviewCoversCommits",
    "treatUnknownAsAi",
)


def _preset(
    name: str,
    title: str,
    *,
    require: dict[str, Any],
    controls: dict[str, str],
    base_control: str,
    extends: tuple[str, ...] = (),
    evidence: dict[str, Any] | None = None,
    exceptions: dict[str, Any] | None = None,
    description: str = "",
    unmatched_images: UnmatchedImages | None = None,
) -> Preset:
    base = {
        "provenance": {"required": True},
        "consistentRevision": True,
        "certifiedSource": True,
        "platformReview": True,
        "reviewCoversCommits": True,
        "treatUnknownAsAi": True,
    }
    all_controls = {path: base_control for path in _BASE_CONTROLS} | controls
    return Preset(
        name=name,
        title=title,
        require=Require.model_validate(base | require),
        controls=all_controls,
        extends=extends,
        evidence=EvidenceRules.model_validate(evidence) if evidence else None,
        exceptions=ExceptionRules.model_validate(exceptions) if exceptions else None,
        description=description,
        unmatched_images=unmatched_images,
    )


PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "soc2",
            "SOC 2 change management",
            base_control="SOC 2 CC8.1",
            require={
                "tiers": {"*": {"approvals": 1, "independentApprovals": 1, "appliesTo": "all"}}
            },
            controls={
                "tiers.*.approvals": "SOC 2 CC8.1",
                "tiers.*.independentApprovals": "SOC 2 CC8.1",
                "tiers.*.appliesTo": "SOC 2 CC8.1",
                "exceptions.maxDays": "SOC 2 CC8.1",
            },
            exceptions={"maxDays": 7},
            description="one independent approval on the final revision; bounded break-glass",
        ),
        _preset(
            "pci-dss",
            "PCI DSS 4.0.1 secure development",
            base_control="PCI DSS 6.2.3",
            extends=("soc2",),
            require={
                "tiers": {
                    "*": {
                        "independentApprovals": 1,
                        "reviewerGroups": ["secure-code-reviewers"],
                        "appliesTo": "all",
                    },
                    "critical": {"securityReview": True},
                },
                "independentReleaseApprover": True,
                "retentionDays": 365,
            },
            controls={
                "tiers.*.independentApprovals": "PCI DSS 6.2.3.1",
                "tiers.*.reviewerGroups": "PCI DSS 6.2.3.1",
                "tiers.*.appliesTo": "PCI DSS 6.2.3",
                "independentReleaseApprover": "PCI DSS 6.2.3.1",
                "tiers.critical.securityReview": "PCI DSS 6.2.4",
                "retentionDays": "PCI DSS 10.5.1",
                "unmatchedImages": "PCI DSS 6.3.2",
            },
            unmatched_images="Deny",
            description="reviewer is not the author and knows secure coding; the release "
            "approver (who merges) is neither the author nor a reviewer; security review "
            "of auth/crypto/payment (critical) paths; evidence kept 12 months; no software "
            "outside the inventory (an image no policy covers is refused)",
        ),
        _preset(
            "us-fedramp-moderate",
            "FedRAMP Moderate (NIST SP 800-53 r5)",
            base_control="NIST SP 800-53 SA-10",
            require={
                "tiers": {
                    "*": {
                        "approvals": 1,
                        "independentApprovals": 1,
                        "reviewerGroups": ["secure-code-reviewers"],
                        "appliesTo": "all",
                    },
                    "critical": {"securityReview": True, "appliesTo": "all"},
                },
                "independentReleaseApprover": True,
                "requireToolDetails": True,
                "retentionDays": 90,
            },
            controls={
                "tiers.*.approvals": "NIST SP 800-53 CM-3",
                "tiers.*.independentApprovals": "NIST SP 800-53 CM-3",
                "tiers.*.reviewerGroups": "NIST SP 800-53 CM-3",
                "tiers.*.appliesTo": "NIST SP 800-53 CM-3",
                "tiers.critical.securityReview": "NIST SP 800-53 CM-3(4)",
                "tiers.critical.appliesTo": "NIST SP 800-53 CM-3(4)",
                "independentReleaseApprover": "NIST SP 800-53 CM-3",
                "requireToolDetails": "NIST SP 800-53 SA-15",
                "retentionDays": "NIST SP 800-53 AU-11",
                "evidence.residency": "NIST SP 800-53 SA-9(5)",
                "evidence.retentionDays": "NIST SP 800-53 AU-11",
                "unmatchedImages": "NIST SP 800-53 CM-7(5)",
            },
            evidence={"residency": "us", "retentionDays": 90},
            unmatched_images="Deny",
            description="approved, security-reviewed changes released by an independent "
            "approver; AI tool, model and version "
            "recorded; evidence in the US, kept at least 90 days; only authorised software "
            "runs (an image no policy covers is refused)",
        ),
        _preset(
            "eu",
            "EU (GDPR, AI use recorded)",
            base_control="ISO/IEC 42001 A.6.2.8",
            extends=("soc2",),
            require={},
            controls={
                "evidence.residency": "GDPR Chapter V",
                "evidence.pseudonymousIdentities": "GDPR Chapter V",
                "evidence.retentionDays": "EU AI Act Art. 19",
            },
            evidence={"residency": "eu", "pseudonymousIdentities": True, "retentionDays": 183},
            description="AI use recorded; evidence in the EU with pseudonymous identities; "
            "logs kept at least 6 months",
        ),
        _preset(
            "eu-ai-act-high-risk",
            "EU AI Act, high-risk AI systems (opt-in)",
            base_control="EU AI Act Art. 12",
            extends=("eu",),
            require={
                "tiers": {
                    "*": {"approvals": 1, "reviewerGroups": ["oversight"], "appliesTo": "all"}
                },
                "retentionDays": 3650,
            },
            controls={
                "tiers.*.approvals": "EU AI Act Art. 14",
                "tiers.*.appliesTo": "EU AI Act Art. 14",
                "tiers.*.reviewerGroups": "EU AI Act Art. 14",
                "retentionDays": "EU AI Act Art. 18",
            },
            description="approver from the `oversight` group; documentation kept 10 years",
        ),
        _preset(
            "slsa-source-l4",
            "SLSA 1.2 Source Level 4",
            base_control="SLSA Source L4",
            require={
                "tiers": {"*": {"independentApprovals": 2, "humanApprovals": 2, "appliesTo": "all"}}
            },
            controls={
                "tiers.*.independentApprovals": "SLSA Source L4",
                "tiers.*.humanApprovals": "SLSA Source L4",
                "tiers.*.appliesTo": "SLSA Source L4",
            },
            description="two trusted persons agree to every change, AI-involved or not",
        ),
    )
}


def expand(name: str) -> list[tuple[Preset, tuple[str, ...]]]:
    """The preset and everything it extends, each with its chain (``("pci-dss",)`` for soc2)."""
    out: list[tuple[Preset, tuple[str, ...]]] = []
    seen: set[str] = set()

    def visit(n: str, chain: tuple[str, ...]) -> None:
        if n in seen:
            return
        seen.add(n)
        preset = PRESETS[n]
        out.append((preset, chain))
        for parent in preset.extends:
            visit(parent, (*chain, n))

    visit(name, ())
    return out

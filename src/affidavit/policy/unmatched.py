"""Images no AccountabilityPolicy matches: allowed, warned about or denied, cluster-wide.

An image outside every policy used to be admitted in silence, so a registry spelled another way
(``localhost:5000`` for ``127.0.0.1:5000``) walked past the policies without a trace. The
cluster's ``unmatchedImages`` setting (chart value, ``Warn`` by default) says what such an image
gets; the decision records it either way.

A policy that does not match an image cannot speak for it, so a preset's demand (``pci-dss`` and
``us-fedramp-moderate`` demand ``Deny``) has to act on the cluster instead. The rule: the setting
for an unmatched image is the strictest of

1. the cluster's own setting;
2. the demand of every preset (and what it extends) named by a RegionPolicy whose regions match
   the cluster's region;
3. the demand of every preset named by an AccountabilityPolicy whose match covers the request in
   everything but the image (cluster, region, namespace): the policy governs this namespace, just
   not this image.

Unmatched images cannot be excepted: an AccountabilityException is bounded by the policy it
relaxes, and there is none. The fix is a policy that covers the image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from affidavit.attestations.reference import ImageReference
from affidavit.policy.combine import Origin
from affidavit.policy.decision import Mode, Violation
from affidavit.policy.index import PolicyIndex
from affidavit.policy.matching import glob_any, selector_matches
from affidavit.policy.model import PresetName
from affidavit.policy.presets import UnmatchedImages, expand

RULE = "image.unmatched"
STRICTNESS: Mapping[UnmatchedImages, int] = {"Allow": 0, "Warn": 1, "Deny": 2}
MODE: Mapping[UnmatchedImages, Mode | None] = {"Allow": None, "Warn": "Warn", "Deny": "Enforce"}


@dataclass(frozen=True)
class UnmatchedRule:
    """What an unmatched image gets in one request, and who asked for it."""

    setting: UnmatchedImages
    origin: Origin

    @property
    def mode(self) -> Mode | None:
        """The mode a violation of this rule counts with (None: Allow, no violation)."""
        return MODE[self.setting]


def _demands(names: tuple[PresetName, ...] | list[PresetName], via: str) -> list[UnmatchedRule]:
    out = []
    for name in names:
        for preset, chain in expand(name):
            if preset.unmatched_images is None:
                continue
            path = "".join(f" via preset/{c}" for c in reversed(chain))
            out.append(
                UnmatchedRule(
                    preset.unmatched_images,
                    Origin(
                        f"preset/{preset.name}{path} via {via}", preset.control("unmatchedImages")
                    ),
                )
            )
    return out


def unmatched_rule(
    index: PolicyIndex,
    *,
    cluster: str,
    region: str,
    namespace_labels: Mapping[str, str],
    cluster_setting: UnmatchedImages,
) -> UnmatchedRule:
    """The strictest demand on an unmatched image in this request (first one on a tie)."""
    found = [
        UnmatchedRule(cluster_setting, Origin(f"cluster setting unmatchedImages={cluster_setting}"))
    ]
    for r in index.region_policies:
        if glob_any(r.spec.regions, region):
            found += _demands(r.spec.jurisdictions, f"{r.kind}/{r.name}")
    for p in index.policies:
        m = p.spec.match
        if (
            (not m.regions or glob_any(m.regions, region))
            and (not m.clusters or glob_any(m.clusters, cluster))
            and selector_matches(m.namespace_selector, namespace_labels)
        ):
            found += _demands(p.spec.jurisdictions, f"{p.kind}/{p.name}")
    return max(found, key=lambda rule: STRICTNESS[rule.setting])


def unmatched_violation(image: str, rule: UnmatchedRule) -> Violation:
    """The violation an unmatched image records under ``rule`` (Warn or Deny)."""
    name = ImageReference.parse(image).name
    return Violation(
        rule=RULE,
        policy=rule.origin.source,
        control=rule.origin.control,
        found="no AccountabilityPolicy matches this image",
        expected=f"every image under an AccountabilityPolicy (unmatchedImages: {rule.setting})",
        fix=f"add {name} (or a glob that covers it) to match.images of an AccountabilityPolicy, "
        "or run the image under the name a policy covers; "
        f"`affidavit explain {image} --policy FILE` shows what matches",
        image=image,
    )

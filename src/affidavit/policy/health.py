"""What a valid policy object cannot do in this cluster, said in its status instead of Ready True.

Parsing catches objects that are malformed. Some well-formed objects still say nothing, or say
something that cannot hold, and their authors only find out from a surprised denial later:

- an AccountabilityException that no policy in this cluster could use: longer than a policy or
  preset governing its images allows (``exceptions.maxDays``), broader than one repository where
  a governing policy says ``exceptions.repositoryOnly``, or naming images that no
  AccountabilityPolicy here governs (for an exception that names only workloads, just the
  length is checked). It is invalid as a whole, like a malformed one: the operator
  leaves it out of the index, so its status and the webhook agree that it admits nothing;
- a policy or RegionPolicy whose preset (or own tier rule) needs reviewers from a group that no
  AccountabilityPolicy or RegionPolicy defines: every AI-involved change it covers is denied
  (fail closed; the policy stays in force) until someone defines the group;
- a policy or RegionPolicy whose evidence residency (its own or a preset's, such as eu) no
  RegionPolicy of this cluster's region declares any registry for (``evidence.
  registryLocations``): every image it covers is denied until someone says where the region's
  registries are;
- a policy or RegionPolicy whose review needs approvers from a group that lists its members only
  by login or email while the evidence must name people by pseudonyms (``evidence.
  pseudonymousIdentities``, its own, a preset's such as eu, or a RegionPolicy's of this region):
  no approval can match them, so every change that rule covers is denied until the group lists
  its members' pseudonyms;
- a RegionPolicy that does not apply to this cluster's region (the same manifests go to every
  cluster, so that is a fact to show, not an error) or whose region is unknown.

Region globs that can match no region name at all are refused by the model (``REGION_GLOB``).

Which policies could govern an exception's images is decided on the globs' literal prefixes
(``registry.example/shop/*`` and ``registry.example/shop/payments*`` overlap;
``registry.example/shop/*`` and ``other.example/*`` do not); namespace selectors are not
considered (they could only make fewer policies apply), so a policy counts whenever it could.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from affidavit.attestations.pseudonyms import is_pseudonym
from affidavit.policy.index import PolicyIndex
from affidavit.policy.lifetime import CLUSTER_SOURCE, duration, parse_time, rfc3339, too_long
from affidavit.policy.matching import image_matches, one_repository
from affidavit.policy.model import (
    KIND_EXCEPTION,
    AccountabilityExceptionSpec,
    AccountabilityPolicySpec,
    EvidenceRules,
    PresetName,
    RegionPolicySpec,
    Require,
)
from affidavit.policy.presets import expand
from affidavit.policy.residency import within
from affidavit.policy.stored import ExceptionRef, Stored
from affidavit.policy.tiers import SECURITY_GROUP


@dataclass(frozen=True)
class Condition:
    """A status condition for one object: ``type`` ``status`` because ``reason``: ``message``."""

    type: str
    status: str  # "True" | "False"
    reason: str
    message: str


def _literal(glob: str) -> str:
    return re.split(r"[*?\[]", glob, maxsplit=1)[0]


def _overlap(a: str, b: str) -> bool:
    la, lb = _literal(a), _literal(b)
    return la.startswith(lb) or lb.startswith(la)


def applies_here(
    spec: AccountabilityPolicySpec | RegionPolicySpec, cluster: str, region: str
) -> bool:
    """Whether ``spec`` can apply in this cluster at all: a RegionPolicy by its region globs, a
    policy by its match.regions and match.clusters (each unrestricted when empty)."""
    if isinstance(spec, RegionPolicySpec):
        return any(fnmatchcase(region, g) for g in spec.regions)
    m = spec.match
    return (not m.regions or any(fnmatchcase(region, g) for g in m.regions)) and (
        not m.clusters or any(fnmatchcase(cluster, g) for g in m.clusters)
    )


def _could_govern(p: Stored[AccountabilityPolicySpec], spec: AccountabilityExceptionSpec) -> bool:
    globs = p.spec.match.images
    if not spec.images or not globs:
        return True
    return any(_overlap(e, g) for e in spec.images for g in globs)


def _max_days(
    p: Stored[AccountabilityPolicySpec], index: PolicyIndex, region: str
) -> tuple[int, str]:
    """The tightest ``exceptions.maxDays`` over the policy, its presets, and the region's."""
    best = (index.exception_max_days, CLUSTER_SOURCE)
    source = f"{p.kind}/{p.name}"
    candidates: list[tuple[int, str]] = []
    if p.spec.exceptions is not None and p.spec.exceptions.max_days is not None:
        candidates.append((p.spec.exceptions.max_days, source))
    candidates += _preset_days(p.spec.jurisdictions, source)
    for r in index.region_policies:
        if any(fnmatchcase(region, g) for g in r.spec.regions):
            candidates += _preset_days(r.spec.jurisdictions, f"{r.kind}/{r.name}")
    for days, where in candidates:
        if days < best[0]:
            best = (days, where)
    return best


def _preset_days(names: Sequence[PresetName], via: str) -> list[tuple[int, str]]:
    out = []
    for name in names:
        for preset, _chain in expand(name):
            if preset.exceptions is not None and preset.exceptions.max_days is not None:
                out.append((preset.exceptions.max_days, f"preset/{preset.name} via {via}"))
    return out


def exception_problems(index: PolicyIndex, *, cluster: str, region: str) -> dict[str, str]:
    """``AccountabilityException/ns/name`` -> why it cannot apply in this cluster."""
    policies = [p for p in index.policies if applies_here(p.spec, cluster, region)]
    out: dict[str, str] = {}
    for e in index.exceptions:
        key = f"{KIND_EXCEPTION}/{e.namespace}/{e.name}"
        governing = [p for p in policies if _could_govern(p, e.spec)]
        if not governing and e.spec.images:  # typically a typo in the image globs
            named = ", ".join(e.spec.images)
            out[key] = (
                f"spec.images: no AccountabilityPolicy in cluster {cluster or '-'} (region "
                f"{region or '-'}) governs {named}, so there is nothing to except; name the "
                "images as the policy's match.images does"
            )
            continue
        created = parse_time(e.created)
        for p in governing:
            days, source = _max_days(p, index, region)
            problem = too_long(created, e.spec.expires_at, days, source) or _too_broad(e.spec, p)
            if problem is not None:
                out[key] = problem
                break
    return out


def _too_broad(
    spec: AccountabilityExceptionSpec, p: Stored[AccountabilityPolicySpec]
) -> str | None:
    """Why the exception names more than ``p``'s ``exceptions.repositoryOnly`` allows, if so."""
    if p.spec.exceptions is None or not p.spec.exceptions.repository_only:
        return None
    broad = [g for g in spec.images if not one_repository(g)]
    if not broad:
        return None
    return (
        f"spec.images: {', '.join(broad)} cover(s) more than one repository, and "
        f"{p.kind}/{p.name} allows exceptions only for one repository each "
        "(exceptions.repositoryOnly); name the repository, with a wildcard at most in the tag "
        "or digest (REGISTRY/REPOSITORY or REGISTRY/REPOSITORY:*)"
    )


def without_exceptions(index: PolicyIndex, problems: dict[str, str]) -> PolicyIndex:
    """``index`` with the named exceptions left out and their problems among its errors."""
    if not problems:
        return index
    keep = [
        e for e in index.exceptions if f"{KIND_EXCEPTION}/{e.namespace}/{e.name}" not in problems
    ]
    return PolicyIndex(
        index.policies,
        index.region_policies,
        keep,
        {**index.errors, **problems},
        exception_max_days=index.exception_max_days,
    )


def _needed_groups(require: Require) -> Iterable[tuple[str, tuple[str, ...]]]:
    for tier, t in sorted(require.tiers.items()):
        if t.reviewer_groups:
            yield f"tiers.{tier}.reviewerGroups", tuple(t.reviewer_groups)
        if t.security_review:
            yield f"tiers.{tier}.securityReview", (SECURITY_GROUP,)


def _group_needs(
    require: Require, jurisdictions: Sequence[PresetName], source: str
) -> list[tuple[str, tuple[str, ...], str]]:
    """(rule path, the groups one of which must approve, who asks) of an object and its
    presets."""
    needs = [(path, groups, source) for path, groups in _needed_groups(require)]
    for name in jurisdictions:
        for preset, _chain in expand(name):
            needs += [
                (path, groups, f"preset/{preset.name}")
                for path, groups in _needed_groups(preset.require)
            ]
    return needs


def missing_groups(
    index: PolicyIndex, require: Require, jurisdictions: Sequence[PresetName], source: str
) -> str | None:
    """Why the reviewer-group rules of an object cannot be met, or None when they can."""
    defined = {g for p in index.policies for g in p.spec.groups} | {
        g for r in index.region_policies for g in r.spec.groups
    }
    needs = _group_needs(require, jurisdictions, source)
    lacking = (
        f"{who} {path} needs an approver from {' or '.join(f'`{g}`' for g in groups)}"
        for path, groups, who in needs
        if not any(g in defined for g in groups)
    )
    return _unmet(
        lacking,
        ", and no AccountabilityPolicy or RegionPolicy defines it: every change that rule "
        "covers is denied; define the group in spec.groups (members' logins or emails)",
    )


def _pseudonyms_asked(
    evidence: EvidenceRules | None, jurisdictions: Sequence[PresetName], source: str
) -> list[str]:
    """Who (this object, or one of its presets) has the evidence name people by pseudonyms."""
    out = [source] if evidence is not None and evidence.pseudonymous_identities else []
    for name in jurisdictions:
        for preset, _chain in expand(name):
            if preset.evidence is not None and preset.evidence.pseudonymous_identities:
                out.append(f"preset/{preset.name}")
    return out


def plain_groups(
    index: PolicyIndex,
    require: Require,
    jurisdictions: Sequence[PresetName],
    evidence: EvidenceRules | None,
    source: str,
    region: str,
) -> str | None:
    """Why the reviewer-group rules of an object cannot be met while the evidence names people
    by pseudonyms (the object's own rule, or a RegionPolicy's that applies in ``region``): a
    group that lists members, none of them by pseudonym, matches no approver. None otherwise."""
    asked = _pseudonyms_asked(evidence, jurisdictions, source)
    for r in index.region_policies:
        if applies_here(r.spec, "", region):
            asked += _pseudonyms_asked(r.spec.evidence, r.spec.jurisdictions, f"{r.kind}/{r.name}")
    if not asked:
        return None
    members: dict[str, set[str]] = {}
    definitions = [p.spec.groups for p in index.policies]
    definitions += [r.spec.groups for r in index.region_policies]
    for groups in definitions:
        for group, listed in groups.items():
            members.setdefault(group, set()).update(listed)
    needs = _group_needs(require, jurisdictions, source)
    lacking = (
        f"{who} {path} needs an approver from {' or '.join(f'`{g}`' for g in groups)}, whose "
        "members are listed by login or email"
        for path, groups, who in needs
        if any(members.get(g) for g in groups)
        and not any(is_pseudonym(m) for g in groups for m in members.get(g, ()))
    )
    return _unmet(
        lacking,
        f", while {' and '.join(dict.fromkeys(asked))} has the evidence name people only by "
        "pseudonyms: no approval can match them, so every change that rule covers is denied; "
        "list the members' pseudonyms in spec.groups (`affidavit pseudonym of --key <pseudonym "
        "key> LOGIN...`)",
    )


def _unmet(lacking: Iterable[str], consequence: str) -> str | None:
    """Each distinct unmet need once, then what follows from them; None when none is unmet."""
    unique = list(dict.fromkeys(lacking))
    return "; ".join(unique) + consequence if unique else None


def _residencies(
    evidence: EvidenceRules | None, jurisdictions: Sequence[PresetName], source: str
) -> list[tuple[str, str]]:
    out = []
    if evidence is not None and evidence.residency is not None:
        out.append((evidence.residency.lower(), source))
    for name in jurisdictions:
        for preset, _chain in expand(name):
            if preset.evidence is not None and preset.evidence.residency is not None:
                out.append((preset.evidence.residency.lower(), f"preset/{preset.name}"))
    return out


def missing_locations(
    index: PolicyIndex,
    evidence: EvidenceRules | None,
    jurisdictions: Sequence[PresetName],
    source: str,
    region: str,
) -> str | None:
    """Why the evidence residency an object requires cannot be met in this cluster's region
    (no RegionPolicy that applies here places any registry there), or None when it can."""
    declared = [
        d.location.lower()
        for r in index.region_policies
        if r.spec.evidence is not None and applies_here(r.spec, "", region)
        for d in r.spec.evidence.registry_locations
    ]
    lacking = (
        f"{who} evidence.residency needs images from registries located in {where}"
        for where, who in _residencies(evidence, jurisdictions, source)
        if not any(within(location, where) for location in declared)
    )
    return _unmet(
        lacking,
        f", and no RegionPolicy that applies in region {region or '(unknown)'} declares one: "
        "every image it covers is denied; declare where this region's registries store data "
        "in a RegionPolicy's evidence.registryLocations",
    )


def region_condition(regions: Sequence[str], region: str) -> Condition:
    """Whether a RegionPolicy applies to this cluster's region."""
    if not region:
        return Condition(
            "AppliesToThisCluster",
            "False",
            "RegionUnknown",
            "this cluster's region is not set (operator --region, chart value `region`): "
            "no RegionPolicy applies",
        )
    if any(fnmatchcase(region, g) for g in regions):
        return Condition("AppliesToThisCluster", "True", "RegionMatches", f"region {region}")
    return Condition(
        "AppliesToThisCluster",
        "False",
        "OtherRegion",
        f"regions {', '.join(regions)} do not include this cluster's region {region}: "
        "it has no effect here",
    )


def why_not_applied(
    e: Stored[AccountabilityExceptionSpec],
    ref: ExceptionRef | None,
    *,
    kind: str,
    name: str,
    image: str,
    now: datetime,
    max_days: tuple[int, str] | None,
) -> str | None:
    """For ``explain``: why exception ``e`` does not cover this workload's image, or None."""
    s = e.spec
    if s.expires_at <= now:
        return f"expired at {rfc3339(s.expires_at)}"
    if s.images and not image_matches(s.images, image):
        return f"names images {', '.join(s.images)}, not {image}"
    if s.workloads and not any(w.kind == kind and fnmatchcase(name, w.name) for w in s.workloads):
        named = ", ".join(f"{w.kind}/{w.name}" for w in s.workloads)
        return f"names workloads {named}, not {kind}/{name}"
    if max_days is not None:
        start = (ref.created_at if ref is not None else None) or now
        days, source = max_days
        if s.expires_at - start > _days(days):
            return (
                f"lasts {duration(s.expires_at - start)}, longer than the {days} days "
                f"{source} allows"
            )
    return None


def _days(n: int) -> timedelta:
    return timedelta(days=n)

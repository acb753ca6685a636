"""Strictest-wins combination of every policy, region policy and preset that applies.

No policy can weaken another: numbers take the maximum (the exception length, a ceiling, takes
the minimum), booleans OR, label requirements and tier map pins add up, allow-lists and
reviewer-group lists stay separate constraints that must all hold (an intersection), modes take the strictest
(Enforce > Warn > Audit), and ``failurePolicy: Fail`` beats ``Ignore``. An AccountabilityPolicy's
omitted ``provenance``, ``consistentRevision``, ``certifiedSource``, ``platformReview``,
``reviewCoversCommits`` and ``failurePolicy`` count
with their secure defaults (``with_policy_defaults``), so a policy that is silent is never weakened by one that
relaxes. Every value remembers the policy or preset (and control) it came from, for messages and
``explain``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from affidavit.attestations.evidence import KeylessSigner, KeySigner, TrustedSigner
from affidavit.policy.decision import PolicyRef
from affidavit.policy.matching import registry_glob
from affidavit.policy.model import (
    AppliesTo,
    EvidenceRules,
    ExceptionRules,
    FailurePolicy,
    Mode,
    Require,
    TierRequirement,
    with_policy_defaults,
)
from affidavit.policy.signer_model import Signers

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

MODE_STRICTNESS: Mapping[str, int] = {"Audit": 0, "Warn": 1, "Enforce": 2}


@dataclass(frozen=True)
class Origin:
    """Where a requirement comes from, e.g. ``preset/pci-dss via RegionPolicy/eu`` [PCI DSS 6.2.4]."""

    source: str
    control: str | None = None
    default: bool = False  # the policy omitted the field; this is its secure default

    def __str__(self) -> str:
        text = f"{self.source} [{self.control}]" if self.control else self.source
        return f"{text} (default)" if self.default else text


@dataclass(frozen=True)
class Req(Generic[T_co]):
    value: T_co
    origin: Origin


@dataclass(frozen=True)
class TierRules:
    """Review rules for changes touching ``tier`` (``*`` = any tier) within ``scope``."""

    tier: str
    scope: AppliesTo  # "ai": AI-involved changes only; "all": every change
    approvals: Req[int] | None = None
    independent_approvals: Req[int] | None = None
    human_approvals: Req[int] | None = None
    reviewer_groups: tuple[Req[tuple[str, ...]], ...] = ()
    security_review: Req[bool] | None = None


@dataclass(frozen=True)
class Layer:
    """One contribution to an effective policy: a policy's own spec or a preset it names."""

    source: str
    require: Require
    controls: Mapping[str, str] = field(default_factory=dict)
    mode: Mode | None = None
    signers: Signers | None = None
    groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    evidence: EvidenceRules | None = None
    exceptions: ExceptionRules | None = None
    policy: PolicyRef | None = None

    @property
    def is_policy(self) -> bool:
        """An AccountabilityPolicy's own spec (the only layer with a mode): it has defaults."""
        return self.mode is not None


@dataclass(frozen=True)
class EffectivePolicy:
    """The combined requirements for one image in one namespace of one cluster."""

    mode_req: Req[Mode]
    failure_policy: Req[FailurePolicy]
    signers: tuple[TrustedSigner, ...]
    signer_sources: tuple[str, ...]
    policies: tuple[PolicyRef, ...]
    provenance: Req[bool] | None = None
    provenance_max_age_days: Req[int] | None = None
    tiers: tuple[TierRules, ...] = ()
    allowed_tools: tuple[Req[tuple[str, ...]], ...] = ()
    #: Each policy's repository globs: the provenance's and review's source must match one of
    #: every policy's (``rules.source_repository``).
    source_repositories: tuple[Req[tuple[str, ...]], ...] = ()
    require_tool_details: Req[bool] | None = None
    treat_unknown_as_ai: Req[bool] | None = None
    independent_release_approver: Req[bool] | None = None
    owner_labels: tuple[Req[str], ...] = ()
    escalation_labels: tuple[Req[str], ...] = ()
    consistent_revision: Req[bool] | None = None
    certified_source: Req[bool] | None = None
    platform_review: Req[bool] | None = None
    review_covers_commits: Req[bool] | None = None
    tier_map_digests: tuple[Req[str], ...] = ()  # every pin must hold
    require_digest_req: Req[bool] | None = None
    retention_days: Req[int] | None = None
    residency: tuple[Req[str], ...] = ()
    #: (registry host glob in canonical form, location) as the region policies declare them.
    registry_locations: tuple[Req[tuple[str, str]], ...] = ()
    pseudonymous_identities: Req[bool] | None = None
    #: Each RegionPolicy's list of the pseudonym keys people may be named under: every one holds.
    pseudonym_keys: tuple[Req[tuple[str, ...]], ...] = ()
    exception_max_days: Req[int] | None = None
    #: An exception admits nothing its own requester deploys (separation of duties).
    exception_separation: Req[bool] | None = None
    #: An exception's image globs may each cover one repository at most.
    exception_repository_only: Req[bool] | None = None
    groups: tuple[tuple[str, frozenset[str]], ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def mode(self) -> Mode:
        return self.mode_req.value

    @property
    def fail_open(self) -> bool:
        return self.failure_policy.value == "Ignore"

    @property
    def require_digest(self) -> bool:
        return self.require_digest_req is not None and self.require_digest_req.value

    @property
    def pseudonyms(self) -> bool:
        """Whether the evidence must name people by pseudonyms: every ``affidavit collect`` a
        fix names then carries ``--pseudonym-key``."""
        return self.pseudonymous_identities is not None and self.pseudonymous_identities.value

    def members(self, group: str) -> frozenset[str] | None:
        """Members of ``group`` (lower-cased logins/emails), or None when no policy defines it."""
        for name, members in self.groups:
            if name == group:
                return members
        return None


def _max(cur: Req[int] | None, value: int | None, origin: Origin) -> Req[int] | None:
    if value is None or value <= 0:
        return cur
    if cur is None or value > cur.value:
        return Req(value, origin)
    return cur


def _min(cur: Req[int] | None, value: int | None, origin: Origin) -> Req[int] | None:
    if value is None:
        return cur
    if cur is None or value < cur.value:
        return Req(value, origin)
    return cur


def _or(cur: Req[bool] | None, value: bool, origin: Origin) -> Req[bool] | None:
    if value and cur is None:
        return Req(True, origin)
    return cur


def _add(cur: tuple[Req[T], ...], value: T | None, origin: Origin) -> tuple[Req[T], ...]:
    if value is None or any(r.value == value for r in cur):
        return cur
    return (*cur, Req(value, origin))


def _signer_key(s: TrustedSigner) -> tuple[str, ...]:
    """Who the signer is (not which runs it is trusted for: ``_both_trust`` merges those)."""
    if isinstance(s, KeySigner):
        return ("key", "".join(s.public_key_pem.split()))
    return ("keyless", s.issuer, s.identity, s.identity_regexp, s.trusted_root_ref)


def _narrowed(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...] | None:
    """What both lists allow (empty: anything), None when they share nothing."""
    if not a or not b:
        return a or b
    both = tuple(sorted(set(a) & set(b)))
    return both or None


def _both_trust(s: TrustedSigner, other: TrustedSigner) -> TrustedSigner | None:
    """The signer as two policies that name it both trust it: the runs both name (a policy
    adding refs or triggers to a signer another names without them narrows it, never drops
    it); None when they share no ref or no trigger."""
    if not isinstance(s, KeylessSigner) or not isinstance(other, KeylessSigner):
        return s
    refs, triggers = _narrowed(s.refs, other.refs), _narrowed(s.triggers, other.triggers)
    if refs is None or triggers is None:
        return None
    return replace(s, refs=refs, triggers=triggers)


def _signers_of(spec: Signers) -> list[TrustedSigner]:
    out: list[TrustedSigner] = [KeySigner(k.name, k.public_key) for k in spec.keys]
    out += [
        KeylessSigner(
            k.name,
            k.issuer,
            identity=k.subject or k.identity or "",
            identity_regexp=k.subject_reg_exp or "",
            trusted_root_ref=(
                f"{k.trusted_root.config_map_ref.name}/{k.trusted_root.config_map_ref.key}"
                if k.trusted_root
                else ""
            ),
            refs=tuple(sorted(set(k.source_repository_refs or ()))),
            triggers=tuple(sorted(set(k.build_triggers or ()))),
        )
        for k in spec.keyless
    ]
    return out


def _omitted(r: Require) -> frozenset[str]:
    """The paths ``with_policy_defaults`` fills in, so that ``explain`` can say "(default)"."""
    return frozenset(
        path
        for path, value in (
            ("provenance.required", r.provenance),
            ("consistentRevision", r.consistent_revision),
            ("certifiedSource", r.certified_source),
            ("platformReview", r.platform_review),
            ("reviewCoversCommits", r.review_covers_commits),
            ("failurePolicy", r.failure_policy),
        )
        if value is None
    )


class _Builder:
    def __init__(self) -> None:
        self.tiers: dict[tuple[str, AppliesTo], TierRules] = {}

    def tier(self, layer: Layer, key: str, req: TierRequirement) -> None:
        cur = self.tiers.get((key, req.applies_to)) or TierRules(key, req.applies_to)

        def o(name: str) -> Origin:
            return Origin(layer.source, layer.controls.get(f"tiers.{key}.{name}"))

        groups = cur.reviewer_groups
        if req.reviewer_groups:
            groups = _add(groups, tuple(req.reviewer_groups), o("reviewerGroups"))
        self.tiers[(key, req.applies_to)] = TierRules(
            tier=key,
            scope=req.applies_to,
            approvals=_max(cur.approvals, req.approvals, o("approvals")),
            independent_approvals=_max(
                cur.independent_approvals, req.independent_approvals, o("independentApprovals")
            ),
            human_approvals=_max(cur.human_approvals, req.human_approvals, o("humanApprovals")),
            reviewer_groups=groups,
            security_review=_or(cur.security_review, req.security_review, o("securityReview")),
        )


def combine(layers: Sequence[Layer]) -> EffectivePolicy:
    """Combine ``layers`` (in a stable order: the first of equally strict values is named)."""
    b = _Builder()
    mode: Req[Mode] | None = None
    fail: Req[FailurePolicy] | None = None
    signers: list[TrustedSigner] | None = None
    signer_sources: list[str] = []
    groups: dict[str, frozenset[str]] = {}
    prov = prov_age = tool_details = unknown_ai = consistent = digest = None
    retention = pseudo = exc_days = exc_separation = release_approver = platform = None
    covers = None
    certified = None
    exc_repository = None
    tools: tuple[Req[tuple[str, ...]], ...] = ()
    repositories: tuple[Req[tuple[str, ...]], ...] = ()
    owners: tuple[Req[str], ...] = ()
    escalations: tuple[Req[str], ...] = ()
    tier_maps: tuple[Req[str], ...] = ()
    residency: tuple[Req[str], ...] = ()
    locations: tuple[Req[tuple[str, str]], ...] = ()
    pseudonym_keys: tuple[Req[tuple[str, ...]], ...] = ()
    policies: list[PolicyRef] = []
    sources: list[str] = []

    for layer in layers:
        r = layer.require
        filled = frozenset[str]()
        if layer.is_policy:
            filled = _omitted(r)
            r = with_policy_defaults(r)
        sources.append(layer.source)

        def o(path: str, layer: Layer = layer, filled: frozenset[str] = filled) -> Origin:
            return Origin(layer.source, layer.controls.get(path), default=path in filled)

        if layer.policy is not None and layer.policy not in policies:
            policies.append(layer.policy)
        if layer.mode is not None and (
            mode is None or MODE_STRICTNESS[layer.mode] > MODE_STRICTNESS[mode.value]
        ):
            mode = Req(layer.mode, o("mode"))
        if r.failure_policy is not None and (
            fail is None or (fail.value == "Ignore" and r.failure_policy == "Fail")
        ):
            fail = Req(r.failure_policy, o("failurePolicy"))
        if layer.signers is not None:
            mine = _signers_of(layer.signers)
            signer_sources.append(layer.source)
            if signers is None:
                signers = mine
            else:
                named = {_signer_key(s): s for s in mine}
                signers = [
                    both
                    for s in signers
                    if (other := named.get(_signer_key(s))) is not None
                    and (both := _both_trust(s, other)) is not None
                ]
        for gname, members in layer.groups.items():
            mset = frozenset(m.lower() for m in members)
            groups[gname] = groups[gname] & mset if gname in groups else mset
        if r.provenance is not None:
            prov = _or(prov, r.provenance.required, o("provenance.required"))
            prov_age = _min(prov_age, r.provenance.max_age_days, o("provenance.maxAgeDays"))
        for key, treq in r.tiers.items():
            b.tier(layer, key, treq)
        if r.allowed_tools is not None:
            tools = _add(tools, tuple(r.allowed_tools), o("allowedTools"))
        if r.source_repositories is not None:
            repositories = _add(repositories, tuple(r.source_repositories), o("sourceRepositories"))
        tool_details = _or(tool_details, r.require_tool_details, o("requireToolDetails"))
        unknown_ai = _or(unknown_ai, r.treat_unknown_as_ai, o("treatUnknownAsAi"))
        release_approver = _or(
            release_approver, r.independent_release_approver, o("independentReleaseApprover")
        )
        owners = _add(owners, r.owner_label, o("ownerLabel"))
        escalations = _add(escalations, r.escalation_label, o("escalationLabel"))
        consistent = _or(consistent, bool(r.consistent_revision), o("consistentRevision"))
        certified = _or(certified, bool(r.certified_source), o("certifiedSource"))
        platform = _or(platform, bool(r.platform_review), o("platformReview"))
        covers = _or(covers, bool(r.review_covers_commits), o("reviewCoversCommits"))
        tier_maps = _add(tier_maps, r.tier_map_digest, o("tierMapDigest"))
        digest = _or(digest, r.require_digest, o("requireDigest"))
        retention = _max(retention, r.retention_days, o("retentionDays"))
        if layer.evidence is not None:
            ev = layer.evidence
            retention = _max(retention, ev.retention_days, o("evidence.retentionDays"))
            where = ev.residency.lower() if ev.residency is not None else None
            residency = _add(residency, where, o("evidence.residency"))
            for declared in ev.registry_locations:
                located = (registry_glob(declared.registry), declared.location.lower())
                locations = _add(locations, located, o("evidence.registryLocations"))
            pseudo = _or(pseudo, ev.pseudonymous_identities, o("evidence.pseudonymousIdentities"))
            key_ids = tuple(sorted(set(ev.pseudonym_key_ids))) or None
            pseudonym_keys = _add(pseudonym_keys, key_ids, o("evidence.pseudonymKeyIds"))
        if layer.exceptions is not None:
            exc_days = _min(exc_days, layer.exceptions.max_days, o("exceptions.maxDays"))
            exc_separation = _or(
                exc_separation,
                layer.exceptions.separate_requester,
                o("exceptions.separateRequester"),
            )
            exc_repository = _or(
                exc_repository,
                layer.exceptions.repository_only,
                o("exceptions.repositoryOnly"),
            )

    default = Origin("default")
    return EffectivePolicy(
        mode_req=mode or Req("Enforce", default),
        failure_policy=fail or Req("Fail", default),
        signers=tuple(signers or ()),
        signer_sources=tuple(signer_sources),
        policies=tuple(policies),
        provenance=prov,
        provenance_max_age_days=prov_age,
        tiers=tuple(b.tiers[k] for k in sorted(b.tiers)),
        allowed_tools=tools,
        source_repositories=repositories,
        require_tool_details=tool_details,
        treat_unknown_as_ai=unknown_ai,
        independent_release_approver=release_approver,
        owner_labels=owners,
        escalation_labels=escalations,
        consistent_revision=consistent,
        certified_source=certified,
        platform_review=platform,
        review_covers_commits=covers,
        tier_map_digests=tier_maps,
        require_digest_req=digest,
        retention_days=retention,
        residency=residency,
        registry_locations=locations,
        pseudonymous_identities=pseudo,
        pseudonym_keys=pseudonym_keys,
        exception_max_days=exc_days,
        exception_separation=exc_separation,
        exception_repository_only=exc_repository,
        groups=tuple(sorted(groups.items())),
        sources=tuple(sources),
    )

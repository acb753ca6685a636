"""Evaluation: one admission request, its images' verified evidence, the index -> a Decision.

The webhook resolves images to digests and verifies attestations; this module only judges. It
takes the effective policy of each image, runs the rules, and picks the outcome: no violations
-> allowed; violations covered by an active, policy-bounded exception -> excepted; otherwise by
the strictest mode among the violating images (Enforce -> denied, Warn -> warned,
Audit -> audited). An image no policy matches is judged by the cluster's ``unmatchedImages``
(``affidavit.policy.unmatched``): Warn counts as a Warn violation, Deny as an Enforce one.

Images are judged under their canonical names (``nginx`` is ``docker.io/library/nginx:latest``):
the webhook canonicalises once where it reads the workload (``RequestContext.canonical``), this
module makes sure of it again (idempotent), and the index reads policy globs the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.reference import ImageReference, canonical_image
from affidavit.policy.combine import MODE_STRICTNESS, EffectivePolicy
from affidavit.policy.decision import (
    Caller,
    Decision,
    EvidenceUsed,
    ImageRef,
    Mode,
    Outcome,
    PolicyRef,
    Violation,
)
from affidavit.policy.index import PolicyIndex
from affidavit.policy.matching import one_repository
from affidavit.policy.presets import UnmatchedImages
from affidavit.policy.rules import (
    check_image,
    check_workload,
    scope_violation,
    separation_violation,
    unpinned_violation,
)
from affidavit.policy.snapshot import snapshot
from affidavit.policy.stored import ExceptionRef
from affidavit.policy.unmatched import UnmatchedRule, unmatched_rule, unmatched_violation

_OUTCOME: Mapping[str, Outcome] = {"Enforce": "denied", "Warn": "warned", "Audit": "audited"}


@dataclass(frozen=True)
class RequestContext:
    uid: str
    cluster: str
    region: str
    namespace: str
    namespace_labels: Mapping[str, str]
    kind: str
    name: str
    operation: str
    user: str
    labels: Mapping[str, str] = field(default_factory=dict)
    images: tuple[str, ...] = ()
    unmatched_images: UnmatchedImages = "Warn"  # the cluster's setting (chart value)
    caller: Caller = field(default_factory=Caller)  # recorded in the snapshot, never judged
    #: The workloads the API server shows this object belongs to ((kind, name): its owner and
    #: the owner's verified controller), where its owner check could not confirm a pinned
    #: digest: an exception naming one of them reaches it (``admission.owners.OwnerMatch``).
    lineage: tuple[tuple[str, str], ...] = ()
    #: The images (canonical) a Pod brings in as tags, which Affidavit's mutating webhook pins
    #: to the digest it judged before this judgement: one still a tag was not pinned.
    expect_pinned: frozenset[str] = frozenset()
    #: The groups the API server authenticated ``user`` in (asked with, never judged).
    groups: tuple[str, ...] = ()
    #: (requester, why) for the exceptions' requesters who count as ``user`` (``admission.
    #: acting``: either may act as the other, or it could not be known): under
    #: ``separateRequester`` an exception one of them requested is the deployer's own.
    acts_as: tuple[tuple[str, str], ...] = ()

    def effective(self, index: PolicyIndex, image: str) -> EffectivePolicy | None:
        """The policy ``index`` applies to ``image`` here (cluster, region, namespace)."""
        return index.effective(
            cluster=self.cluster,
            region=self.region,
            namespace=self.namespace,
            namespace_labels=self.namespace_labels,
            image=image,
        )

    def canonical(self) -> RequestContext:
        """This context with every image in canonical form, each once, in order.

        Raises ``InputError`` naming the first image that is not a valid reference.
        """
        images = tuple(dict.fromkeys(canonical_image(i) for i in self.images))
        return self if images == self.images else replace(self, images=images)


def exceptions_reaching(
    index: PolicyIndex, ctx: RequestContext, image: str, now: datetime, *, lineage: bool = True
) -> list[ExceptionRef]:
    """The active exceptions covering ``image`` for this object and, with ``lineage``, those
    naming a workload it belongs to (``RequestContext.lineage``), each once."""
    found = {e.key: e for e in index.exceptions_for(ctx.namespace, ctx.kind, ctx.name, image, now)}
    if lineage:
        for kind, name in ctx.lineage:
            for e in index.exceptions_for(ctx.namespace, kind, name, image, now):
                found.setdefault(e.key, e)
    return list(found.values())


def _bounded(exc: ExceptionRef, eff: EffectivePolicy, now: datetime) -> bool:
    if eff.exception_max_days is None:
        return True
    start = exc.created_at or now
    return exc.expires_at - start <= timedelta(days=eff.exception_max_days.value)


def _broad_globs(index: PolicyIndex, exc: ExceptionRef) -> tuple[str, ...]:
    """The image globs of ``exc`` that cover more than one repository."""
    return tuple(g for g in index.exception_globs(exc.namespace, exc.name) if not one_repository(g))


def evaluate(
    ctx: RequestContext,
    evidence: Mapping[str, ImageEvidence | None],
    index: PolicyIndex,
    *,
    now: datetime,
    decision_id: str,
    missing: Mapping[str, tuple[str, str, str]] | None = None,
) -> Decision:
    """Judge ``ctx`` against ``index``; ``evidence[image]`` is None when it could not be fetched,
    and ``missing[image]`` (rule, found, fix) when that was the request's doing, not an outage.

    Images (in ``ctx`` and as keys of ``evidence`` and ``missing``) are judged and recorded in
    canonical form.
    """
    ctx = ctx.canonical()
    evidence = {canonical_image(image): found for image, found in evidence.items()}
    if missing is not None:
        missing = {canonical_image(image): why for image, why in missing.items()}
    violations: list[Violation] = []
    used: list[EvidenceUsed] = []
    refs: list[ImageRef] = []
    policies: list[PolicyRef] = []
    modes: list[Mode] = []
    violating_modes: list[Mode] = []
    exceptions: dict[str, ExceptionRef] = {}
    uncovered = False
    unmatched: UnmatchedRule | None = None

    for image in ctx.images:
        ev = evidence.get(image)
        refs.append(ImageRef(image, ev.digest if ev is not None else _digest_of(image)))
        eff = ctx.effective(index, image)
        if eff is None:
            if unmatched is None:
                unmatched = unmatched_rule(
                    index,
                    cluster=ctx.cluster,
                    region=ctx.region,
                    namespace_labels=ctx.namespace_labels,
                    cluster_setting=ctx.unmatched_images,
                )
            if unmatched.mode is not None:
                modes.append(unmatched.mode)
                violating_modes.append(unmatched.mode)
                violations.append(unmatched_violation(image, unmatched))
                uncovered = True  # no policy, so no exception can be bounded by one
            continue
        modes.append(eff.mode)
        policies += [p for p in eff.policies if p not in policies]
        found, evidence_used = check_image(image, ev, eff, now, (missing or {}).get(image))
        used += evidence_used
        if not found and ev is not None and image in ctx.expect_pinned and eff.mode == "Enforce":
            found.append(unpinned_violation(image, ev.digest, eff))
        # The workload's labels are judged under every image's policy, each with its own mode
        # and exceptions: judged once, under the first image's, an Audit policy's image listed
        # first let an Enforce policy's missing label through (recorded once, below).
        found += check_workload(ctx.kind, ctx.name, ctx.namespace, ctx.labels, eff)
        if not found:
            continue
        violating_modes.append(eff.mode)
        # Under separation of duties an exception reaches only what its deployer is known for:
        # a child by its lineage was made by a controller, on nobody's word (fail closed).
        reaching = exceptions_reaching(
            index, ctx, image, now, lineage=eff.exception_separation is None
        )
        active = [e for e in reaching if _bounded(e, eff, now)]
        if eff.exception_repository_only is not None and active:
            broad = [(e, globs) for e in active if (globs := _broad_globs(index, e))]
            wide = {e for e, _ in broad}
            active = [e for e in active if e not in wide]
            if broad and not active:
                found.append(scope_violation(image, broad, eff.exception_repository_only))
        if eff.exception_separation is not None and active:
            why = dict(ctx.acts_as)
            own = [
                e
                for e in active
                if e.requested_by is None or e.requested_by == ctx.user or e.requested_by in why
            ]
            active = [e for e in active if e not in own]
            if own and not active:
                found.append(
                    separation_violation(image, own, ctx.user, eff.exception_separation, why)
                )
        violations += [v for v in found if v not in violations]
        if active:
            exceptions.update((e.key, e) for e in active if e.key not in exceptions)
        else:
            uncovered = True

    mode: Mode = max(modes, key=lambda m: MODE_STRICTNESS[m]) if modes else "Enforce"
    outcome: Outcome = "allowed"
    if violations:
        if not uncovered:
            outcome = "excepted"
        else:
            worst = max(violating_modes, key=lambda m: MODE_STRICTNESS[m])
            outcome = _OUTCOME[worst]
    used_exceptions = list(exceptions.values()) if outcome == "excepted" else []
    return Decision(
        id=decision_id,
        time=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        cluster=ctx.cluster,
        region=ctx.region,
        namespace=ctx.namespace,
        kind=ctx.kind,
        name=ctx.name,
        operation=ctx.operation,
        user=ctx.user,
        outcome=outcome,
        mode=mode,
        images=tuple(refs),
        violations=tuple(violations),
        evidence=tuple(used),
        policies=tuple(policies),
        exception=", ".join(e.key for e in used_exceptions) or None,
        snapshot=snapshot(
            index.digest,
            ctx.caller,
            ((r.ref, r.digest) for r in refs),
            evidence,
            used_exceptions,
        ),
    )


def _digest_of(ref: str) -> str | None:
    return ImageReference.parse(ref).digest

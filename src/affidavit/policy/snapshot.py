"""The decision-time snapshot: what the evidence and the exceptions said when a decision was taken.

An auditor reading the ledger a year later cannot re-ask the registry (the image may be gone, the
signer rotated) nor the cluster (the exception expired and was deleted). So the judge writes into
the decision itself, from the same verified evidence and the same index it judged with, each
image's AI involvement (counts of AI-assisted and generated commits by tool and model, the trust
tiers they touched, the review evidence) and the exceptions it used with their owner, incident,
approvers and expiry. Pure functions, like the rest of the policy package.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC

from pydantic import ValidationError

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    AiProvenance,
    CodeReview,
)
from affidavit.policy.decision import (
    AiInvolvement,
    Caller,
    ExceptionUsed,
    ReviewSeen,
    Snapshot,
    ToolUse,
)
from affidavit.policy.lifetime import rfc3339
from affidavit.policy.stored import ExceptionRef

_AI = ("assisted", "generated")


def ai_involvement(image: str, digest: str | None, ev: ImageEvidence | None) -> AiInvolvement:
    """``image``'s AI involvement from the newest verified provenance in ``ev`` (the one the rules
    judged); without one (or one that does not parse) the provenance is None: undetermined."""
    att = ev.newest(AI_PROVENANCE_V1) if ev is not None else None
    if att is None:
        return AiInvolvement(image, digest)
    try:
        prov = att.parsed(AiProvenance)
    except ValidationError:
        return AiInvolvement(image, digest)
    kinds = Counter(c.ai_involvement for c in prov.changes)
    tools: Counter[tuple[str, str | None]] = Counter()
    tiers: set[str] = set()
    for change in prov.changes:
        if change.ai_involvement not in _AI:
            continue
        tools.update({(t.name, t.model) for t in change.tools})
        tiers.update(f.tier for f in change.files)
    return AiInvolvement(
        image=image,
        digest=digest,
        provenance=att.envelope_digest,
        commits=len(prov.changes),
        assisted=kinds["assisted"],
        generated=kinds["generated"],
        undeclared=kinds["unknown"],
        tools=tuple(
            ToolUse(name, model, n)
            for (name, model), n in sorted(tools.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        ),
        tiers=tuple(sorted(tiers)),
        ai_line_share=prov.summary.ai_line_share,
        review=_review(ev),
    )


def _review(ev: ImageEvidence | None) -> ReviewSeen | None:
    att = ev.newest(CODE_REVIEW_V1) if ev is not None else None
    if att is None:
        return None
    try:
        cr = att.parsed(CodeReview)
    except ValidationError:
        return None
    request = cr.change_request
    return ReviewSeen(
        change_request=request.url or f"{request.system} #{request.id}",
        approvals=cr.summary.approvals_on_final_revision,
        independent_approvals=cr.summary.independent_approvals,
    )


def exception_used(e: ExceptionRef) -> ExceptionUsed:
    return ExceptionUsed(
        namespace=e.namespace,
        name=e.name,
        owner=e.owner,
        incident_id=e.incident_id,
        approvers=tuple(e.approvers),
        expires_at=rfc3339(e.expires_at.astimezone(UTC)),
        reason=e.reason,
        requested_by=e.requested_by,
    )


def snapshot(
    policy_index: str,
    caller: Caller,
    images: Iterable[tuple[str, str | None]],
    evidence: Mapping[str, ImageEvidence | None],
    exceptions: Iterable[ExceptionRef] = (),
) -> Snapshot:
    """The snapshot of one decision: ``images`` as (canonical ref, digest) in decision order."""
    return Snapshot(
        policy_index=policy_index,
        caller=caller,
        images=tuple(ai_involvement(ref, dg, evidence.get(ref)) for ref, dg in images),
        exceptions=tuple(exception_used(e) for e in exceptions),
    )

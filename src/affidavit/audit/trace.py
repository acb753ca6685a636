"""The four questions, answered for one image from its verified attestations.

When an AI-assisted change fails in production, an incident commander asks: was any of this
AI-generated, by which tool, who accepted it, and what review did it get? This module answers
exactly those from the *verified* ai-provenance/v1 and code-review/v1 statements of an image, so
the answer is evidence, not recollection. It reads only ``ImageEvidence``; fetching and
verification happen before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    AiProvenance,
    CodeReview,
)
from affidavit.errors import VerificationError
from affidavit.printable import printable


@dataclass(frozen=True)
class AiChange:
    commit: str
    involvement: str
    tools: tuple[str, ...]
    accepted_by: str | None
    accepted_at: str | None
    tiers: tuple[str, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class ReviewAnswer:
    change_request: str
    approvals_on_final_revision: int
    independent_approvals: int
    reviewers: tuple[str, ...]
    not_counted: tuple[str, ...] = ()  # approvals of another revision (CodeReview.not_counted)


@dataclass(frozen=True)
class Trace:
    """The answers to the four questions for one image digest."""

    image: str
    digest: str
    revision: str | None
    commits: int
    ai_changes: tuple[AiChange, ...]
    undeclared_commits: int
    tools: tuple[str, ...]
    review: ReviewAnswer | None
    signers: tuple[str, ...]
    #: The sources keyless certificates certified ("REPOSITORY at COMMIT"): the CI platform's
    #: word on which repository's pipeline signed, beside the signer's name in the policy.
    certified_sources: tuple[str, ...] = ()

    @property
    def ai_generated(self) -> bool:
        return bool(self.ai_changes)


_Model = TypeVar("_Model", bound=BaseModel)


def _predicate(model: type[_Model], predicate: dict[str, Any], image: str, kind: str) -> _Model:
    """The signed predicate as ``model``; a signed but malformed one is named, not a traceback."""
    try:
        return model.model_validate(predicate)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(the predicate)"
        raise VerificationError(
            f"{image}: the newest verified {kind} predicate is malformed at {where}: "
            f"{first['msg']} ({e.error_count()} problem(s))",
            hint="the signer's pipeline wrote a predicate this version of Affidavit cannot read; "
            "re-run `affidavit collect` and `affidavit attest` with a current Affidavit",
        ) from e


def _person(name: str, email: str) -> str:
    return f"{name} <{email}>"


def trace_image(evidence: ImageEvidence) -> Trace:
    """Answer the four questions; refuse when no verified provenance exists (no guessing)."""
    provenance_atts = evidence.of_type(AI_PROVENANCE_V1)
    if not provenance_atts:
        found = (
            ", ".join(sorted({a.predicate_type for a in evidence.verified})) or "nothing verified"
        )
        raise VerificationError(
            f"{evidence.image}: no verified {AI_PROVENANCE_V1} attestation (found: {found})",
            hint="run `affidavit collect provenance` and `affidavit attest` in the pipeline that "
            "built this image, then `affidavit verify` with the signer's public key",
        )
    newest_provenance = evidence.newest(AI_PROVENANCE_V1)
    assert newest_provenance is not None
    provenance = _predicate(
        AiProvenance, newest_provenance.predicate, evidence.image, AI_PROVENANCE_V1
    )
    ai_changes = tuple(
        AiChange(
            commit=c.commit,
            involvement=c.ai_involvement,
            tools=tuple(t.name + (f" ({t.model})" if t.model else "") for t in c.tools),
            accepted_by=_person(c.accepted_by.name, c.accepted_by.email) if c.accepted_by else None,
            accepted_at=c.accepted_at,
            tiers=tuple(sorted({f.tier for f in c.files})),
            evidence=tuple(e.detail for e in c.evidence),
        )
        for c in provenance.changes
        if c.ai_involvement in ("assisted", "generated")
    )
    review: ReviewAnswer | None = None
    review_att = evidence.newest(CODE_REVIEW_V1)
    if review_att is not None:
        cr = _predicate(CodeReview, review_att.predicate, evidence.image, CODE_REVIEW_V1)
        review = ReviewAnswer(
            change_request=cr.change_request.url
            or f"{cr.change_request.system} #{cr.change_request.id}",
            approvals_on_final_revision=cr.summary.approvals_on_final_revision,
            independent_approvals=cr.summary.independent_approvals,
            reviewers=tuple(cr.summary.reviewers),
            not_counted=tuple(cr.not_counted()),
        )
    return Trace(
        image=evidence.image,
        digest=evidence.digest,
        revision=provenance.source.revision,
        commits=provenance.summary.commits,
        ai_changes=ai_changes,
        undeclared_commits=provenance.summary.undeclared_commits,
        tools=tuple(provenance.summary.tools),
        review=review,
        signers=tuple(sorted({a.signer for a in evidence.verified})),
        certified_sources=tuple(
            sorted({str(a.certified_source) for a in evidence.verified if a.certified_source})
        ),
    )


def render_trace(trace: Trace) -> str:
    """Plain text for a terminal or an incident ticket."""
    # The policy engine (pydantic models) loads only here: `affidavit trace` must start fast.
    from affidavit.policy.messages import plural

    lines = [
        f"image {trace.image}",
        f"  digest {trace.digest}, built from revision {trace.revision}",
        f"  evidence signed by: {', '.join(trace.signers) or 'nobody'}",
        *(f"  certified source: {source}" for source in trace.certified_sources),
        "",
        "1. Was any of it AI-generated?",
    ]
    if trace.ai_generated:
        n = len(trace.ai_changes)
        lines.append(
            f"   yes: {n} of {plural(trace.commits, 'commit')} {'was' if n == 1 else 'were'} "
            "AI-assisted or generated"
        )
    else:
        lines.append(f"   no AI involvement declared in {plural(trace.commits, 'commit')}")
    if trace.undeclared_commits:
        carry = "carries" if trace.undeclared_commits == 1 else "carry"
        lines.append(
            f"   {plural(trace.undeclared_commits, 'commit')} {carry} no declaration (unknown)"
        )
    lines.append("2. By which tool?")
    lines.append(f"   {', '.join(trace.tools) if trace.tools else 'none recorded'}")
    for change in trace.ai_changes:
        tools = ", ".join(change.tools) or "unnamed tool"
        tiers = ", ".join(change.tiers) or "no files"
        lines.append(f"   - {change.commit[:12]} {change.involvement} by {tools}; tiers: {tiers}")
    lines.append("3. Who accepted it?")
    if not trace.ai_changes:
        lines.append("   nothing to accept")
    for change in trace.ai_changes:
        who = change.accepted_by or "nobody recorded"
        lines.append(f"   - {change.commit[:12]} accepted by {who} at {change.accepted_at or '?'}")
    lines.append("4. What review did it have?")
    if trace.review is None:
        lines.append("   no verified code-review attestation")
    else:
        r = trace.review
        lines.append(
            f"   {r.change_request}: {plural(r.approvals_on_final_revision, 'approval')} on the "
            "final revision, "
            f"{r.independent_approvals} independent; reviewers: {', '.join(r.reviewers) or 'none'}"
        )
        if r.not_counted:
            lines.append(f"   not counted: {', '.join(r.not_counted)}")
    # a line at a time: tool names, people and reviewers are written by whoever commits, and an
    # escape sequence among them could rewrite the answers above it on a terminal
    return "\n".join(map(printable, lines))

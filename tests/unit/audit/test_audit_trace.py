"""Tests the four-questions trace over verified evidence: answers, and refusal without provenance."""

from __future__ import annotations

import pytest

from affidavit.attestations.evidence import _SEAL, ImageEvidence, VerifiedAttestation
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.trace import render_trace, trace_image
from affidavit.errors import VerificationError

DIGEST = "sha256:" + "ab" * 32
PERSON = {"name": "Ana Dev", "email": "ana@example.com"}


def _provenance() -> dict[str, object]:
    return {
        "source": {"repository": "https://git.example/app", "revision": "c2" * 20},
        "changes": [
            {
                "commit": "c1" * 20,
                "author": PERSON,
                "committer": PERSON,
                "authoredAt": "2026-11-01T10:00:00Z",
                "committedAt": "2026-11-01T10:00:00Z",
                "aiInvolvement": "none",
                "evidence": [{"kind": "declaration", "detail": "AI-Assisted: no"}],
            },
            {
                "commit": "c2" * 20,
                "author": PERSON,
                "committer": PERSON,
                "authoredAt": "2026-11-02T10:00:00Z",
                "committedAt": "2026-11-02T11:00:00Z",
                "aiInvolvement": "assisted",
                "evidence": [
                    {"kind": "trailer", "detail": "Co-Authored-By: Claude <noreply@anthropic.com>"}
                ],
                "tools": [{"name": "claude-code", "model": "Claude Opus 4.6"}],
                "acceptedBy": PERSON,
                "acceptedAt": "2026-11-02T11:00:00Z",
                "files": [{"path": "src/auth/login.py", "tier": "critical", "linesAdded": 12}],
            },
        ],
        "summary": {
            "commits": 2,
            "aiTouchedCommits": 1,
            "undeclaredCommits": 0,
            "traceabilityCoverage": 1.0,
            "tools": ["claude-code"],
            "tiersTouchedByAi": ["critical"],
        },
        "collector": {"name": "affidavit", "version": "0.1.0"},
    }


def _review() -> dict[str, object]:
    return {
        "source": {"repository": "https://git.example/app", "revision": "c2" * 20},
        "changeRequest": {
            "system": "github",
            "id": "42",
            "url": "https://github.example/app/pull/42",
            "author": {"login": "ana"},
        },
        "reviews": [
            {
                "reviewer": {"login": "bo"},
                "state": "approved",
                "onFinalRevision": True,
                "independent": True,
            }
        ],
        "summary": {"approvalsOnFinalRevision": 1, "independentApprovals": 1, "reviewers": ["bo"]},
    }


def _att(ptype: str, predicate: dict[str, object]) -> VerifiedAttestation:
    return VerifiedAttestation(
        predicate_type=ptype,
        subject_name="127.0.0.1:5000/app",
        subject_digest=DIGEST,
        predicate=predicate,
        envelope_digest="sha256:" + "ee" * 32,
        signer="ci-key",
        storage="cosign-tag",
        seal=_SEAL,  # engine tests stand in for the verifier
    )


def test_trace_answers_the_four_questions() -> None:
    evidence = ImageEvidence(
        image="127.0.0.1:5000/app@" + DIGEST,
        digest=DIGEST,
        verified=(_att(AI_PROVENANCE_V1, _provenance()), _att(CODE_REVIEW_V1, _review())),
    )
    trace = trace_image(evidence)
    assert trace.ai_generated
    assert [c.commit for c in trace.ai_changes] == ["c2" * 20]
    assert trace.ai_changes[0].tools == ("claude-code (Claude Opus 4.6)",)
    assert trace.ai_changes[0].accepted_by == "Ana Dev <ana@example.com>"
    assert trace.ai_changes[0].tiers == ("critical",)
    assert trace.review is not None and trace.review.independent_approvals == 1
    text = render_trace(trace)
    assert "   yes: 1 of 2 commits was AI-assisted or generated" in text
    assert f"   - {'c2' * 6} accepted by Ana Dev <ana@example.com> at 2026-11-02T11:00:00Z" in text
    assert (
        "   https://github.example/app/pull/42: 1 approval on the final revision, 1 independent;"
        " reviewers: bo" in text
    )


def test_trace_without_review_says_so() -> None:
    evidence = ImageEvidence(
        image="app", digest=DIGEST, verified=(_att(AI_PROVENANCE_V1, _provenance()),)
    )
    assert "   no verified code-review attestation" in render_trace(trace_image(evidence))


def test_trace_refuses_without_verified_provenance() -> None:
    evidence = ImageEvidence(
        image="app", digest=DIGEST, verified=(_att(CODE_REVIEW_V1, _review()),)
    )
    with pytest.raises(VerificationError) as err:
        trace_image(evidence)
    assert err.value.message == (
        f"app: no verified {AI_PROVENANCE_V1} attestation (found: {CODE_REVIEW_V1})"
    )


def test_trace_names_a_malformed_signed_predicate_instead_of_a_traceback() -> None:
    broken = _provenance()
    del broken["changes"][1]["committedAt"]  # type: ignore[index]
    evidence = ImageEvidence(image="app", digest=DIGEST, verified=(_att(AI_PROVENANCE_V1, broken),))
    with pytest.raises(VerificationError) as err:
        trace_image(evidence)
    assert err.value.message == (
        f"app: the newest verified {AI_PROVENANCE_V1} predicate is malformed at "
        "changes.1.committedAt: Field required (1 problem(s))"
    )
    assert err.value.hint is not None and "affidavit collect" in err.value.hint

"""Builders of policy objects, predicates and evidence for the policy table tests.

The policy engine is pure: its inputs are Kubernetes objects (dicts, as the API server returns
them) and the values verification produces (``ImageEvidence``). These builders make both in
their real shapes; the predicates go through the real predicate models when evaluated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from affidavit.attestations.evidence import (
    _SEAL,
    CertifiedSource,
    ImageEvidence,
    RejectedAttestation,
    VerifiedAttestation,
)
from affidavit.attestations.predicates import (
    AI_PROVENANCE_V1,
    CODE_REVIEW_V1,
    AiProvenance,
    CodeReview,
)
from affidavit.attestations.pseudonyms import PseudonymKey
from affidavit.policy import Decision, PolicyIndex, RequestContext, evaluate
from affidavit.policy.presets import UnmatchedImages

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
REPO = "registry.example/shop/payments"
IMAGE = f"{REPO}@{DIGEST}"
REV = "c0ffee" + "0" * 34
PEM = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"
PR_URL = "https://github.com/example/shop/pull/42"
OWNER = "affidavit.dev/owner"
MERGER = {"login": "mia", "name": "Mia Release"}  # neither the author nor a reviewer


def obj(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "affidavit.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "generation": 1, **meta},
        "spec": spec,
    }


def policy(name: str = "baseline", **spec: Any) -> dict[str, Any]:
    """An AccountabilityPolicy; the defaults make the 'baseline' used throughout the tests."""
    base: dict[str, Any] = {
        "mode": "Enforce",
        "signers": {"keys": [{"name": "ci", "publicKey": PEM}]},
        "groups": {"security": ["sam"], "secure-code-reviewers": ["rita", "sam"]},
        "require": {
            "provenance": {"required": True},
            "tiers": {"critical": {"independentApprovals": 1}},
            "consistentRevision": True,
        },
    }
    return obj("AccountabilityPolicy", name, base | spec)


def region_policy(name: str, regions: list[str], **spec: Any) -> dict[str, Any]:
    return obj("RegionPolicy", name, {"regions": regions, **spec})


def exception(name: str, namespace: str = "shop", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "images": [f"{REPO}*"],
        "reason": "payment outage hotfix",
        "incidentId": "INC-7",
        "owner": "olga",
        "approvers": ["victor"],
        "expiresAt": "2026-11-30T00:00:00Z",
    }
    return obj(
        "AccountabilityException",
        name,
        base | spec,
        namespace=namespace,
        creationTimestamp="2026-11-29T00:00:00Z",
    )


def index(
    policies: list[dict[str, Any]] | None = None,
    regions: list[dict[str, Any]] | None = None,
    exceptions: list[dict[str, Any]] | None = None,
) -> PolicyIndex:
    return PolicyIndex.from_objects(
        policies if policies is not None else [policy()], regions or [], exceptions or []
    )


def change(
    commit: str = REV,
    involvement: str = "generated",
    files: tuple[tuple[str, str], ...] = (("src/auth/login.py", "critical"),),
    tools: tuple[dict[str, str], ...] = (
        {"name": "claude-code", "model": "claude-sonnet-4-5", "version": "2.0.1"},
    ),
    committed_at: str = "2026-11-28T10:00:00Z",
) -> dict[str, Any]:
    person = {"name": "Alice", "email": "alice@example.com"}
    return {
        "commit": commit,
        "author": person,
        "committer": person,
        "authoredAt": committed_at,
        "committedAt": committed_at,
        "aiInvolvement": involvement,
        "tools": list(tools) if involvement in ("assisted", "generated") else [],
        "files": [{"path": p, "tier": t, "linesAdded": 10} for p, t in files],
    }


def provenance(*changes: dict[str, Any], revision: str = REV) -> dict[str, Any]:
    changes = changes or (change(),)
    ai = [c for c in changes if c["aiInvolvement"] in ("assisted", "generated")]
    return {
        "source": {"repository": "https://github.com/example/shop", "revision": revision},
        "changes": list(changes),
        "summary": {
            "commits": len(changes),
            "aiTouchedCommits": len(ai),
            "undeclaredCommits": len([c for c in changes if c["aiInvolvement"] == "unknown"]),
            "traceabilityCoverage": 1.0,
        },
        "collector": {"name": "affidavit", "version": "0.1.0"},
    }


def approval(login: str, *, independent: bool = True, bot: bool = False) -> dict[str, Any]:
    return {
        "reviewer": {"login": login, "isBot": bot},
        "state": "approved",
        "revision": REV,
        "onFinalRevision": True,
        "independent": independent,
    }


def review(
    *reviews: dict[str, Any],
    revision: str = REV,
    merged_by: dict[str, Any] | None = MERGER,
    commits: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """A code-review/v1 predicate for PR #42 by alice, merged by ``merged_by`` (None: unmerged),
    holding ``commits`` (default: the commit ``change()`` makes, and ``revision``)."""
    final = [r for r in reviews if r["state"] == "approved" and r["onFinalRevision"]]
    change_request: dict[str, Any] = {
        "system": "github",
        "id": "42",
        "url": PR_URL,
        "author": {"login": "alice", "email": "alice@example.com"},
    }
    if merged_by is not None:
        change_request["mergedBy"] = merged_by
    change_request["commits"] = list(
        commits if commits is not None else dict.fromkeys((REV, revision))
    )
    return {
        "source": {"repository": "https://github.com/example/shop", "revision": revision},
        "changeRequest": change_request,
        "reviews": list(reviews),
        "summary": {
            "approvalsOnFinalRevision": len(final),
            "independentApprovals": len([r for r in final if r["independent"]]),
        },
    }


def slsa(commit: str) -> dict[str, Any]:
    return {
        "buildDefinition": {
            "buildType": "https://example.com/build/v1",
            "externalParameters": {},
            "resolvedDependencies": [
                {"uri": "git+https://github.com/example/shop", "digest": {"gitCommit": commit}}
            ],
        },
        "runDetails": {"builder": {"id": "https://example.com/builder"}},
    }


def att(
    ptype: str,
    predicate: dict[str, Any],
    *,
    subject: str = DIGEST,
    signer: str = "ci",
    n: int = 1,
    predicate_json: bytes | None = None,  # kept as text, parsed at its first read (then {})
    certified: CertifiedSource | None = None,  # what a keyless certificate names
) -> VerifiedAttestation:
    return VerifiedAttestation(
        predicate_type=ptype,
        subject_name=REPO,
        subject_digest=subject,
        predicate=predicate,
        envelope_digest="sha256:" + f"{n:02x}" * 32,
        signer=signer,
        storage="cosign-tag",
        certified_source=certified,
        predicate_json=predicate_json,
        seal=_SEAL,  # engine tests stand in for the verifier
    )


def evidence(
    prov: dict[str, Any] | None = None,
    rev: dict[str, Any] | None = None,
    *,
    image: str = IMAGE,
    extra: tuple[VerifiedAttestation, ...] = (),
    rejected: tuple[RejectedAttestation, ...] = (),
) -> ImageEvidence:
    verified = []
    if prov is not None:
        verified.append(att(AI_PROVENANCE_V1, prov, n=1))
    if rev is not None:
        verified.append(att(CODE_REVIEW_V1, rev, n=2))
    return ImageEvidence(image, DIGEST, tuple(verified) + extra, rejected)


def ctx(
    *,
    region: str = "us-east-1",
    images: tuple[str, ...] = (IMAGE,),
    labels: dict[str, str] | None = None,
    namespace: str = "shop",
    namespace_labels: dict[str, str] | None = None,
    name: str = "payments",
    unmatched_images: UnmatchedImages = "Warn",
) -> RequestContext:
    return RequestContext(
        uid="uid-1",
        cluster="prod-1",
        region=region,
        namespace=namespace,
        namespace_labels=namespace_labels or {},
        kind="Deployment",
        name=name,
        operation="CREATE",
        user="release-bot",
        labels=labels or {},
        images=images,
        unmatched_images=unmatched_images,
    )


def judge_unreviewed(ix: PolicyIndex) -> Decision:
    """``ctx()``'s deployment of ``IMAGE``, a critical AI change without approval, judged under
    ``ix``: denied unless an exception admits it (the exception rules' tests)."""
    unreviewed = evidence(provenance(), review())
    return evaluate(ctx(), {IMAGE: unreviewed}, ix, now=NOW, decision_id="d-1")


#: The pseudonym key of the engine tests' pipeline (``collect --pseudonym-key``).
PSEUDONYM_KEY = PseudonymKey(b"affidavit engine tests, pseudonym key 0123")


def pseudonymous(predicate: dict[str, Any]) -> dict[str, Any]:
    """A provenance or review predicate as ``collect --pseudonym-key`` writes it: through the
    collector's own rewriting, with the built-in tools registry."""
    from affidavit.collect import load_registry
    from affidavit.collect.pseudonymize import pseudonymous_provenance, pseudonymous_review

    if "changes" in predicate:
        prov = AiProvenance.model_validate(predicate)
        return pseudonymous_provenance(prov, PSEUDONYM_KEY, load_registry()).to_wire()
    review = CodeReview.model_validate(predicate)
    return pseudonymous_review(review, PSEUDONYM_KEY).to_wire()

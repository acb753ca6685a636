"""A keyless statement claims the source its certificate certifies (``certifiedSource``).

A predicate's ``source`` (the repository and revision its provenance and review describe) is
what the signing pipeline wrote. A keyless signature's certificate also names a source: Fulcio
copies the repository and commit from the CI platform's identity token (GitHub Actions'
``repository`` and ``sha`` claims, GitLab's ``project_path`` and ``sha``) into its Source
Repository URI and Digest extensions. The platform wrote those, not the pipeline.

A policy that trusts a whole organisation's workflows (``subjectRegExp:
https://github.com/acme/.+``, as policy-controller's examples do) would otherwise trust every
one of them to say which repository it describes. A developer with a scratch repository of the
organisation could build unreviewed code there, collect provenance and review from a clone of
``acme/payments`` at a reviewed revision, and sign them keyless: the signature verifies and the
statement reads as reviewed. So the two sources must agree. The comparison uses the same
repository spelling rules as ``consistentRevision`` (``policy.sources``) and the full commit id.

An identity that names no source (an email, a Kubernetes service account) and a key signature
are not checked: there is nothing to compare. A pipeline that builds another repository on
purpose (a central build repository checking out the application) turns the rule off with
``require.certifiedSource: false`` in every policy that applies.
"""

from __future__ import annotations

from typing import Any

from affidavit.attestations.evidence import Attestation
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.policy.combine import Req
from affidavit.policy.decision import Violation
from affidavit.policy.messages import a, short_type
from affidavit.policy.sources import repository_key

RULE = "source.certified"
#: The predicate types whose ``source`` names a repository and a revision.
SOURCED = frozenset({AI_PROVENANCE_V1, CODE_REVIEW_V1})


def _claimed(predicate: Any) -> tuple[str, str]:
    source = predicate.get("source") if isinstance(predicate, dict) else None
    if not isinstance(source, dict):
        return "", ""
    repo, rev = source.get("repository"), source.get("revision")
    return (repo if isinstance(repo, str) else "", rev if isinstance(rev, str) else "")


def certified_source_violation(
    att: Attestation, req: Req[bool], image: str | None
) -> Violation | None:
    """A violation if ``att`` was signed by a certificate that names a source other than the
    one its predicate claims; None if they agree or there is nothing to compare."""
    cert = att.certified_source
    if cert is None or att.predicate_type not in SOURCED:
        return None
    repo, rev = _claimed(att.predicate)
    same_repo = repository_key(repo) == repository_key(cert.repository)
    same_rev = not cert.revision or rev.lower() == cert.revision.lower()
    if same_repo and same_rev:
        return None
    kind = short_type(att.predicate_type)
    at = f" at {cert.revision[:12]}" if cert.revision else ""
    claimed = f"{repo or 'no repository'} at {rev[:12] or 'no revision'}"
    return Violation(
        RULE,
        req.origin.source,
        f"{a(kind)} attestation claiming {claimed}, signed by {att.signer} with a certificate "
        f"for {cert.repository}{at}",
        "the repository and revision the signing certificate certifies (the CI platform's "
        "claims, not the pipeline's)",
        f"sign the {kind} in the pipeline of {repo or 'the repository the image was built from'} "
        "for the revision the image was built from; if another repository's pipeline builds it "
        "on purpose, set `spec.require.certifiedSource: false` in every policy that applies",
        image,
        req.origin.control,
    )

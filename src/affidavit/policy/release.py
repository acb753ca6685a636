"""Independent release approval: whoever merged a change wrote none of it and reviewed none of it.

PCI DSS 6.2.3.1 wants the person who approves a release to be neither the change's author nor
one of its reviewers, so that no one both produces (or vouches for) code and lets it ship. The
code-review/v1 predicate records that person as ``changeRequest.mergedBy``. The check applies
when the image carries AI-involved changes, as the ``ai``-scoped review rules decide, and fails
closed: a change with no recorded merger, or a merger with neither login nor email to compare,
does not pass; nor does a merger read from a commit's committer field (a trailers review), which
whoever commits writes, unless every policy says ``platformReview: false``.
"""

from __future__ import annotations

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import CODE_REVIEW_V1, CodeReview
from affidavit.attestations.predicates.review import Identity, named
from affidavit.policy.combine import EffectivePolicy
from affidavit.policy.decision import Violation
from affidavit.policy.messages import collect_review_fix, short_type, signing, unverified
from affidavit.policy.tiers import Touched, change_label

RULE = "review.releaseApprover"


def _ids(who: Identity) -> set[str]:
    return {x.lower() for x in (who.login, who.email) if x}


def _why(touched: Touched) -> str:
    paths = [p for ps in touched.ai.values() for p in ps]
    shown = ", ".join(paths[:3]) + (f" +{len(paths) - 3} more" if len(paths) > 3 else "")
    return "AI-involved changes" + (f": {shown}" if shown else "")


def check_release_approver(
    touched: Touched,
    review: CodeReview | str | None,
    eff: EffectivePolicy,
    image: str,
    repo_at: str,
    ev: ImageEvidence,
    review_reported: bool,
) -> list[Violation]:
    """A violation unless someone other than the author and the reviewers merged the change.

    ``review_reported``: the review rules already reported the review attestation as missing or
    unparseable, so that is not reported a second time.
    """
    req = eff.independent_release_approver
    if req is None or not touched.any_ai:
        return []
    origin = req.origin
    sign, pseudonyms = signing(eff.signers), eff.pseudonyms

    def v(found: str, expected: str, fix: str) -> Violation:
        return Violation(RULE, origin.source, found, expected, fix, image, origin.control)

    if not isinstance(review, CodeReview):
        if review_reported:
            return []
        todo = "have the change merged by someone who neither wrote nor reviewed it"
        if review is None:
            found = unverified(CODE_REVIEW_V1, ev)
        else:
            found = f"a code-review/v1 predicate that does not parse ({review})"
        expected = (
            f"a {short_type(CODE_REVIEW_V1)} attestation naming who merged the change "
            f"({_why(touched)})"
        )
        return [
            v(found, expected, collect_review_fix(repo_at, todo, sign=sign, pseudonyms=pseudonyms))
        ]

    cr = review.change_request
    label = change_label(review)
    expected = (
        f"{label} merged by someone who is neither its author nor one of its reviewers "
        f"({_why(touched)})"
    )

    def fix(todo: str) -> str:
        return collect_review_fix(
            repo_at, todo, cr.system, review.source.revision, sign=sign, pseudonyms=pseudonyms
        )

    relanded = (
        f"have someone who neither wrote nor reviewed {label} merge it (re-land it in a new "
        "change request if it is already merged)"
    )
    merger = cr.merged_by
    if merger is not None and cr.system == "trailers" and eff.platform_review is not None:
        # the merge commit's committer field: whoever commits writes it, as the trailers
        found = (
            f"merged by {named(merger)} as the committer field of {label}'s last commit says, "
            "which whoever commits writes (`require.platformReview`)"
        )
        todo = (
            "build from a pull or merge request merged by someone who neither wrote nor "
            "reviewed it, and collect the review its platform recorded"
        )
        return [
            v(
                found,
                expected,
                collect_review_fix(
                    repo_at,
                    todo,
                    "github",
                    review.source.revision,
                    sign=sign,
                    pseudonyms=pseudonyms,
                ),
            )
        ]
    if merger is None:
        todo = f"have someone who neither wrote nor reviewed {label} merge it, and collect the "
        todo += "review after the merge so that mergedBy is recorded"
        return [v(f"no mergedBy recorded for {label}", expected, fix(todo))]
    mine = _ids(merger)
    if not mine:
        found = f"merged by {named(merger)}, with no login or email recorded to compare"
        return [v(found, expected, fix(relanded))]
    if mine & _ids(cr.author):
        found = f"merged by {named(merger)}, who is the author of {label}"
        return [v(found, expected, fix(relanded))]
    if any(mine & _ids(r.reviewer) for r in review.reviews):
        found = f"merged by {named(merger)}, who is a reviewer of {label}"
        return [v(found, expected, fix(relanded))]
    if any(mine & _ids(c) for c in cr.committers):  # wrote part of it, if not its author
        found = f"merged by {named(merger)}, who committed to {label}"
        return [v(found, expected, fix(relanded))]
    return []

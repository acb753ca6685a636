"""The code-review/v1 predicate: who reviewed the change that produced an image, and how.

No vetted in-toto predicate for code review exists, hence this one. Only approvals of the final
revision count, and ``independentApprovals`` excludes the author, the committers, bots and AI
agents, because an approval by the change's own author or by the agent that wrote it is no review.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import Field

from affidavit.attestations.predicates._base import WireModel
from affidavit.attestations.predicates.provenance import Source

CODE_REVIEW_V1 = "https://affidavit.dev/attestations/code-review/v1"

ReviewSystem = Literal["github", "gitlab", "gerrit", "trailers"]
ReviewState = Literal["approved", "changes_requested", "commented", "dismissed", "pending"]


class Identity(WireModel):
    name: str | None = None
    login: str | None = None
    email: str | None = None
    is_bot: bool = False


class ChangeRequest(WireModel):
    system: ReviewSystem
    id: str
    url: str | None = None
    title: str | None = None
    author: Identity
    merged_by: Identity | None = None
    merged_at: str | None = None
    committers: list[Identity] = Field(default_factory=list)
    commits: list[str] | None = Field(default=None, max_length=100_000)
    """Every commit the change request holds, as its platform lists them, and the commits it
    landed as (its merge or squash commit): a policy admits AI-involved commits only where the
    reviewed change request holds them. None: not recorded (a collector before the field)."""


class Review(WireModel):
    reviewer: Identity
    state: ReviewState
    submitted_at: str | None = None
    revision: str | None = None
    comments: int = 0
    on_final_revision: bool = False
    independent: bool = False


class ReviewSummary(WireModel):
    approvals_on_final_revision: int
    independent_approvals: int
    reviewers: list[str] = Field(default_factory=list)
    review_comments: int = 0


class CodeReview(WireModel):
    source: Source
    change_request: ChangeRequest
    reviews: list[Review]
    summary: ReviewSummary
    created_at: str | None = None  # RFC 3339; the newest review attestation counts (signed_time.py)

    def final_approvals(self) -> list[Review]:
        """The approvals that stand on the final revision: each reviewer's latest deciding
        review (``commented`` and ``pending`` decide nothing), in submission order, where it is
        an approval of the final revision. An approval later withdrawn (changes requested,
        dismissed) counts for nobody, as the summary's counts are made (``collect review``)."""
        standing: dict[str, Review] = {}
        for r in sorted(self.reviews, key=lambda r: r.submitted_at or ""):  # stable on ties
            if r.state not in ("commented", "pending"):
                standing[named(r.reviewer).lower()] = r
        return [r for r in standing.values() if r.state == "approved" and r.on_final_revision]

    def not_counted(self, counts: Callable[[Review], bool] = lambda review: True) -> list[str]:
        """Each approval of a revision other than the final one (a push came after it, or no
        revision is known), among those ``counts`` selects, as ``bo approved earlier revision
        <12 hex>``: why a reviewer who did approve is not counted, for denials and ``trace``."""
        found = {
            f"{named(r.reviewer)} approved "
            + (f"earlier revision {r.revision[:12]}" if r.revision else "no known revision")
            for r in self.reviews
            if r.state == "approved" and not r.on_final_revision and counts(r)
        }
        return sorted(found)


def named(who: Identity) -> str:
    """How a person is named in denials and answers: login, else email, else name."""
    return who.login or who.email or who.name or "?"

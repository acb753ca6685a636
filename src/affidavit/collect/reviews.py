"""The rules of ``collect review``, shared by every source of review data.

GitHub, GitLab and commit trailers each say in their own way who reviewed what; the rules that
turn that into code-review/v1 must be the same for all three, so they live here once:

- only approvals of the final revision count;
- a reviewer's latest non-``commented`` state wins (a later ``changes_requested`` or a dismissal
  supersedes an earlier approval; ``pending`` reviews were never submitted and are ignored);
- an approval is independent when the reviewer is not the change's author, not an author,
  co-author or committer of any of its commits (by login, by email, and for GitLab, whose commits
  carry no login, by display name), not a bot and not a known AI agent identity.

The source modules (``reviews_github``, ``reviews_gitlab``, ``reviews_trailers``) read their
inputs into a ``ReviewEvidence`` and call ``build_code_review``; they also use the JSON readers
in ``reviews_input`` (whose errors name the file, the item and the field, and the API response
expected) and the agent identities in ``reviews_identities``; both are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from affidavit.attestations.predicates.provenance import Source
from affidavit.attestations.predicates.review import (
    ChangeRequest,
    CodeReview,
    Identity,
    Review,
    ReviewState,
    ReviewSummary,
)
from affidavit.attestations.predicates.signed_time import utc_now_rfc3339
from affidavit.collect.reviews_identities import (
    AgentIdentities,
    load_agent_identities,
    login_from_email,
    looks_like_bot,
    matches_login_or_email,
    parse_name_email,
)
from affidavit.collect.reviews_input import (
    JsonInput,
    check_head,
    get_field,
    get_revision,
    load_json,
)

__all__ = [
    "AgentIdentities",
    "Contributors",
    "JsonInput",
    "RawReview",
    "ReviewEvidence",
    "build_code_review",
    "check_head",
    "get_field",
    "get_revision",
    "is_independent",
    "load_agent_identities",
    "load_json",
    "login_from_email",
    "looks_like_bot",
    "matches_login_or_email",
    "parse_name_email",
    "reviewer_key",
]

# --- the rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawReview:
    """One review as the source reports it, before the rules are applied."""

    reviewer: Identity
    state: ReviewState
    submitted_at: str | None
    revision: str | None
    comments: int = 0


@dataclass
class Contributors:
    """Everyone who wrote or committed the change: their approvals are not independent."""

    identities: list[Identity] = field(default_factory=list)
    logins: set[str] = field(default_factory=set)
    emails: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add(self, person: Identity, *, listed: bool = True) -> None:
        if person.login:
            self.logins.add(person.login.lower())
        if person.email:
            self.emails.add(person.email.lower())
            derived = login_from_email(person.email)
            if derived:
                self.logins.add(derived)
        if person.name:
            self.names.add(person.name.strip().lower())
        if listed and person not in self.identities:
            self.identities.append(person)

    def add_co_authors(self, message: str) -> None:
        """Add every ``Co-authored-by: Name <email>`` of a commit message."""
        for line in message.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "co-authored-by":
                name, email = parse_name_email(value)
                self.add(Identity(name=name, email=email), listed=False)

    def include(self, person: Identity, *, by_name: bool) -> bool:
        if matches_login_or_email(person, self.logins, self.emails):
            return True
        return by_name and bool(person.name) and (person.name or "").strip().lower() in self.names


@dataclass(frozen=True)
class ReviewEvidence:
    """What a source knows about a change and its reviews, in the predicate's terms."""

    source: Source
    change_request: ChangeRequest
    final_revision: str  # the revision an approval must name to count
    reviews: tuple[RawReview, ...]
    contributors: Contributors
    match_names: bool = False  # compare display names too (GitLab commits carry no login)
    review_comments: int | None = None  # the source's own count, when it has one


def reviewer_key(person: Identity) -> str:
    """How a reviewer is named in ``summary.reviewers`` and told apart from others."""
    return person.login or person.email or person.name or "(unknown)"


def is_independent(reviewer: Identity, evidence: ReviewEvidence, agents: AgentIdentities) -> bool:
    if reviewer.is_bot or looks_like_bot(reviewer) or agents.matches(reviewer):
        return False
    author = Contributors()
    author.add(evidence.change_request.author)
    if author.include(reviewer, by_name=evidence.match_names):
        return False
    return not evidence.contributors.include(reviewer, by_name=evidence.match_names)


def build_code_review(
    evidence: ReviewEvidence, agents: AgentIdentities | None = None
) -> CodeReview:
    """Apply the rules to ``evidence``: the code-review/v1 predicate."""
    agents = agents if agents is not None else load_agent_identities()
    ordered = sorted(
        evidence.reviews, key=lambda r: r.submitted_at or ""
    )  # stable: ties keep order
    deciding: dict[str, RawReview] = {}
    reviewers: dict[str, Identity] = {}
    for raw in ordered:
        if raw.state == "pending":
            continue
        key = reviewer_key(raw.reviewer).lower()
        reviewers.setdefault(key, raw.reviewer)
        if raw.state != "commented":
            deciding[key] = raw
    approvals = 0
    independent = 0
    for key, raw in deciding.items():
        if raw.state == "approved" and raw.revision == evidence.final_revision:
            approvals += 1
            if is_independent(reviewers[key], evidence, agents):
                independent += 1
    reviews = [
        Review(
            reviewer=raw.reviewer,
            state=raw.state,
            submitted_at=raw.submitted_at,
            revision=raw.revision,
            comments=raw.comments,
            on_final_revision=raw.revision == evidence.final_revision,
            independent=is_independent(raw.reviewer, evidence, agents),
        )
        for raw in evidence.reviews
    ]
    comments = evidence.review_comments
    if comments is None:
        comments = sum(raw.comments for raw in evidence.reviews)
    change_request = evidence.change_request.model_copy(
        update={"committers": list(evidence.contributors.identities)}
    )
    return CodeReview(
        source=evidence.source,
        change_request=change_request,
        reviews=reviews,
        summary=ReviewSummary(
            approvals_on_final_revision=approvals,
            independent_approvals=independent,
            reviewers=sorted({reviewer_key(p) for p in reviewers.values()}, key=str.lower),
            review_comments=comments,
        ),
        created_at=utc_now_rfc3339(),
    )

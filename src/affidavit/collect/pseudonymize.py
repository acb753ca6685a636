"""Rewrite a collected predicate so that it names people only by pseudonyms (``--pseudonym-key``).

Runs after collection has judged everything that needs the real identities (is an author an AI
agent, is a reviewer the author, a committer or a bot), so the predicate's verdicts are those of
the plain collection; only the people change. Every person is rewritten, AI agents' accounts too:
the cluster cannot tell an agent's address from a person's without the pipeline's tools registry,
and what a commit's tool was stays in ``tools`` and in the evidence (a trailer naming a tool is no
one's personal data). Two things stay readable: the AI tool suffix of an author's name
(``psn:…:… (aider)``, the evidence that the commit was AI-generated) and reviewers flagged as
bots whose login or name ends in ``[bot]`` (accounts, not people).
"""

from __future__ import annotations

from affidavit.attestations.predicates.provenance import AiProvenance, Change, Evidence, Person
from affidavit.attestations.predicates.review import CodeReview, Identity, Review
from affidavit.attestations.pseudonyms import PERSON_DETAIL, PseudonymKey, bot_account
from affidavit.collect.reviews import reviewer_key
from affidavit.collect.tools import ToolRegistry

__all__ = ["pseudonymous_provenance", "pseudonymous_review"]


class _Names:
    """One key and the tools registry, with each value's pseudonym worked out once."""

    def __init__(self, key: PseudonymKey, registry: ToolRegistry) -> None:
        self.key = key
        self.registry = registry
        self._seen: dict[tuple[str, bool], str] = {}

    def value(self, value: str) -> str:
        found = self._seen.get((value, False))
        if found is None:
            found = self._seen[(value, False)] = self.key.of(value)
        return found

    def name(self, name: str) -> str:
        found = self._seen.get((name, True))
        if found is None:
            hit = self.registry.by_name_suffix(name)
            # the tool's suffix kept as its id, one word (``(aider)``), whatever the name wrote
            found = f"{self.key.of(hit[1])} ({hit[0].id})" if hit and hit[1] else self.key.of(name)
            self._seen[(name, True)] = found
        return found

    def person(self, person: Person) -> Person:
        return Person(name=self.name(person.name), email=self.value(person.email))

    def evidence(self, item: Evidence) -> Evidence:
        match = PERSON_DETAIL.fullmatch(item.detail) if item.kind == "identity" else None
        if match is None:
            return item
        name, email = self.name(match["name"]), self.value(match["email"])
        return Evidence(kind=item.kind, detail=f"{match['role']}: {name} <{email}>")


def pseudonymous_provenance(
    predicate: AiProvenance, key: PseudonymKey, registry: ToolRegistry
) -> AiProvenance:
    """``predicate`` with every author, committer and accepter, and every identity evidence
    item, named by its pseudonym under ``key`` (the ``registry`` tells an AI tool's name suffix,
    which is kept)."""
    names = _Names(key, registry)

    def change(c: Change) -> Change:
        # built as the collector builds its changes (``model_construct`` of checked values):
        # ``model_copy`` cannot update a model the collector made that way
        return Change.model_construct(
            **{
                **dict(c),
                "author": names.person(c.author),
                "committer": names.person(c.committer),
                "accepted_by": names.person(c.accepted_by) if c.accepted_by else None,
                "evidence": [names.evidence(e) for e in c.evidence],
            }
        )

    changes = [change(c) for c in predicate.changes]
    return AiProvenance.model_construct(**{**dict(predicate), "changes": changes})


def pseudonymous_review(predicate: CodeReview, key: PseudonymKey) -> CodeReview:
    """``predicate`` with every person named by its pseudonym under ``key``: the change's
    author, merger, committers and reviewers, and ``summary.reviewers``."""
    names = _Names(key, ToolRegistry(()))

    def who(person: Identity) -> Identity:
        if bot_account(person):
            return person
        return person.model_copy(
            update={
                field: names.value(value) if value else value
                for field, value in (
                    ("name", person.name),
                    ("login", person.login),
                    ("email", person.email),
                )
            }
        )

    def review(r: Review) -> Review:
        return r.model_copy(update={"reviewer": who(r.reviewer)})

    cr = predicate.change_request
    reviewers = {reviewer_key(r.reviewer): r.reviewer for r in predicate.reviews}
    summary = predicate.summary.model_copy(
        update={
            "reviewers": sorted(
                (
                    reviewer_key(who(reviewers[name])) if name in reviewers else names.value(name)
                    for name in predicate.summary.reviewers
                ),
                key=str.lower,
            )
        }
    )
    return predicate.model_copy(
        update={
            "change_request": cr.model_copy(
                update={
                    "author": who(cr.author),
                    "merged_by": who(cr.merged_by) if cr.merged_by else None,
                    "committers": [who(c) for c in cr.committers],
                }
            ),
            "reviews": [review(r) for r in predicate.reviews],
            "summary": summary,
        }
    )

"""``evidence.pseudonymousIdentities``: the evidence names every person by a pseudonym.

The ``eu`` preset's answer to GDPR Chapter V: attestations are copied with their image to
registries anywhere, so the people in them (authors, committers, accepters of AI changes, the
change request's author, merger, committers and reviewers) must be named by the keyed pseudonyms
``collect --pseudonym-key`` writes, never by a name, an email or a login. The cluster holds no
key and needs none: it checks the form of every identity field of the verified provenance and
review predicates it uses, and judges reviews on the pseudonyms as it would on logins.

A denial names where plain identities were found (the field, the commit), never their values:
the decision is kept in the ledger, and repeating the personal data there would defeat the rule.
"""

from __future__ import annotations

from typing import Any

from affidavit.attestations.predicates import CODE_REVIEW_V1, AiProvenance, CodeReview
from affidavit.attestations.predicates.provenance import Person
from affidavit.attestations.predicates.review import Identity
from affidavit.attestations.pseudonyms import (
    PERSON_DETAIL,
    bot_account,
    is_pseudonym,
    is_pseudonymous_name,
    key_id_of,
)
from affidavit.policy.combine import EffectivePolicy, Req
from affidavit.policy.decision import Violation
from affidavit.policy.messages import (
    MAX_SHOWN,
    attest_cmd,
    collect_provenance_fix,
    collect_review_cmd,
    plural,
)

__all__ = [
    "KEYS_RULE",
    "key_ids",
    "plain_in_provenance",
    "plain_in_review",
    "pseudonym_violations",
]

RULE = "evidence.pseudonymousIdentities"
KEYS_RULE = "evidence.pseudonymKeyIds"


def _person(person: Person, role: str) -> list[str]:
    """The fields of ``person`` in plain text, as ``author.email``."""
    out = []
    if not is_pseudonymous_name(person.name):
        out.append(f"{role}.name")
    if not is_pseudonym(person.email):
        out.append(f"{role}.email")
    return out


def _identity(who: Identity, role: str) -> list[str]:
    """The fields of a review identity in plain text; a bot account names no one."""
    if bot_account(who):
        return []
    fields = (("name", who.name), ("login", who.login), ("email", who.email))
    return [f"{role}.{name}" for name, value in fields if value and not is_pseudonym(value)]


def _detail(detail: str) -> bool:
    """Whether an identity evidence item of a person (``author: NAME <EMAIL>``, ``committer:
    …``) names them in plain text. Items quoting the commit message (``subject:``,
    ``message:``) name a tool, not a person."""
    match = PERSON_DETAIL.fullmatch(detail)
    if match is None:  # a tool's words, or a person's item out of shape (fail closed)
        return detail.startswith(("author:", "committer:"))
    return not (is_pseudonymous_name(match["name"]) and is_pseudonym(match["email"]))


def plain_in_provenance(prov: AiProvenance) -> list[str]:
    """Where ``prov`` names a person in plain text, as ``commit 1a2b3c4d5e6f author.email``."""
    out: list[str] = []
    for change in prov.changes:
        at = f"commit {change.commit[:12]} "
        fields = _person(change.author, "author") + _person(change.committer, "committer")
        if change.accepted_by is not None:
            fields += _person(change.accepted_by, "acceptedBy")
        fields += [
            f"evidence[{i}].detail"
            for i, e in enumerate(change.evidence)
            if e.kind == "identity" and _detail(e.detail)
        ]
        out += [at + f for f in fields]
    return out


def plain_in_review(review: CodeReview) -> list[str]:
    """Where ``review`` names a person in plain text, as ``reviews[1].reviewer.login``."""
    cr = review.change_request
    out = _identity(cr.author, "changeRequest.author")
    if cr.merged_by is not None:
        out += _identity(cr.merged_by, "changeRequest.mergedBy")
    for i, c in enumerate(cr.committers):
        out += _identity(c, f"changeRequest.committers[{i}]")
    for i, r in enumerate(review.reviews):
        out += _identity(r.reviewer, f"reviews[{i}].reviewer")
    bots = {r.reviewer.login or r.reviewer.name for r in review.reviews if bot_account(r.reviewer)}
    out += [
        f"summary.reviewers[{i}]"
        for i, name in enumerate(review.summary.reviewers)
        if not is_pseudonym(name) and name not in bots
    ]
    return out


def _prov_values(prov: AiProvenance) -> list[str]:
    people = [p for c in prov.changes for p in (c.author, c.committer, c.accepted_by) if p]
    return [v for p in people for v in (p.name, p.email)]


def _review_values(review: CodeReview) -> list[str]:
    cr = review.change_request
    people = [cr.author, *cr.committers, *(r.reviewer for r in review.reviews)]
    if cr.merged_by is not None:
        people.append(cr.merged_by)
    return [v for who in people for v in (who.name, who.login, who.email) if v]


def key_ids(prov: AiProvenance | None, review: CodeReview | None) -> set[str]:
    """The pseudonym keys the people of the two predicates are named under."""
    values = (_prov_values(prov) if prov is not None else []) + (
        _review_values(review) if review is not None else []
    )
    return {k for v in values if (k := key_id_of(v)) is not None}


def _found(kind: str, places: list[str]) -> str:
    shown = ", ".join(places[:MAX_SHOWN])
    more = f", and {len(places) - MAX_SHOWN} more" if len(places) > MAX_SHOWN else ""
    return (
        f"the {kind} attestation names people in plain text in "
        f"{plural(len(places), 'field')} ({shown}{more})"
    )


def _review_fix(review: CodeReview, repo_at: str, sign: str) -> str:
    """The collect-and-attest of the review predicate, with ``--pseudonym-key``."""
    cr, revision = review.change_request, review.source.revision
    command = collect_review_cmd(cr.system, revision, pseudonyms=True)
    return f"run `{command} && {attest_cmd(repo_at, 'review.json', CODE_REVIEW_V1, sign)}`"


def _violation(
    rule: str, req: Req[Any], found: str, expected: str, fix: str, image: str
) -> Violation:
    return Violation(rule, req.origin.source, found, expected, fix, image, req.origin.control)


def pseudonym_violations(
    prov: AiProvenance | str | None,
    review: CodeReview | str | None,
    eff: EffectivePolicy,
    image: str,
    repo_at: str,
    sign: str,
) -> list[Violation]:
    """A violation for each of the verified provenance and review predicates in use that names
    a person in plain text, when a policy requires pseudonymous identities, and for pseudonyms
    of a key the region does not list."""
    out = _key_violations(prov, review, eff, image, repo_at, sign)
    req: Req[bool] | None = eff.pseudonymous_identities
    if req is None or not req.value:
        return out
    expected = (
        "every person named by a pseudonym (psn:KEYID:...), as `affidavit collect "
        "--pseudonym-key` writes them, so that the evidence carries no personal data"
    )
    if isinstance(prov, AiProvenance) and (places := plain_in_provenance(prov)):
        fix = collect_provenance_fix(repo_at, sign, pseudonyms=True)
        out.append(_violation(RULE, req, _found("ai-provenance/v1", places), expected, fix, image))
    if isinstance(review, CodeReview) and (places := plain_in_review(review)):
        fix = _review_fix(review, repo_at, sign)
        out.append(_violation(RULE, req, _found("code-review/v1", places), expected, fix, image))
    return out


def _key_violations(
    prov: AiProvenance | str | None,
    review: CodeReview | str | None,
    eff: EffectivePolicy,
    image: str,
    repo_at: str,
    sign: str,
) -> list[Violation]:
    """A violation for each RegionPolicy list of pseudonym keys that the evidence's pseudonyms
    are not all from: people named under a key nobody accountable holds cannot be found."""
    if not eff.pseudonym_keys:
        return []  # no RegionPolicy lists keys: nothing to compare, no identity read
    p = prov if isinstance(prov, AiProvenance) else None
    r = review if isinstance(review, CodeReview) else None
    found = {"ai-provenance/v1": key_ids(p, None), "code-review/v1": key_ids(None, r)}
    out: list[Violation] = []
    for req in eff.pseudonym_keys:
        allowed = set(req.value)
        outside = {kind: sorted(keys - allowed) for kind, keys in found.items() if keys - allowed}
        if not outside:
            continue
        said = "; ".join(
            f"the {kind} attestation under key {', '.join(keys)}" for kind, keys in outside.items()
        )
        commands = []
        if "ai-provenance/v1" in outside:
            commands.append(collect_provenance_fix(repo_at, sign, pseudonyms=True))
        if "code-review/v1" in outside and r is not None:
            commands.append(_review_fix(r, repo_at, sign))
        listed = " or ".join(req.value)
        out.append(
            _violation(
                KEYS_RULE,
                req,
                f"people named by pseudonyms of a key this region does not list: {said}",
                f"pseudonyms of key {listed}, which the region's accountable people hold",
                f"with the pseudonym key whose id is {listed} (`affidavit pseudonym key` prints "
                "a new key's id), " + "; and ".join(commands),
                image,
            )
        )
    return out

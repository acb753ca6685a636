"""Differentiated review: which trust tiers AI-involved changes touch, and what review they need.

The ai-provenance predicate says which files each change touched and in which tier (from the
repository's ``.affidavit/tiers.yaml``); the code-review predicate says who approved the final
revision. Tier rules apply only when a change in their scope touches their tier (``*`` = any),
so a docs-only AI change does not need the review an AI change to the payment code needs.
Approvals by bots or AI agents never count as independent or human approvals, and approvals
read from commit trailers count only where every policy says they may (``platformReview``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import CODE_REVIEW_V1, AiProvenance, CodeReview
from affidavit.attestations.predicates.provenance import Change
from affidavit.attestations.predicates.review import Identity, Review, named
from affidavit.attestations.pseudonyms import key_id_of
from affidavit.policy.combine import EffectivePolicy, Req, TierRules
from affidavit.policy.decision import Violation
from affidavit.policy.messages import (
    collect_review_fix,
    plural,
    short_type,
    signing,
    unverified,
)
from affidavit.policy.pseudonymous import key_ids

AI = ("assisted", "generated")
SECURITY_GROUP = "security"


@dataclass(frozen=True)
class Touched:
    """tier -> paths, for AI-involved changes (``ai``) and for every change (``all``), and the
    provenance they were read from (for the commits behind them, ``commits``)."""

    ai: Mapping[str, tuple[str, ...]]
    all: Mapping[str, tuple[str, ...]]
    any_ai: bool
    any_change: bool
    provenance: AiProvenance
    unknown_as_ai: bool

    def paths(self, rules: TierRules) -> tuple[str, ...] | None:
        """Paths that make ``rules`` apply, or None when they do not apply."""
        tiers = self.ai if rules.scope == "ai" else self.all
        if rules.tier == "*":
            if not (self.any_ai if rules.scope == "ai" else self.any_change):
                return None
            return tuple(p for paths in tiers.values() for p in paths)
        return tiers.get(rules.tier)

    def flagged(self, change: Change) -> bool:
        """Whether ``change`` counts as AI-involved here."""
        return is_ai(change.ai_involvement, self.unknown_as_ai)

    def commits(self, rules: TierRules) -> list[str]:
        """The commits whose changes make ``rules`` apply (for ``*``, every commit in scope, one
        that lists no file too). Worked out when asked: most reviews never ask."""
        return [
            c.commit
            for c in self.provenance.changes
            if (rules.scope != "ai" or self.flagged(c))
            and (rules.tier == "*" or any(f.tier == rules.tier for f in c.files))
        ]


def is_ai(involvement: str, unknown_as_ai: bool) -> bool:
    return involvement in AI or (unknown_as_ai and involvement == "unknown")


def touched_tiers(prov: AiProvenance, unknown_as_ai: bool) -> Touched:
    # dicts as ordered sets: a provenance of thousands of commits and files is read in one pass
    ai: dict[str, dict[str, None]] = {}
    every: dict[str, dict[str, None]] = {}
    any_ai = False
    for change in prov.changes:
        flagged = is_ai(change.ai_involvement, unknown_as_ai)
        any_ai = any_ai or flagged
        for f in change.files:
            every.setdefault(f.tier, {})[f.path] = None
            if flagged:
                ai.setdefault(f.tier, {})[f.path] = None
    return Touched(
        ai={k: tuple(v) for k, v in ai.items()},
        all={k: tuple(v) for k, v in every.items()},
        any_ai=any_ai,
        any_change=bool(prov.changes),
        provenance=prov,
        unknown_as_ai=unknown_as_ai,
    )


def _why(rules: TierRules, paths: tuple[str, ...]) -> str:
    who = "AI-involved changes" if rules.scope == "ai" else "changes"
    where = "any tier" if rules.tier == "*" else f"tier {rules.tier}"
    shown = ", ".join(paths[:3]) + (f" +{len(paths) - 3} more" if len(paths) > 3 else "")
    return f"{who} touch {where}" + (f": {shown}" if shown else "")


def _trailer_review(
    review: CodeReview,
    req: Req[bool],
    rules: TierRules,
    paths: tuple[str, ...],
    image: str,
    repo_at: str,
    sign: str,
    pseudonyms: bool,
) -> Violation:
    """``review.platform``: approvals read from commit trailers are words in a commit message,
    which whoever commits writes (``Reviewed-by: Bob`` on a direct push), so they stand for no
    review until the policy says its trailers are written by a system it trusts."""
    final = review.final_approvals()
    approvers = ", ".join(sorted({named(r.reviewer) for r in final})) or "nobody"
    found = (
        f"approvals read from the commit trailers of {review.change_request.id} "
        f"(approved by: {approvers}), which whoever commits writes"
    )
    expected = (
        "approvals recorded by a code-review platform (GitHub, GitLab) on the final revision "
        f"({_why(rules, paths)})"
    )
    todo = (
        "build from the merged pull or merge request and collect the review its platform "
        "recorded (if a system you trust writes these trailers, as Gerrit's submit does, set "
        f"`require.platformReview: false` in {req.origin.source} and every other policy that "
        "applies instead)"
    )
    fix = collect_review_fix(
        repo_at, todo, "github", review.source.revision, sign=sign, pseudonyms=pseudonyms
    )
    origin = req.origin
    return Violation("review.platform", origin.source, found, expected, fix, image, origin.control)


def change_label(review: CodeReview) -> str:
    cr = review.change_request
    if cr.url:
        return cr.url
    return {"github": f"PR #{cr.id}", "gitlab": f"MR !{cr.id}"}.get(cr.system, f"change {cr.id}")


def _earlier(review: CodeReview, counts: Callable[[Review], bool]) -> str:
    """Who approved only another revision, among the approvals that would count: why a
    reviewer who did approve is not counted, said in the denial."""
    seen = review.not_counted(counts)
    return " (not counted: " + ", ".join(seen) + ")" if seen else ""


def _ids(who: Identity) -> set[str]:
    return {x.lower() for x in (who.login, who.email) if x}


def check_review(
    touched: Touched,
    review: CodeReview | str | None,
    eff: EffectivePolicy,
    image: str,
    repo_at: str,
    ev: ImageEvidence,
) -> list[Violation]:
    applicable = [(r, p) for r in eff.tiers if (p := touched.paths(r)) is not None]
    applicable = [(r, p) for r, p in applicable if _demands(r)]
    if not applicable:
        return []
    rules0, paths0 = applicable[0]
    origin = _first_origin(rules0).origin
    sign = signing(eff.signers)
    pseudonyms = eff.pseudonyms
    fix0 = collect_review_fix(
        repo_at, "review the change on its final revision", sign=sign, pseudonyms=pseudonyms
    )
    if review is None:
        found = unverified(CODE_REVIEW_V1, ev)
        expected = f"a {short_type(CODE_REVIEW_V1)} attestation ({_why(rules0, paths0)})"
        return [
            Violation("review.present", origin.source, found, expected, fix0, image, origin.control)
        ]
    if isinstance(review, str):
        found = f"a code-review/v1 predicate that does not parse ({review})"
        expected = "a predicate valid against the code-review/v1 schema"
        return [
            Violation("review.valid", origin.source, found, expected, fix0, image, origin.control)
        ]

    if eff.platform_review is not None and review.change_request.system == "trailers":
        platform = eff.platform_review
        return [_trailer_review(review, platform, rules0, paths0, image, repo_at, sign, pseudonyms)]

    final = review.final_approvals()  # a withdrawn approval (changes requested since) is none
    humans = {named(r.reviewer) for r in final if not r.reviewer.is_bot}
    # The summary's counts, and never more than the reviews themselves show: a summary that
    # says more than its reviews (written by another producer, or by hand) is not believed.
    standing_independent = [r for r in final if r.independent and not r.reviewer.is_bot]
    counts = {
        "approvals": (min(review.summary.approvals_on_final_revision, len(final)), "approval"),
        "independentApprovals": (
            min(review.summary.independent_approvals, len(standing_independent)),
            "independent approval",
        ),
        "humanApprovals": (len(humans), "human approval"),
    }
    counted: dict[str, Callable[[Review], bool]] = {  # which approvals each count takes
        "approvals": lambda r: True,
        "independentApprovals": lambda r: r.independent and not r.reviewer.is_bot,
        "humanApprovals": lambda r: not r.reviewer.is_bot,
    }
    label = change_label(review)
    system, revision = review.change_request.system, review.source.revision

    def fix(todo: str) -> str:
        return collect_review_fix(repo_at, todo, system, revision, sign=sign, pseudonyms=pseudonyms)

    out: list[Violation] = []
    if eff.review_covers_commits is not None:
        out += _uncovered(touched, applicable, review, eff.review_covers_commits, image, fix)
    for fname, (have, noun) in counts.items():
        best: tuple[Req[int], TierRules, tuple[str, ...]] | None = None
        for rules, paths in applicable:
            req = {
                "approvals": rules.approvals,
                "independentApprovals": rules.independent_approvals,
                "humanApprovals": rules.human_approvals,
            }[fname]
            if req is not None and (best is None or _stricter(req, best[0], eff)):
                best = (req, rules, paths)
        if best is None or have >= best[0].value:
            continue
        req, rules, paths = best
        todo = f"get {plural(req.value - have, 'more ' + noun)} on the final revision of {label}"
        out.append(
            Violation(
                f"review.{rules.tier}.{fname}",
                req.origin.source,
                f"{plural(have, noun)} on the final revision of {label}"
                + _earlier(review, counted[fname]),
                f"at least {req.value} ({_why(rules, paths)})",
                fix(todo),
                image,
                req.origin.control,
            )
        )
    independent = standing_independent
    approvers = ", ".join(sorted(named(r.reviewer) for r in independent)) or "nobody"
    done: set[tuple[str, ...]] = set()
    for rules, paths in applicable:
        wanted: list[tuple[str, Req[tuple[str, ...]] | Req[bool]]] = [
            (f"review.{rules.tier}.reviewerGroups", g) for g in rules.reviewer_groups
        ]
        if rules.security_review is not None:
            wanted.append((f"review.{rules.tier}.securityReview", rules.security_review))
        for rule, greq in wanted:
            groups = greq.value if isinstance(greq.value, tuple) else (SECURITY_GROUP,)
            if groups in done:
                continue
            done.add(groups)
            undefined = [g for g in groups if eff.members(g) is None]
            members: set[str] = set()
            for g in groups:
                members |= eff.members(g) or frozenset()
            if any(_ids(r.reviewer) & members for r in independent):
                continue
            names = " or ".join(f"`{g}`" for g in groups)
            found = (
                f"independent approvals by {approvers}, none a member of {names}"
                if independent
                else f"no independent approval on the final revision of {label}"
            )
            if undefined:
                found += " (" + ", ".join(f"`{g}`" for g in undefined) + " defined by no policy)"
            found += _key_mismatch(members, review)
            todo = (
                f"get an approval from a member of {names}{_who_can(members, review)} on the "
                f"final revision of {label}"
            )
            out.append(
                Violation(
                    rule,
                    greq.origin.source,
                    found,
                    f"an independent approval by a member of {names} ({_why(rules, paths)})",
                    fix(todo),
                    image,
                    greq.origin.control,
                )
            )
    return out


def _uncovered(
    touched: Touched,
    applicable: list[tuple[TierRules, tuple[str, ...]]],
    review: CodeReview,
    req: Req[bool],
    image: str,
    fix: Callable[[str], str],
) -> list[Violation]:
    """``review.coversCommits``: a change request's approval covers the commits it holds, not
    every commit in the provenance's range. An AI commit pushed to the branch without review
    and built into the next image would otherwise pass under that image's pull request's
    approval (a range that starts before the pull request's own base, a release range of
    several requests). The commits are those the review names as held (``commits``): the
    request's own, and its merge or squash commit."""
    cr = review.change_request
    label = change_label(review)
    held = {c.lower() for c in cr.commits or ()}
    if all(c.commit.lower() in held for c in touched.provenance.changes):
        return []  # the usual case: the range is the request's own
    needing: dict[str, None] = {}
    for rules, _ in applicable:
        needing.update(dict.fromkeys(touched.commits(rules)))
    outside = [c for c in needing if c.lower() not in held]
    if not outside:
        return []
    shown = ", ".join(_commit_words(c, touched) for c in outside[:5]) + (
        f" +{len(outside) - 5} more" if len(outside) > 5 else ""
    )
    if cr.commits is None:
        found = (
            f"{shown}, and a review of {label} that lists no commits (collected before "
            "Affidavit recorded the commits a change request holds, or from GitLab without "
            "the merge request's commits)"
        )
        todo = fix(
            f"collect the review of {label} again with this version of Affidavit (from GitLab "
            "with --gitlab-commits)"
        ) + (
            f" (until every pipeline does, `require.reviewCoversCommits: false` in "
            f"{req.origin.source} and every other policy that applies turns the rule off)"
        )
    else:
        found = (
            f"{shown}, which {label} does not hold ({plural(len(cr.commits), 'commit')} held: "
            "its own and the commit it landed as)"
        )
        todo = (
            "have those commits reviewed (revert them, or propose them in a pull or merge "
            "request of their own), then build and attest from that request's merge; an image "
            "is judged on one change request's review, so a range spanning several requests "
            "(e.g. since the last release) holds commits the last one's review does not cover"
        )
    origin = req.origin
    return [
        Violation(
            "review.coversCommits",
            origin.source,
            found,
            "every commit whose tier needs review held by the reviewed change request",
            todo,
            image,
            origin.control,
        )
    ]


def _commit_words(commit: str, touched: Touched) -> str:
    """``AI-involved commit 5a1d0c3e7b2f (tiers critical, low)``, as a denial names it."""
    change = next(c for c in touched.provenance.changes if c.commit == commit)
    tiers = sorted({f.tier for f in change.files})
    noun = "tier" if len(tiers) == 1 else "tiers"
    where = f" ({noun} {', '.join(tiers)})" if tiers else ""
    return ("AI-involved commit " if touched.flagged(change) else "commit ") + commit[:12] + where


def _key_mismatch(members: set[str], review: CodeReview) -> str:
    """Why members cannot match when the review names people by pseudonyms: the groups list
    plain logins, or another key's pseudonyms. Empty when neither is the case."""
    named_under = key_ids(None, review)
    if not named_under or not members:
        return ""
    keys = ", ".join(sorted(named_under))
    listed = {k for m in members if (k := key_id_of(m)) is not None}
    if not listed:
        return (
            f" (the review names people by pseudonyms of key {keys}, the groups list plain "
            "logins or emails: list their pseudonyms, `affidavit pseudonym of --key <pseudonym "
            "key> LOGIN...`)"
        )
    if not listed & named_under:
        return (
            f" (the groups list pseudonyms of key {', '.join(sorted(listed))}, the review names "
            f"people under key {keys}: list the members' pseudonyms under the key the pipeline "
            "collects with)"
        )
    return ""


def _who_can(members: set[str], review: CodeReview) -> str:
    """`` (rita, sam)``: the group's members whose approval would count (not the change's
    author or committers); empty when the policies define no members (nothing to name)."""
    if not members:
        return ""
    cr = review.change_request
    excluded = _ids(cr.author).union(*(_ids(c) for c in cr.committers))
    can = sorted(m for m in members if m.lower() not in excluded)
    if not can:
        return " (none but the change's author or committers: add a reviewer to the group)"
    return f" ({', '.join(can)})"


def _stricter(a: Req[int], b: Req[int], eff: EffectivePolicy) -> bool:
    """Higher value wins; on a tie, the requirement from the earlier policy is named."""
    if a.value != b.value:
        return a.value > b.value
    order = {s: i for i, s in enumerate(eff.sources)}
    return order.get(a.origin.source, len(order)) < order.get(b.origin.source, len(order))


def _demands(r: TierRules) -> bool:
    return bool(
        r.approvals or r.independent_approvals or r.human_approvals or r.reviewer_groups
    ) or (r.security_review is not None)


def _first_origin(r: TierRules) -> Req[int] | Req[bool] | Req[tuple[str, ...]]:
    for req in (r.approvals, r.independent_approvals, r.human_approvals, r.security_review):
        if req is not None:
            return req
    return r.reviewer_groups[0]


def check_tools(
    prov: AiProvenance, unknown_as_ai: bool, eff: EffectivePolicy, image: str
) -> list[Violation]:
    out: list[Violation] = []
    reported: set[tuple[str, tuple[str, ...]]] = set()
    for change in prov.changes:
        if not is_ai(change.ai_involvement, unknown_as_ai):  # as requireToolDetails counts them
            continue
        declared = change.ai_involvement in AI
        for allowed in eff.allowed_tools:
            # an undeclared change is held to the tools it names, none to a placeholder: an
            # ordinary commit with no trailer at all names none
            names = [t.name for t in change.tools] or (["(none named)"] if declared else [])
            for name in names:
                ok = any(fnmatchcase(name.lower(), g.lower()) for g in allowed.value)
                if ok or (name, allowed.value) in reported:
                    continue
                reported.add((name, allowed.value))
                out.append(
                    Violation(
                        "tools.allowed",
                        allowed.origin.source,
                        f"AI tool {name} in commit {change.commit[:12]}",
                        "a tool matching one of: " + ", ".join(allowed.value),
                        f"rework the change without {name}, or have {allowed.origin.source} "
                        "add it to `spec.require.allowedTools`",
                        image,
                        allowed.origin.control,
                    )
                )
    if eff.require_tool_details is not None:
        req = eff.require_tool_details
        bare = [
            c.commit[:12]
            for c in prov.changes
            if is_ai(c.ai_involvement, unknown_as_ai)
            and not any(t.model and t.version for t in c.tools)
        ]
        if bare:
            shown = ", ".join(bare[:3]) + (f" +{len(bare) - 3} more" if len(bare) > 3 else "")
            out.append(
                Violation(
                    "tools.details",
                    req.origin.source,
                    f"AI-involved commits without tool name, model and version: {shown}",
                    "every AI-involved change names its tool, model and version",
                    "declare them in the commit message (`Assisted-by: AGENT:MODEL [tools]` "
                    "with the tool's version), then collect and attest provenance again",
                    image,
                    req.origin.control,
                )
            )
    return out

"""Human-readable accounts of an effective policy and of a decision.

A release manager whose deploy was refused needs to see which policy (and which control) stands
behind each requirement, and an auditor needs the whole decision record in one place. Both come
from here, so ``affidavit explain`` and the operator's status say the same thing.
"""

from __future__ import annotations

from affidavit.attestations.evidence import KeylessSigner, KeySigner
from affidavit.policy.combine import EffectivePolicy, Origin, Req
from affidavit.policy.decision import AiInvolvement, Decision, ExceptionUsed, Snapshot
from affidavit.policy.matching import shown_registry
from affidavit.policy.messages import short_type
from affidavit.policy.signer_scope import stranger_finding
from affidavit.printable import printable


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def requirements(eff: EffectivePolicy) -> list[tuple[str, str, Origin]]:
    """(rule, value, origin) for every requirement in force, in a stable order."""
    out: list[tuple[str, str, Origin]] = []

    def add(rule: str, req: Req[object] | None) -> None:
        if req is not None:
            out.append((rule, _fmt(req.value), req.origin))

    add("mode", eff.mode_req)
    add("failurePolicy", eff.failure_policy)
    add("image.digest", eff.require_digest_req)
    add("provenance.present", eff.provenance)
    add("provenance.maxAgeDays", eff.provenance_max_age_days)
    add("revision.consistent", eff.consistent_revision)
    add("repository.consistent", eff.consistent_revision)  # the same switch (policy.sources)
    add("source.certified", eff.certified_source)
    for pin in eff.tier_map_digests:
        add("provenance.tierMap", pin)
    add("treatUnknownAsAi", eff.treat_unknown_as_ai)
    add("review.platform", eff.platform_review)
    add("review.coversCommits", eff.review_covers_commits)
    for t in eff.tiers:
        scope = "AI-involved changes" if t.scope == "ai" else "all changes"
        prefix = f"review.{t.tier}"
        for name, req in (
            ("approvals", t.approvals),
            ("independentApprovals", t.independent_approvals),
            ("humanApprovals", t.human_approvals),
            ("securityReview", t.security_review),
        ):
            if req is not None:
                out.append((f"{prefix}.{name} ({scope})", _fmt(req.value), req.origin))
        for g in t.reviewer_groups:
            out.append((f"{prefix}.reviewerGroups ({scope})", _fmt(g.value), g.origin))
    add("review.releaseApprover (AI-involved changes)", eff.independent_release_approver)
    for tools in eff.allowed_tools:
        add("tools.allowed", tools)
    for repositories in eff.source_repositories:
        add("source.repositories", repositories)
    add("tools.details", eff.require_tool_details)
    for label in eff.owner_labels:
        add("labels.owner", label)
    for label in eff.escalation_labels:
        add("labels.escalation", label)
    add("evidence.retentionDays (not checked at admission)", eff.retention_days)
    for where in eff.residency:
        add("evidence.residency", where)
    for place in eff.registry_locations:
        glob, location = place.value
        shown = f"{shown_registry(glob)} in {location}"
        out.append(("evidence.registryLocation", shown, place.origin))
    add("evidence.pseudonymousIdentities", eff.pseudonymous_identities)
    for keys in eff.pseudonym_keys:
        add("evidence.pseudonymKeyIds", keys)
    add("exceptions.maxDays", eff.exception_max_days)
    add("exceptions.separateRequester", eff.exception_separation)
    add("exceptions.repositoryOnly", eff.exception_repository_only)
    return out


def signer_warnings(eff: EffectivePolicy) -> list[str]:
    """What the trusted keyless signers' patterns also trust (``signer_scope``), if anything."""
    return [
        finding
        for s in eff.signers
        if isinstance(s, KeylessSigner)
        and s.identity_regexp
        and (finding := stranger_finding(s.name, s.issuer, s.identity_regexp)) is not None
    ]


def explain_policy(eff: EffectivePolicy) -> str:
    """The effective policy, one requirement a line, each with the policy and control behind it."""
    lines = ["Effective policy"]
    refs = ", ".join(
        f"{p.kind}/{p.name}" + (f" (generation {p.generation})" if p.generation else "")
        for p in eff.policies
    )
    lines.append(f"  policies: {refs}")
    if eff.signers:
        signers = ", ".join(
            f"{s.name} ({'key' if isinstance(s, KeySigner) else 'keyless ' + _subject(s)})"
            for s in eff.signers
        )
    else:
        signers = "none (no signer is trusted by every policy that names signers)"
    lines.append(f"  trusted signers: {signers}  <- {', '.join(eff.signer_sources) or 'no policy'}")
    # the pattern's own text, shown printable
    lines += [printable(f"  warning: {w}") for w in signer_warnings(eff)]
    for name, members in eff.groups:
        lines.append(f"  group {name}: {', '.join(sorted(members)) or '(empty)'}")
    lines.append("Requirements")
    rows = requirements(eff)
    width = max(len(f"{rule}: {value}") for rule, value, _ in rows)
    for rule, value, origin in rows:
        lines.append(f"  {f'{rule}: {value}':<{width}}  <- {origin}")
    return "\n".join(lines)


def _ai_line(i: AiInvolvement) -> str:
    if i.provenance is None:
        return f"  ai: {i.image}: undetermined (no verified provenance)"
    text = (
        f"  ai: {i.image}: {i.assisted + i.generated} of {i.commits} commits AI-touched "
        f"({i.assisted} assisted, {i.generated} generated), {i.undeclared} undeclared"
    )
    if i.tools:
        text += "; tools: " + ", ".join(
            f"{t.name}" + (f" ({t.model})" if t.model else "") + f" in {t.changes}" for t in i.tools
        )
    if i.tiers:
        text += f"; tiers: {', '.join(i.tiers)}"
    if i.review is None:
        return text + "; review: none verified"
    r = i.review
    return (
        text + f"; review: {r.change_request}, {r.approvals} approvals on the final revision, "
        f"{r.independent_approvals} independent"
    )


def _snapshot_lines(s: Snapshot) -> list[str]:
    """What the decision recorded as true when it was taken (``Decision.snapshot``)."""
    caller = (
        f"authenticated as {s.caller.identity}"
        if s.caller.authenticated
        else "not authenticated by a client certificate"
    )
    lines = [f"  recorded: policy index {s.policy_index}; caller {caller}"]
    lines += [_ai_line(i) for i in s.images]
    lines += [
        f"  exception {e.key}: owner {e.owner}, incident {e.incident_id}, approvers "
        f"{', '.join(e.approvers) or 'none'}, requested by {_requester(e)}, "
        f"expires {e.expires_at}; reason: {e.reason}"
        for e in s.exceptions
    ]
    lines += [f"  not judged here: {n.image} ({n.because})" for n in s.not_judged]
    return lines


def _requester(e: ExceptionUsed) -> str:
    """Who wrote the exception, as the API server authenticated them; "(not stamped)" for one
    written while the webhook did not run, or a decision taken before Affidavit stamped them."""
    if e.requested_by is not None:
        return e.requested_by
    return "(not stamped)"


def explain_decision(decision: Decision) -> str:
    """The full decision record, as the ledger keeps it."""
    d = decision
    lines = [
        f"Decision {d.id}: {d.outcome} (mode {d.mode}) at {d.time}",
        f"  request: {d.operation} {d.kind}/{d.name} in namespace {d.namespace} by {d.user}",
        f"  cluster: {d.cluster}, region {d.region}",
    ]
    for img in d.images:
        lines.append(f"  image: {img.ref} -> {img.digest or 'digest unknown'}")
    if d.policies:
        lines.append(
            "  policies: "
            + ", ".join(
                f"{p.kind}/{p.name}" + (f"@{p.generation}" if p.generation else "")
                for p in d.policies
            )
        )
    for ev in d.evidence:
        certified = ""
        if ev.certified_repository:
            at = f" at {ev.certified_revision}" if ev.certified_revision else ""
            certified = f" (certified source {ev.certified_repository}{at})"
        stored = f", stored at {ev.location}" if ev.location else ""
        lines.append(
            f"  evidence: {short_type(ev.predicate_type)} {ev.envelope_digest} "
            f"signed by {ev.signer}{certified} for {ev.image}{stored}"
        )
    if d.exception:
        lines.append(f"  exception: {d.exception}")
    if d.snapshot is not None:
        lines += _snapshot_lines(d.snapshot)
    if not d.violations:
        lines.append("  violations: none")
    for n, v in enumerate(d.violations, 1):
        cite = f" [{v.control}]" if v.control else ""
        lines.append(f"  {n}. {v.rule} ({v.policy}{cite})")
        if v.image:
            lines.append(f"     image:    {v.image}")
        lines.append(f"     found:    {v.found}")
        lines.append(f"     expected: {v.expected}")
        lines.append(f"     fix:      {v.fix}")
    # a line at a time: what a predicate or repository says stays on its own line
    return "\n".join(map(printable, lines))


def _subject(s: KeylessSigner) -> str:
    """``/regexp/ on refs/heads/main, started by push``: the identity and what it is trusted
    for."""
    said = s.identity or f"/{s.identity_regexp}/"
    if s.refs:
        said += " on " + " or ".join(s.refs)
    if s.triggers:
        said += (", " if s.refs else " ") + "started by " + " or ".join(s.triggers)
    return said

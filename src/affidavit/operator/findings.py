"""A running workload's re-check, in the words of a wgpolicyk8s.io PolicyReport result.

The webhook's Decision says what admission would do now; a PolicyReport result says where the
running workload stands (``pass``, ``fail``, ``warn``, ``error``, ``skip``), readable by Policy
Reporter next to other engines' reports. The mapping, one result per workload:

- allowed -> ``pass``: it runs with the evidence its policies require.
- denied (Enforce) and audited (Audit) -> ``fail``: it runs without the evidence its policies
  now require. Audit is the mode for finding out exactly this, so it is a failure too, as
  Kyverno reports audit-mode violations.
- warned (Warn mode, an image no policy matches under ``unmatchedImages: Warn``) -> ``warn``.
- excepted -> ``skip`` while the exception has time left (the policy is waived, as Kyverno
  reports a PolicyException), ``warn`` once its earliest ``expiresAt`` is within the warning
  window: then it will run without the evidence required, and its owners should know now.
- every violation an evidence lookup that could not finish (registry unavailable, budget) ->
  ``error``: the re-check could not judge it, which is neither a pass nor a finding.

A workload no policy covers and nothing is wrong with is not reported (there is nothing to say
about it). ``fail`` and ``warn`` messages list each violation as the admission message does
(rule, policy, evidence found, evidence expected, the fix) with each fix command once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from affidavit.policy.decision import Decision, Violation
from affidavit.policy.messages import once, plural

#: Violations that mean "could not judge", not "judged and found wanting".
ERROR_RULES = frozenset({"evidence.unavailable", "evidence.budget"})
RESULTS = ("pass", "fail", "warn", "error", "skip")
NOT_EVICTED = "reported, not evicted"


@dataclass(frozen=True)
class Finding:
    """One workload's result: what a PolicyReport result carries besides its resource."""

    result: str  # pass | fail | warn | error | skip
    policy: str
    rule: str
    message: str
    properties: dict[str, str] = field(default_factory=dict)


def rfc3339(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def span(d: timedelta) -> str:
    """``3d``, ``12h``, ``90m``, ``45s``: the largest unit that divides the window exactly."""
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _listing(violations: Sequence[Violation]) -> str:
    shown, commands = once(tuple(violations))
    lines = [f"- {v.message}" for v in shown]
    lines += [f"then run, once for all of the above: `{c}`" for c in commands]
    return "\n".join(lines)


def _names(values: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(values))


def finding(
    workload: str,
    decision: Decision,
    *,
    now: datetime,
    warn_within: timedelta,
    from_spec: Sequence[str] = (),
) -> Finding | None:
    """The result for ``workload`` (``Kind/name``) judged as ``decision``; None: nothing to
    report (no policy covers it and nothing is wrong). See the module docstring."""
    violations = decision.violations
    policies = [f"{p.kind}/{p.name}" for p in decision.policies]
    props: dict[str, str] = {"outcome": decision.outcome, "mode": decision.mode}
    if from_spec:  # no Pod status named their digest (not started, or no kubelet)
        props["imagesFromSpec"] = _names(from_spec)
    images = [
        i.ref if i.digest is None or "@" in i.ref else f"{i.ref}@{i.digest}"
        for i in decision.images
    ]
    if images:
        props["images"] = _names(images)
    if not violations:
        if not policies:
            return None
        text = f"{workload} runs with the evidence its policies require"
        return Finding("pass", _names(policies), "evidence", text, props)
    props["rules"] = _names([v.rule for v in violations])
    props["policies"] = _names([v.policy for v in violations])
    first = violations[0]
    count = plural(len(violations), "violation")
    if all(v.rule in ERROR_RULES for v in violations):
        head = f"{workload} could not be re-checked ({count})"
        return Finding("error", first.policy, first.rule, f"{head}:\n{_listing(violations)}", props)
    if decision.outcome == "excepted":
        return _excepted(workload, decision, count, now, warn_within, props)
    result, mode = {
        "denied": ("fail", ""),
        "audited": ("fail", ", policy in Audit mode"),
        "warned": ("warn", ", policy in Warn mode"),
    }.get(decision.outcome, ("fail", ""))
    head = f"{workload} runs without the evidence its policies now require ({count}{mode}; {NOT_EVICTED})"
    return Finding(result, first.policy, first.rule, f"{head}:\n{_listing(violations)}", props)


def _excepted(
    workload: str,
    decision: Decision,
    count: str,
    now: datetime,
    warn_within: timedelta,
    props: dict[str, str],
) -> Finding:
    used = decision.snapshot.exceptions if decision.snapshot is not None else ()
    key = decision.exception or ", ".join(e.key for e in used)
    props["exception"] = key
    expiries = [datetime.fromisoformat(e.expires_at.replace("Z", "+00:00")) for e in used]
    first = decision.violations[0]
    if not expiries:  # an exception with no recorded expiry cannot be told apart: say so
        text = f"{workload} runs on exception {key} ({count} waived)"
        return Finding("skip", first.policy, first.rule, text, props)
    until = min(expiries)
    props["expiresAt"] = rfc3339(until)
    if until - now > warn_within:
        text = f"{workload} runs on exception {key} until {rfc3339(until)} ({count} waived)"
        return Finding("skip", first.policy, first.rule, text, props)
    head = (
        f"{workload} runs on exception {key}, which expires at {rfc3339(until)}, within the "
        f"{span(warn_within)} warning window; then it runs without the evidence its policies "
        f"require ({count}; {NOT_EVICTED})"
    )
    return Finding(
        "warn", first.policy, first.rule, f"{head}:\n{_listing(decision.violations)}", props
    )


def failed(workload: str, problem: str) -> Finding:
    """The result for a workload the re-check could not judge at all (e.g. an unreadable Pod)."""
    return Finding(
        "error", "affidavit", "recheck", f"{workload} could not be re-checked: {problem}"
    )

"""The words a release manager reads: fix commands for each rule, and the admission message.

Kept apart from the rules so that the texts (which tests assert exactly) live in one place and
every fix names the command that produces the missing evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from affidavit.attestations.evidence import ImageEvidence, KeylessSigner, TrustedSigner
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.attestations.reference import ImageReference
from affidavit.policy.decision import Decision, Violation
from affidavit.printable import printable

MAX_SHOWN = 3


def repository(ref: str) -> str:
    """The repository of an image reference (no tag, no digest), read with the grammar."""
    return ImageReference.parse(ref).name


def pinned(ref: str, digest: str | None) -> str:
    return f"{repository(ref)}@{digest}" if digest else f"{repository(ref)}@sha256:<digest>"


KEY_FLAG = "--key <key>"
KEYLESS_FLAG = "--sigstore"


def signing(signers: Sequence[TrustedSigner]) -> str:
    """How a fix's ``affidavit attest`` signs so that the policy's signers can trust it:
    ``--sigstore`` when every signer is a keyless identity (a key-signed attestation would not
    count), else ``--key <key>``."""
    keyless = bool(signers) and all(isinstance(s, KeylessSigner) for s in signers)
    return KEYLESS_FLAG if keyless else KEY_FLAG


def attest_cmd(image: str, predicate_file: str, predicate_type: str, sign: str) -> str:
    return f"affidavit attest {image} --predicate {predicate_file} --type {predicate_type} " + sign


#: What a fix adds to ``collect`` where people must be named by pseudonyms.
PSEUDONYM_FLAG = " --pseudonym-key <pseudonym key>"


def collect_provenance_fix(image: str, sign: str, *, pseudonyms: bool = False) -> str:
    flag = PSEUDONYM_FLAG if pseudonyms else ""
    return (
        f"run `affidavit collect provenance --repo . --base <base> --head <revision>{flag} "
        f"--output provenance.json && {attest_cmd(image, 'provenance.json', AI_PROVENANCE_V1, sign)}`"
    )


def collect_review_cmd(
    system: str | None, revision: str | None, *, pseudonyms: bool = False
) -> str:
    """The ``affidavit collect review`` invocation for the review system in use."""
    head = f" --head {revision}" if revision else ""
    head += PSEUDONYM_FLAG if pseudonyms else ""
    source = {
        "github": "--github-pr pr.json --github-reviews reviews.json --github-commits commits.json",
        "gitlab": "--gitlab-mr mr.json --gitlab-approvals approvals.json --gitlab-commits "
        "commits.json --gitlab-versions versions.json --gitlab-notes notes.json",
        "trailers": "--trailers --repo . --base <base>",
    }.get(system or "", "...")
    return f"affidavit collect review {source}{head} --output review.json"


def collect_review_fix(
    image: str,
    todo: str,
    system: str | None = None,
    revision: str | None = None,
    *,
    sign: str,
    pseudonyms: bool = False,
) -> str:
    return (
        f"{todo}, then run `{collect_review_cmd(system, revision, pseudonyms=pseudonyms)} && "
        f"{attest_cmd(image, 'review.json', CODE_REVIEW_V1, sign)}`"
    )


def a(word: str) -> str:
    """``a code-review/v1`` / ``an ai-provenance/v1``."""
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def short_type(predicate_type: str) -> str:
    """``https://affidavit.dev/attestations/code-review/v1`` -> ``code-review/v1``."""
    parts = predicate_type.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else predicate_type


#: Of an image's rejected attestations, the distinct reasons a violation names, and how much of
#: each: whoever may push to the repository can attach a thousand junk layers beside an image,
#: and every one of them named made a finding of tens of KB, in every denial, ledger row and
#: PolicyReport about it.
REJECTED_SHOWN = 5
REJECTED_REASON_CHARS = 300


def unverified(predicate_type: str, evidence: ImageEvidence) -> str:
    """What a violation found where no ``predicate_type`` attestation verified: that, and why
    the ones of that type (or of no known type) were rejected (``rejected_reasons``)."""
    found = f"no verified {short_type(predicate_type)} attestation"
    rejected = [r.reason for r in evidence.rejected if r.predicate_type in (None, predicate_type)]
    return f"{found} {rejected_reasons(rejected)}" if rejected else found


def rejected_reasons(reasons: Sequence[str]) -> str:
    """``(rejected: A; B (x3); and N other reasons)``: the distinct reasons, in order, counted,
    ``REJECTED_SHOWN`` at most."""
    counts: dict[str, int] = {}
    for reason in reasons:
        if len(reason) > REJECTED_REASON_CHARS:
            reason = reason[: REJECTED_REASON_CHARS - 1] + "…"
        counts[reason] = counts.get(reason, 0) + 1
    shown = [
        reason if n == 1 else f"{reason} (x{n})"
        for reason, n in list(counts.items())[:REJECTED_SHOWN]
    ]
    rest = len(counts) - len(shown)
    more = f"; and {rest} other reason{'s' if rest != 1 else ''}" if rest else ""
    return f"(rejected: {'; '.join(shown)}{more})"


_FIX = re.compile(r"^(?:(?P<todo>.+), then )?run `(?P<command>[^`]+)`$", re.DOTALL)


def once(violations: tuple[Violation, ...]) -> tuple[tuple[Violation, ...], list[str]]:
    """The violations with a command that more than one of them ends with taken out of their
    fix, and those commands (in order): a release manager runs each once, not once per rule."""
    parts = [_FIX.match(v.fix) for v in violations]
    commands = [m["command"] for m in parts if m is not None]
    repeated = list(dict.fromkeys(c for c in commands if commands.count(c) > 1))
    out = []
    for v, m in zip(violations, parts, strict=True):
        if m is not None and m["command"] in repeated:
            v = replace(v, fix=m["todo"] or "the command below")
        out.append(v)
    return tuple(out), repeated


DRY_RUN_NOTE = "dry run: judged like the real request, but not recorded"


def admission_message(decision: Decision, *, recorded: bool = True) -> str:
    """Short, actionable text for the AdmissionReview response (the ledger has the rest).

    A dry run is not recorded, so its message says so instead of pointing to the record.
    """
    target = f"{decision.kind}/{decision.name} in namespace {decision.namespace}"
    if not decision.violations:
        return f"Affidavit admitted {target} (decision {decision.id})"
    head = {
        "denied": f"Affidavit denied {target}",
        "warned": f"Affidavit warning for {target} (admitted, policy in Warn mode)",
        "audited": f"Affidavit audit for {target} (admitted, policy in Audit mode)",
        "excepted": f"Affidavit admitted {target} under exception {decision.exception}",
        "allowed": f"Affidavit admitted {target}",
    }[decision.outcome]
    n = len(decision.violations)
    lines = [f"{head} (decision {decision.id}): {plural(n, 'violation')}"]
    shown, commands = once(decision.violations[:MAX_SHOWN])
    lines += [f"- {v.message}" for v in shown]
    if n > MAX_SHOWN:
        lines.append(f"- and {n - MAX_SHOWN} more")
    lines += [f"then run, once for all of the above: `{c}`" for c in commands]
    if recorded:
        lines.append(f"run `affidavit explain --decision {decision.id}` for the full record")
    else:
        lines.append(DRY_RUN_NOTE)
    return "\n".join(map(printable, lines))


#: The kube-apiserver keeps a response's warnings whole up to 4,096 characters in all; past that
#: it cuts every warning to 256 and drops those that come after (k8s.io/apiserver's warning
#: recorder). Kept under it, with room for the ledger's own note (``ledger.buffer.BUFFERED_NOTE``).
WARNINGS_BUDGET = 3584


def admission_warnings(decision: Decision, *, recorded: bool = True) -> list[str]:
    """A Warn-mode decision's violations as admission warnings, each whole: as many as fit the
    apiserver's budget, then one line saying how many more and where the full record is.

    Before, every violation was a warning: a workload with a dozen images went past the budget
    and kubectl showed each cut at 256 characters, the fix commands lost."""
    messages = [v.message for v in decision.violations]
    where = (
        f"run `affidavit explain --decision {decision.id}` for the full record"
        if recorded
        else DRY_RUN_NOTE
    )
    shown: list[str] = []
    used = 0
    for n, message in enumerate(messages):
        rest = len(messages) - n - 1
        tail = len(f"and {rest} more violations: {where}") if rest else 0
        if used + len(message) + tail > WARNINGS_BUDGET:
            break
        shown.append(message)
        used += len(message)
    if len(shown) < len(messages):
        shown.append(f"and {plural(len(messages) - len(shown), 'more violation')}: {where}")
    return shown

"""The coverage report: an auditor's "show me your governance over AI-generated code" in seconds.

It reads the decision ledger for a period (optionally one region), counts what was admitted and
refused and on which evidence, which AI-touched workloads got through, which break-glass
exceptions were used and which rules (and the controls they serve) were violated most. The hash
chain is verified first: when it is broken the report says so at the top and refuses to present
the figures as a clean bill. One JSON document is computed; Markdown and HTML are renderings of
it, deterministic for the same ledger and period (no wall-clock time), every user-supplied text
escaped (see :mod:`affidavit.audit.render`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from affidavit.attestations.evidence import ImageEvidence
from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.trace import trace_image
from affidavit.errors import InputError, VerificationError
from affidavit.ledger import ChainReport, Ledger, LedgerRecord
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.policy.decision import Decision
from affidavit.policy.index import PolicyIndex

SCHEMA = "https://affidavit.dev/audit/coverage-report/v1"
OUTCOMES = ("allowed", "warned", "audited", "excepted", "denied")
TOP_RULES = 20


@dataclass(frozen=True)
class ExceptionDetail:
    """Who granted an AccountabilityException, why, for which incident, until when."""

    key: str  # namespace/name, as decisions record it
    owner: str
    approvers: tuple[str, ...]
    reason: str
    incident_id: str
    expires_at: str


def exception_details(objects: Iterable[Mapping[str, Any]]) -> dict[str, ExceptionDetail]:
    """Details of AccountabilityException objects (``kubectl get ... -o yaml`` items)."""
    index = PolicyIndex.from_objects([], [], list(objects))
    if index.errors:
        name, problem = next(iter(index.errors.items()))
        raise InputError(f"exception {name} is invalid: {problem}")
    return {
        f"{e.namespace}/{e.name}": ExceptionDetail(
            key=f"{e.namespace}/{e.name}",
            owner=e.spec.owner,
            approvers=tuple(e.spec.approvers),
            reason=e.spec.reason,
            incident_id=e.spec.incident_id,
            expires_at=e.spec.expires_at.isoformat().replace("+00:00", "Z"),
        )
        for e in index.exceptions
    }


def ai_touched_from_evidence(evidence: Iterable[ImageEvidence]) -> dict[str, bool]:
    """digest -> whether its verified provenance declares AI-touched changes (the trace's answer).

    Images without verified provenance are left out: the report counts them as undetermined.
    """
    out: dict[str, bool] = {}
    for ev in evidence:
        try:
            out[ev.digest] = trace_image(ev).ai_generated
        except VerificationError:
            continue
    return out


def _rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _ai_class(d: Decision, ai_touched: Mapping[str, bool]) -> str:
    """ "ai", "human" or "undetermined" for one decision.

    The ledger alone knows AI was involved when a per-tier review rule fired (those rules apply
    only to tiers AI-touched changes reached); the decision's snapshot of its verified provenance
    settles the rest, and for rows recorded before snapshots (or images without verified
    provenance then) provenance verified now (``ai_touched``, by digest).
    """
    known = [_ai_of(d, i.ref, i.digest, ai_touched) for i in d.images]
    if any(known) or any(v.rule.startswith("review.") for v in d.violations):
        return "ai"
    if d.images and all(k is False for k in known):
        return "human"
    return "undetermined"


def _ai_of(
    d: Decision, ref: str, digest: str | None, ai_touched: Mapping[str, bool]
) -> bool | None:
    seen = d.snapshot.image(ref) if d.snapshot is not None else None
    if seen is not None and seen.ai_touched is not None:
        return seen.ai_touched
    return ai_touched.get(digest) if digest else None


def _snapshot_detail(d: Decision, key: str) -> ExceptionDetail | None:
    e = d.snapshot.exception(key) if d.snapshot is not None else None
    if e is None:
        return None
    return ExceptionDetail(e.key, e.owner, e.approvers, e.reason, e.incident_id, e.expires_at)


def _has(d: Decision, predicate_type: str) -> bool:
    covered = {e.image for e in d.evidence if e.predicate_type == predicate_type}
    return bool(d.images) and all(i.ref in covered for i in d.images)


def _row(keys: dict[str, str], counts: Counter[str]) -> dict[str, Any]:
    return {**keys, **{o: counts[o] for o in OUTCOMES}, "total": sum(counts.values())}


def coverage_report(
    records: Iterable[LedgerRecord],
    chain: ChainReport,
    *,
    since: datetime | None,
    until: datetime | None,
    region: str | None = None,
    ledger_head: tuple[int, str] | None = None,
    exceptions: Mapping[str, ExceptionDetail] | None = None,
    ai_touched: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The report document for ``records`` (already limited to the period) and the chain check."""
    ai_touched = ai_touched or {}
    exceptions = exceptions or {}
    totals: Counter[str] = Counter()
    regions: dict[str, Counter[str]] = {}
    clusters: dict[tuple[str, str], Counter[str]] = {}
    namespaces: dict[tuple[str, str], Counter[str]] = {}
    evidence: Counter[str] = Counter()
    ai: Counter[str] = Counter()
    exc_uses: dict[str, list[tuple[str, str]]] = {}
    recorded: dict[str, ExceptionDetail] = {}  # from the decisions' snapshots, newest wins
    rules: dict[str, dict[str, Any]] = {}
    unreadable: list[int] = []
    for rec in records:
        try:
            d = Decision.from_dict(rec.decision)
        except (TypeError, KeyError, ValueError):
            unreadable.append(rec.seq)
            continue
        if region is not None and d.region != region:
            continue
        totals[d.outcome] += 1
        regions.setdefault(d.region, Counter())[d.outcome] += 1
        clusters.setdefault((d.region, d.cluster), Counter())[d.outcome] += 1
        namespaces.setdefault((d.cluster, d.namespace), Counter())[d.outcome] += 1
        admitted = d.outcome != "denied"
        ai[f"{_ai_class(d, ai_touched)}.{'admitted' if admitted else 'denied'}"] += 1
        if admitted:
            prov, rev = _has(d, AI_PROVENANCE_V1), _has(d, CODE_REVIEW_V1)
            evidence.update(
                admitted=1,
                withProvenance=int(prov),
                withReview=int(rev),
                withBoth=int(prov and rev),
            )
        for key in filter(None, (d.exception or "").split(", ")) if d.outcome == "excepted" else ():
            exc_uses.setdefault(key, []).append(
                (d.time, f"{d.cluster}/{d.namespace}/{d.kind}/{d.name}")
            )
            detail = _snapshot_detail(d, key)
            if detail is not None:
                recorded[key] = detail
        for rule_name in sorted({v.rule for v in d.violations}):
            entry = rules.setdefault(
                rule_name, {"violations": 0, "decisions": 0, "controls": set(), "policies": set()}
            )
            entry["decisions"] += 1
        for v in d.violations:
            entry = rules[v.rule]
            entry["violations"] += 1
            entry["policies"].add(v.policy)
            if v.control:
                entry["controls"].add(v.control)
    admitted_n = evidence["admitted"]
    top = sorted(rules.items(), key=lambda kv: (-kv[1]["violations"], kv[0]))[:TOP_RULES]
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "period": {"since": _rfc3339(since), "until": _rfc3339(until), "region": region},
        "integrity": {
            "ok": chain.ok,
            "checked": chain.checked,
            "headSeq": chain.head_seq,
            "headHash": ledger_head[1] if ledger_head else None,
            "firstBrokenSeq": chain.first_broken_seq,
            "reason": chain.reason,
            "checkpointSize": chain.checkpoint_size,
            "unreadableSeqs": unreadable,
        },
        "totals": {
            "decisions": sum(totals.values()),
            "admitted": sum(totals.values()) - totals["denied"],
            **{o: totals[o] for o in OUTCOMES},
        },
        "byRegion": [_row({"region": r}, c) for r, c in sorted(regions.items())],
        "byCluster": [
            _row({"region": r, "cluster": c}, n) for (r, c), n in sorted(clusters.items())
        ],
        "byNamespace": [
            _row({"cluster": c, "namespace": ns}, n) for (c, ns), n in sorted(namespaces.items())
        ],
        "evidence": {
            "admitted": admitted_n,
            "withProvenance": evidence["withProvenance"],
            "withReview": evidence["withReview"],
            "withProvenanceAndReview": evidence["withBoth"],
            "share": round(evidence["withBoth"] / admitted_n, 4) if admitted_n else None,
        },
        "aiTouched": {
            "source": "ledger and verified attestations" if ai_touched else "ledger",
            **{
                cls: {"admitted": ai[f"{cls}.admitted"], "denied": ai[f"{cls}.denied"]}
                for cls in ("ai", "human", "undetermined")
            },
        },
        "exceptions": [
            _exception_row(k, uses, recorded.get(k) or exceptions.get(k))
            for k, uses in sorted(exc_uses.items())
        ],
        "topViolatedRules": [
            {
                "rule": name,
                "controls": sorted(e["controls"]),
                "policies": sorted(e["policies"]),
                "violations": e["violations"],
                "decisions": e["decisions"],
            }
            for name, e in top
        ],
    }
    report["verdict"], report["headline"] = _verdict(report)
    return report


def _exception_row(
    key: str, uses: list[tuple[str, str]], detail: ExceptionDetail | None
) -> dict[str, Any]:
    times = sorted(t for t, _ in uses)
    return {
        "exception": key,
        "uses": len(uses),
        "workloads": sorted({w for _, w in uses}),
        "firstUse": times[0],
        "lastUse": times[-1],
        "owner": detail.owner if detail else None,
        "approvers": list(detail.approvers) if detail else None,
        "reason": detail.reason if detail else None,
        "incidentId": detail.incident_id if detail else None,
        "expiresAt": detail.expires_at if detail else None,
    }


def _verdict(r: Mapping[str, Any]) -> tuple[str, str]:
    integrity = r["integrity"]
    if not integrity["ok"]:
        return "chain-broken", (
            f"NOT A CLEAN BILL: the ledger's hash chain is broken at seq "
            f"{integrity['firstBrokenSeq']}: {integrity['reason']}. Decisions from that seq on "
            "may have been edited, removed or inserted; the figures below cannot be relied on "
            "until the ledger is restored from a backup and verifies."
        )
    if integrity["unreadableSeqs"]:
        seqs = ", ".join(str(s) for s in integrity["unreadableSeqs"])
        return "unreadable-records", (
            f"NOT A CLEAN BILL: the chain verifies but decisions at seq {seqs} are not readable "
            "decisions; they are left out of the figures below."
        )
    ev = r["evidence"]
    share = "n/a" if ev["share"] is None else f"{ev['share']:.1%}"
    return "intact", (
        f"The ledger's hash chain is intact ({integrity['checked']} decisions verified up to seq "
        f"{integrity['headSeq']}). In this period {r['totals']['decisions']} admission decisions "
        f"were taken; {ev['withProvenanceAndReview']} of {ev['admitted']} admitted workloads "
        f"({share}) had verified provenance and review evidence."
    )


def report_from_ledger(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    region: str | None = None,
    exceptions: Mapping[str, ExceptionDetail] | None = None,
    ai_touched: Mapping[str, bool] | None = None,
    records: Sequence[LedgerRecord] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
) -> dict[str, Any]:
    """Verify the whole chain (against the signed ``checkpoints``), then report on the period's
    decisions (``since`` inclusive)."""
    chain = ledger.verify_chain(checkpoints)
    head = ledger.head()
    if records is None:
        records = ledger.query(since=since, until=until, limit=None)
    return coverage_report(
        records,
        chain,
        since=since,
        until=until,
        region=region,
        ledger_head=head,
        exceptions=exceptions,
        ai_touched=ai_touched,
    )

"""The coverage report: an auditor's "show me your governance over AI-generated code" in seconds.

It reads the decision ledger for a period (optionally one region), counts what was admitted and
refused and on which evidence, which AI-touched workloads got through, which break-glass
exceptions were used and which rules (and the controls they serve) were violated most. The hash
chain is verified first: when it is broken the report says so at the top and refuses to present
the figures as a clean bill. One JSON document is computed; Markdown and HTML are renderings of
it, every user-supplied text escaped (see :mod:`affidavit.audit.render`). The chain is verified
in the same single pass that counts (:class:`affidavit.ledger.scan.ChainScan`), so a report over
a million decisions takes seconds and little memory; when the chain is broken every figure says
how many of its decisions come from the damaged range.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from affidavit import __version__
from affidavit.attestations.evidence import ImageEvidence
from affidavit.audit.controls import control_view
from affidavit.audit.parallel import PARALLEL_FROM, LineSink, parallel_scan
from affidavit.audit.retention import retention_statement
from affidavit.audit.tally import (
    AI_CLASSES,
    OUTCOMES,
    REVIEW_CLASSES,
    Kind,
    ScanFacts,
    Tally,
)
from affidavit.audit.trace import trace_image
from affidavit.cycles import cycle_collection_paused
from affidavit.errors import InputError, UsageError, VerificationError
from affidavit.ledger import ChainReport, Ledger
from affidavit.ledger.checkpoint import Checkpoint
from affidavit.ledger.scan import ChainScan, ScanRow
from affidavit.policy.index import PolicyIndex

SCHEMA = "https://affidavit.dev/audit/coverage-report/v1"
TOP_RULES = 20
__all__ = [
    "OUTCOMES",
    "SCHEMA",
    "ExceptionDetail",
    "ai_touched_from_evidence",
    "exception_details",
    "report_from_ledger",
]


@dataclass(frozen=True)
class ExceptionDetail:
    """Who granted an AccountabilityException, why, for which incident, until when."""

    key: str  # namespace/name, as decisions record it
    owner: str
    approvers: tuple[str, ...]
    reason: str
    incident_id: str
    expires_at: str
    #: The API server's name for whoever wrote the spec (the webhook's stamp); None: unstamped.
    requested_by: str | None = None


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
            requested_by=e.requested_by,
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
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _counts(counter: Counter[str], damaged: int) -> dict[str, Any]:
    return {
        **{o: counter[o] for o in OUTCOMES},
        "total": sum(counter.values()),
        "damaged": damaged,
    }


def _grouped(t: Tally, key: Callable[[Kind, str], tuple[str, ...]]) -> list[Any]:
    groups: dict[tuple[str, ...], tuple[Counter[str], list[int]]] = {}
    for kind, ns, outcome, bad, n in t.rows():
        counter, damaged = groups.setdefault(key(kind, ns), (Counter(), [0]))
        counter[outcome] += n
        damaged[0] += n if bad else 0
    return [(g, _counts(c, d[0])) for g, (c, d) in sorted(groups.items())]


def _document(
    t: Tally,
    chain: ChainReport,
    head: tuple[int, str],
    since: datetime | None,
    until: datetime | None,
    region: str | None,
    exceptions: Mapping[str, ExceptionDetail],
) -> dict[str, Any]:
    totals: Counter[str] = Counter()
    damaged = unauthenticated = 0
    ev: Counter[str] = Counter()
    ai: Counter[str] = Counter()
    rule_decisions: Counter[str] = Counter()
    for kind, _ns, outcome, bad, n in t.rows():
        totals[outcome] += n
        damaged += n if bad else 0
        unauthenticated += 0 if kind.authenticated else n
        admitted = "denied" if outcome == "denied" else "admitted"
        ai[f"{kind.ai}.{admitted}"] += n
        if admitted == "admitted":
            prov, rev = kind.provenance, kind.review
            ev.update(admitted=n, prov=n * prov, rev=n * rev, both=n * (prov and rev))
            ev["damaged"] += n if bad else 0
            if kind.ai == "ai":
                ai[f"review.{kind.how}"] += n
        for rule in {str(v[0]) for v in kind.violations}:
            rule_decisions[rule] += n
    days: dict[str, Counter[str]] = {}
    days_damaged: Counter[str] = Counter()
    for (day, outcome, bad), n in t.days.items():
        days.setdefault(day, Counter())[outcome] += n
        days_damaged[day] += n if bad else 0
    rules: dict[str, dict[str, Any]] = {}
    for (rule, policy, control, _outcome, bad), n in t.rule_counts().items():
        e = rules.setdefault(
            rule, {"violations": 0, "controls": set(), "policies": set(), "damaged": 0}
        )
        e["violations"] += n
        e["policies"].add(policy)
        e["damaged"] += n if bad else 0
        if control:
            e["controls"].add(control)
    top = sorted(rules.items(), key=lambda kv: (-kv[1]["violations"], kv[0]))[:TOP_RULES]
    admitted_n = ev["admitted"]
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "period": {"since": _rfc3339(since), "until": _rfc3339(until), "region": region},
        "integrity": {
            "ok": chain.ok,
            "checked": chain.checked,
            "headSeq": chain.head_seq,
            "headHash": head[1],
            "firstBrokenSeq": chain.first_broken_seq,
            "reason": chain.reason,
            "checkpointSize": chain.checkpoint_size,
            "unreadableSeqs": [],
        },
        "totals": {
            "decisions": sum(totals.values()),
            "admitted": sum(totals.values()) - totals["denied"],
            **{o: totals[o] for o in OUTCOMES},
            "damaged": damaged,
        },
        "workloads": {
            "workloads": len(t.workloads),
            "workloadsAdmittedClean": len(t.clean_workloads),
            "requests": sum(totals.values()),
            "requestsAdmittedClean": totals["allowed"],
            "requestsAdmittedWithFindings": totals["warned"]
            + totals["audited"]
            + totals["excepted"],
            "requestsDenied": totals["denied"],
            "requestsWithoutAuthenticatedCaller": unauthenticated,
        },
        "byDay": [{"day": d, **_counts(c, days_damaged[d])} for d, c in sorted(days.items())],
        "byRegion": [{"region": g[0], **c} for g, c in _grouped(t, lambda k, ns: (k.region,))],
        "byCluster": [
            {"region": g[0], "cluster": g[1], **c}
            for g, c in _grouped(t, lambda k, ns: (k.region, k.cluster))
        ],
        "byNamespace": [
            {"cluster": g[0], "namespace": g[1], **c}
            for g, c in _grouped(t, lambda k, ns: (k.cluster, ns))
        ],
        "evidence": {
            "admitted": admitted_n,
            "withProvenance": ev["prov"],
            "withReview": ev["rev"],
            "withProvenanceAndReview": ev["both"],
            "share": round(ev["both"] / admitted_n, 4) if admitted_n else None,
            "damaged": ev["damaged"],
        },
        "aiTouched": {
            "source": "ledger and verified attestations" if t.ai_touched else "ledger",
            **{
                c: {"admitted": ai[f"{c}.admitted"], "denied": ai[f"{c}.denied"]}
                for c in AI_CLASSES
            },
            "reviewOfAdmitted": {c: ai[f"review.{c}"] for c in REVIEW_CLASSES},
        },
        "exceptions": [
            _exception_row(k, use, exceptions.get(k)) for k, use in sorted(t.exception_uses.items())
        ],
        "topViolatedRules": [
            {
                "rule": name,
                "controls": sorted(e["controls"]),
                "policies": sorted(e["policies"]),
                "violations": e["violations"],
                "decisions": rule_decisions[name],
                "damaged": e["damaged"],
            }
            for name, e in top
        ],
        "controls": control_view(t),
        "samples": {k: list(v) for k, v in t.samples.items()},
    }
    report["verdict"], report["headline"] = _verdict(report)
    return report


def _exception_row(
    key: str, use: Mapping[str, Any], detail: ExceptionDetail | None
) -> dict[str, Any]:
    rec = use.get("recorded")  # the decision's own snapshot wins over today's object
    if rec is not None:
        detail = ExceptionDetail(key, rec[2], tuple(rec[4] or ()), rec[6], rec[3], rec[5], rec[7])
    return {
        "exception": key,
        "uses": use["uses"],
        "workloads": sorted(use["workloads"]),
        "firstUse": use["first"],
        "lastUse": use["last"],
        "owner": detail.owner if detail else None,
        "approvers": list(detail.approvers) if detail else None,
        "requestedBy": detail.requested_by if detail else None,
        "reason": detail.reason if detail else None,
        "incidentId": detail.incident_id if detail else None,
        "expiresAt": detail.expires_at if detail else None,
        "controls": sorted(use.get("controls", ())),
        "damaged": bool(use.get("damaged")),
    }


def _verdict(r: Mapping[str, Any]) -> tuple[str, str]:
    integrity = r["integrity"]
    if not integrity["ok"]:
        return "chain-broken", (
            f"NOT A CLEAN BILL: the ledger's hash chain is broken at seq "
            f"{integrity['firstBrokenSeq']}: {integrity['reason']}. Decisions from that seq on "
            "may have been edited, removed or inserted; the figures below cannot be relied on "
            "until the ledger is restored from a backup and verifies "
            f"({r['totals']['damaged']} of this period's decisions are in the damaged range, "
            "marked in every table)."
        )
    ev, w, totals = r["evidence"], r["workloads"], r["totals"]
    share = "n/a" if ev["share"] is None else f"{ev['share']:.1%}"
    return "intact", (
        f"The ledger's hash chain is intact ({integrity['checked']} decisions verified up to seq "
        f"{integrity['headSeq']}). In this period {totals['decisions']} admission requests "
        f"about {w['workloads']} workloads were decided: {totals['allowed']} admitted clean, "
        f"{w['requestsAdmittedWithFindings']} admitted with warnings or exceptions, "
        f"{totals['denied']} denied; {ev['withProvenanceAndReview']} of {ev['admitted']} "
        f"admitted ({share}) had verified provenance and review evidence."
    )


_PROGRESS_EVERY = 4096


def _scan(
    ledger: Ledger,
    t: Tally,
    checkpoints: Sequence[Checkpoint],
    since: datetime | None,
    until: datetime | None,
    sink: Callable[[ScanRow], None] | None,
    progress: Callable[[int, int | None], None] | None = None,
    parallel_from: int = PARALLEL_FROM,
    lines: LineSink | None = None,
) -> tuple[ChainReport, tuple[int, str], int]:
    """One pass: verify and count (and hand every row to ``sink``); ``progress(done, total)``
    hears every few thousand rows (``total``: the ledger's head). The verdict, the head and
    how many rows failed the check. Unless there is a ``sink``, a large ledger is split over two
    processes (:mod:`affidavit.audit.parallel`), which hand ``lines`` every row in seq order."""
    if sink is None:
        split = parallel_scan(ledger, t, checkpoints, since, until, progress, parallel_from, lines)
        if split is not None:
            return split
    if lines is not None:
        sink = lines.add
    scan = ChainScan(ledger, checkpoints, since, until, ScanFacts(t))
    add = t.add
    with cycle_collection_paused():
        if progress is None and sink is None:
            for row in scan:
                add(row)
        else:
            done = 0
            for row in scan:
                add(row)
                if sink is not None:
                    sink(row)
                done += 1
                if progress is not None and done % _PROGRESS_EVERY == 0:
                    progress(done, scan.head[0])
            if progress is not None:
                progress(done, scan.head[0])
    assert scan.report is not None
    return scan.report, scan.head, scan.faults


def report_from_ledger(
    ledger: Ledger,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    region: str | None = None,
    exceptions: Mapping[str, ExceptionDetail] | None = None,
    ai_touched: Mapping[str, bool] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    sink: Callable[[ScanRow], None] | None = None,
    generated_at: datetime | None = None,
    ledger_url: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    parallel_from: int = PARALLEL_FROM,
    lines: LineSink | None = None,
) -> dict[str, Any]:
    """Verify the whole chain (against the signed ``checkpoints``) and report on the period's
    decisions (``since`` inclusive, ``until`` exclusive; ``region`` may be a glob like ``eu-*``)
    in one pass; ``sink`` sees every row (the evidence pack writes them), ``progress`` how many
    have been read; ``parallel_from``: from how many decisions the pass is split over two
    processes (without a sink); ``lines``: the evidence pack's writer, which sees every row in
    seq order (the worker of a split pass writes its rows' lines)."""
    t = Tally(region=region, ai_touched=ai_touched or {})
    chain, head, faults = _scan(
        ledger, t, checkpoints, since, until, sink, progress, parallel_from, lines
    )
    regions = sorted({k.region for k in t.kinds})
    if region is not None and regions and not any(k.in_region for k in t.kinds):
        # A --region no decision of the period was made in is a typo until shown otherwise.
        raise UsageError(
            f"--region {region!r}: no decision of this period was made in that region",
            hint="regions in this period: " + ", ".join(r or "(none)" for r in regions),
        )
    doc = _document(t, chain, head, since, until, region, exceptions or {})
    doc["retention"] = retention_statement(ledger, chain, generated_at)
    doc["metadata"] = {
        "generatedAt": _rfc3339(generated_at),
        "generator": f"affidavit {__version__}",
        "ledger": ledger_url,
        "headSeq": head[0],
        "headHash": head[1],
        "checkpointSize": chain.checkpoint_size,
        "rowsFailingTheCheck": faults,
    }
    return doc

"""The coverage report: an auditor's "show me your governance over AI-generated code" in seconds.

It reads the decision ledger for a period (optionally one region), counts what was admitted and
refused and on which evidence, which AI-touched workloads got through, which break-glass
exceptions were used and which rules (and the controls they serve) were violated most. The hash
chain is verified first: when it is broken the report says so at the top and refuses to present
the figures as a clean bill. One JSON document is computed; Markdown and HTML are renderings of
it, deterministic for the same ledger and period (no wall-clock time), every user-supplied text
escaped.
"""

from __future__ import annotations

import html
import json
import re
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
    only to tiers AI-touched changes reached); verified provenance (``ai_touched``) settles the rest.
    """
    known = [ai_touched.get(i.digest) for i in d.images if i.digest]
    if any(known) or any(v.rule.startswith("review.") for v in d.violations):
        return "ai"
    if d.images and len(known) == len(d.images) and all(k is False for k in known):
        return "human"
    return "undetermined"


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
            _exception_row(k, uses, exceptions.get(k)) for k, uses in sorted(exc_uses.items())
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
) -> dict[str, Any]:
    """Verify the whole chain, then report on the period's decisions (``since`` inclusive)."""
    chain = ledger.verify_chain()
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


# -- renderings ------------------------------------------------------------------------------


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_COUNTS = (*OUTCOMES, "total")
_EXC_COLS = ("exception", "uses", "workloads", "firstUse", "lastUse", "owner", "approvers")
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Decisions by outcome", "totals", ("decisions", "admitted", *OUTCOMES)),
    ("Per region", "byRegion", ("region", *_COUNTS)),
    ("Per cluster", "byCluster", ("region", "cluster", *_COUNTS)),
    ("Per namespace", "byNamespace", ("cluster", "namespace", *_COUNTS)),
    (
        "Evidence behind admitted workloads",
        "evidence",
        ("admitted", "withProvenance", "withReview", "withProvenanceAndReview", "share"),
    ),
    ("AI-touched workloads", "aiTouched", ("involvement", "admitted", "denied")),
    ("Exceptions used", "exceptions", (*_EXC_COLS, "reason", "incidentId", "expiresAt")),
    (
        "Top violated rules",
        "topViolatedRules",
        ("rule", "controls", "policies", "violations", "decisions"),
    ),
)


_LABELS = {
    "withProvenance": "verified provenance",
    "withReview": "verified review",
    "withProvenanceAndReview": "both",
    "share": "share with both",
    "firstUse": "first use",
    "lastUse": "last use",
    "owner": "owner (who)",
    "reason": "reason (why)",
    "incidentId": "incident",
    "expiresAt": "expires",
    "controls": "controls served",
}


def _cell(value: Any, column: str) -> str:
    if column == "share":
        return "n/a" if value is None else f"{value:.1%}"
    if value is None:
        return "not recorded (pass --exceptions)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def _tables(r: Mapping[str, Any]) -> list[tuple[str, tuple[str, ...], list[list[str]]]]:
    """Every section of the report as (title, header, rows of plain text)."""
    out = []
    for title, key, cols in _SECTIONS:
        data = r[key]
        if key == "aiTouched":
            title = f"{title} (source: {data['source']})"
            data = [{"involvement": c, **data[c]} for c in ("ai", "human", "undetermined")]
        rows = data if isinstance(data, list) else [data]
        header = tuple(_LABELS.get(c, c) for c in cols)
        out.append((title, header, [[_cell(row.get(c), c) for c in cols] for row in rows]))
    return out


def _period(r: Mapping[str, Any]) -> str:
    p = r["period"]
    text = f"{p['since'] or 'the first decision'} (inclusive) to {p['until'] or 'now'} (exclusive)"
    return text + (f", region {p['region']}" if p["region"] else ", all regions")


def _integrity_line(r: Mapping[str, Any]) -> str:
    i = r["integrity"]
    return f"Ledger head: seq {i['headSeq']}, hash {i['headHash'] or '-'}; {i['checked']} rows verified."


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: str) -> str:
    escaped = html.escape(" ".join(str(text).split()), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def render_markdown(r: Mapping[str, Any]) -> str:
    broken = r["verdict"] != "intact"
    lines = ["# Affidavit coverage report", ""]
    lines += [f"> **{'WARNING: ' if broken else ''}{_md(r['headline'])}**", ""]
    lines += [f"Period: {_md(_period(r))}", "", _md(_integrity_line(r)), ""]
    for title, header, rows in _tables(r):
        lines += [f"## {_md(title)}", ""]
        if not rows:
            lines += ["None in this period.", ""]
            continue
        lines.append("| " + " | ".join(_md(h) for h in header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        lines.append("")
    return "\n".join(lines)


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin-bottom:1.5em}"
    "th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#eee}.verdict{padding:1em;font-weight:bold;border:2px solid}"
    ".intact{background:#e8f5e9;border-color:#2e7d32}"
    ".broken{background:#ffebee;border-color:#c62828;color:#b71c1c;font-size:1.3em}"
)


def render_html(r: Mapping[str, Any]) -> str:
    """One self-contained page: inline CSS, no scripts, no external assets, all text escaped."""

    def e(text: Any) -> str:
        return html.escape(str(text), quote=True)

    cls = "intact" if r["verdict"] == "intact" else "broken"
    role = "" if cls == "intact" else ' role="alert"'
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">",
        f"<title>Affidavit coverage report: {e(_period(r))}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Affidavit coverage report</h1>",
        f'<p class="verdict {cls}"{role}>{e(r["headline"])}</p>',
        f"<p>Period: {e(_period(r))}</p>",
        f"<p>{e(_integrity_line(r))}</p>",
    ]
    for title, header, rows in _tables(r):
        out.append(f"<h2>{e(title)}</h2>")
        if not rows:
            out.append("<p>None in this period.</p>")
            continue
        out.append(
            "<table><thead><tr>"
            + "".join(f"<th>{e(h)}</th>" for h in header)
            + "</tr></thead><tbody>"
        )
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


RENDERERS = {"json": render_json, "markdown": render_markdown, "html": render_html}

"""The coverage report's JSON, Markdown and HTML renderings.

:mod:`affidavit.audit.report` computes one JSON-able document; auditors read it as a Markdown
file in a ticket or an HTML page in a browser. Rendering is kept apart from the counting so the
three formats stay renderings of the same figures: deterministic (no wall-clock time, sorted
keys) and with every user-supplied text (namespaces, rule names, exception reasons) escaped for
the format it lands in.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from affidavit.audit.charts import all_charts
from affidavit.audit.report import OUTCOMES
from affidavit.printable import printable

__all__ = ["RENDERERS", "render_html", "render_json", "render_markdown"]


def render_json(report: Mapping[str, Any]) -> str:
    """The report as JSON, with every character Python does not call printable written as its
    ``\\uXXXX`` escape: the same JSON, but a namespace or reason holding a C1 control or a bidi
    override cannot rearrange what an auditor reads on a terminal (``json`` escapes only C0)."""
    text = json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if all(line.isprintable() for line in text.split("\n")):
        return text
    # JSON's own structure is ASCII, so each such character stands inside a string
    return "".join(c if c.isprintable() or c == "\n" else _json_escape(c) for c in text)


def _json_escape(c: str) -> str:
    point = ord(c)
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000  # past the BMP: a UTF-16 surrogate pair, as JSON writes it
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


_COUNTS = (*OUTCOMES, "total")
_EXC_COLS = (
    "exception",
    "uses",
    "workloads",
    "firstUse",
    "lastUse",
    "owner",
    "approvers",
    "requestedBy",
)
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Decisions by outcome", "totals", ("decisions", "admitted", *OUTCOMES)),
    (
        "Workloads and admission requests",
        "workloads",
        (
            "workloads",
            "workloadsAdmittedClean",
            "requests",
            "requestsAdmittedClean",
            "requestsAdmittedWithFindings",
            "requestsDenied",
            "requestsWithoutAuthenticatedCaller",
        ),
    ),
    (
        "By control",
        "controls",
        (
            "control",
            "presets",
            "violations",
            "denied",
            "admittedWithWarning",
            "excepted",
            "exceptions",
            "checkedBy",
        ),
    ),
    ("Per region", "byRegion", ("region", *_COUNTS)),
    ("Per cluster", "byCluster", ("region", "cluster", *_COUNTS)),
    ("Per namespace", "byNamespace", ("cluster", "namespace", *_COUNTS)),
    (
        "Evidence behind admitted workloads",
        "evidence",
        ("admitted", "withProvenance", "withReview", "withProvenanceAndReview", "share"),
    ),
    ("AI-touched workloads", "aiTouched", ("involvement", "admitted", "denied")),
    (
        "Exceptions used",
        "exceptions",
        (*_EXC_COLS, "reason", "incidentId", "expiresAt", "controls"),
    ),
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
    "requestedBy": "requested by (as authenticated)",
    "reason": "reason (why)",
    "incidentId": "incident",
    "expiresAt": "expires",
    "controls": "controls served",
    "workloadsAdmittedClean": "workloads admitted clean",
    "requests": "admission requests",
    "requestsAdmittedClean": "admitted clean",
    "requestsAdmittedWithFindings": "admitted with warnings or exceptions",
    "requestsDenied": "denied",
    "requestsWithoutAuthenticatedCaller": "caller not authenticated",
    "admittedWithWarning": "admitted with warning",
    "presets": "cited by presets",
    "damaged": "from the damaged range",
    "checkedBy": "checked by",
}


def _cell(value: Any, column: str) -> str:
    if column == "share":
        return "n/a" if value is None else f"{value:.1%}"
    if value is None and column == "requestedBy":
        return "not stamped"
    if value is None:
        return "not recorded (pass --exceptions)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


Table = tuple[str, tuple[str, ...], list[list[str]], list[bool]]


def _tables(r: Mapping[str, Any]) -> list[Table]:
    """Every section as (title, header, rows of plain text, whether each row is damaged).

    On a broken chain every table that counts decisions gains a "from the damaged range"
    column, and its rows with such decisions are marked.
    """
    broken = not r["integrity"]["ok"]
    out = []
    for title, key, cols in _SECTIONS:
        data = r.get(key)
        if data is None:
            continue
        if key == "aiTouched":
            title = f"{title} (source: {data['source']})"
            data = [{"involvement": c, **data[c]} for c in ("ai", "human", "undetermined")]
        rows = data if isinstance(data, list) else [data]
        if broken and any("damaged" in row for row in rows):
            cols = (*cols, "damaged")
        header = tuple(_LABELS.get(c, c) for c in cols)
        out.append(
            (
                title,
                header,
                [[_cell(row.get(c), c) for c in cols] for row in rows],
                [broken and bool(row.get("damaged")) for row in rows],
            )
        )
    return out


def _period(r: Mapping[str, Any]) -> str:
    p = r["period"]
    text = f"{p['since'] or 'the first decision'} (inclusive) to {p['until'] or 'now'} (exclusive)"
    return text + (f", region {p['region']}" if p["region"] else ", all regions")


def _integrity_line(r: Mapping[str, Any]) -> str:
    i = r["integrity"]
    signed = i.get("checkpointSize")
    checkpoint = (
        f" Checked against the signed checkpoint at size {signed}."
        if signed is not None
        else " No signed checkpoint was given (--ledger-public-key, --checkpoints)."
    )
    return (
        f"Ledger head: seq {i['headSeq']}, hash {i['headHash'] or '-'}; {i['checked']} rows "
        f"verified.{checkpoint}"
    )


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _md(text: str) -> str:
    # printed to the terminal without --output: tool, model and file names come from predicates
    escaped = html.escape(printable(" ".join(str(text).split())), quote=False)
    return _MD_SPECIAL.sub(r"\\\1", escaped)


def render_markdown(r: Mapping[str, Any]) -> str:
    broken = r["verdict"] != "intact"
    lines = ["# Affidavit coverage report", ""]
    lines += [f"> **{'WARNING: ' if broken else ''}{_md(r['headline'])}**", ""]
    lines += [f"Period: {_md(_period(r))}", "", _md(_integrity_line(r)), ""]
    if "retention" in r:
        lines += [_md(r["retention"]["statement"]), ""]
    for title, header, rows, _ in _tables(r):
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
    "*{box-sizing:border-box}body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1b1b1b;"
    "background:#f4f5f7}main{max-width:1040px;margin:0 auto;padding:2em 2.5em;background:#fff}"
    "header{border-bottom:3px solid #1b2a41;margin-bottom:1.2em}"
    "h1{font-size:1.6em;margin:.2em 0;color:#1b2a41}h2{font-size:1.15em;color:#1b2a41;"
    "border-bottom:1px solid #d0d4da;padding-bottom:.2em;margin-top:1.8em}"
    ".sub{color:#555;margin:.2em 0 .8em}"
    "table{border-collapse:collapse;margin-bottom:1.2em;font-size:.88em;width:100%}"
    "th,td{border:1px solid #c8ccd2;padding:.3em .5em;text-align:left;vertical-align:top}"
    "td{overflow-wrap:anywhere}"
    "th{background:#eef0f3;font-weight:600}tr.damaged td{background:#ffebee}"
    ".verdict{padding:1em;font-weight:600;border-left:6px solid;margin:1em 0}"
    ".intact{background:#e8f5e9;border-color:#2e7d32}"
    ".broken{background:#ffebee;border-color:#c62828;color:#b71c1c;font-size:1.15em}"
    ".cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}"
    ".card{flex:1 1 150px;border:1px solid #d0d4da;border-radius:4px;padding:.6em .8em}"
    ".card b{display:block;font-size:1.5em;color:#1b2a41}.card span{color:#555;font-size:.85em}"
    ".charts{display:grid;grid-template-columns:1fr;gap:1.2em}"
    "figure{margin:0}figcaption{font-weight:600;margin-bottom:.3em}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.9em}"
    "dt{color:#555}dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}"
    "@media print{body{background:#fff}main{padding:0}}"
)


def _cards(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    w, t, ev = r["workloads"], r["totals"], r["evidence"]
    share = "n/a" if ev["share"] is None else f"{ev['share']:.1%}"
    return [
        (f"{w['workloads']:,}", "workloads"),
        (f"{t['decisions']:,}", "admission requests"),
        (f"{t['allowed']:,}", "admitted clean"),
        (f"{w['requestsAdmittedWithFindings']:,}", "admitted with warnings or exceptions"),
        (f"{t['denied']:,}", "denied"),
        (share, "admitted with provenance and review"),
    ]


def _metadata(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    m = r.get("metadata") or {}
    samples = r.get("samples") or {}
    return [
        ("generated at", m.get("generatedAt") or "-"),
        ("generated by", m.get("generator") or "-"),
        ("ledger", m.get("ledger") or "-"),
        ("ledger head", f"seq {r['integrity']['headSeq']}, {r['integrity']['headHash'] or '-'}"),
        (
            "signed checkpoint",
            "-"
            if r["integrity"]["checkpointSize"] is None
            else f"size {r['integrity']['checkpointSize']}",
        ),
        ("denied (sample)", ", ".join(samples.get("denied") or ()) or "none"),
        ("excepted (sample)", ", ".join(samples.get("excepted") or ()) or "none"),
    ]


def render_html(r: Mapping[str, Any]) -> str:
    """One self-contained page: inline CSS and SVG, no scripts, no external assets, all text
    escaped."""

    def e(text: Any) -> str:
        return html.escape(str(text), quote=True)

    cls = "intact" if r["verdict"] == "intact" else "broken"
    role = "" if cls == "intact" else ' role="alert"'
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>Affidavit coverage report: {e(_period(r))}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<header><h1>Governance over AI-assisted code: coverage report</h1>",
        f'<p class="sub">{e(_period(r))}</p></header>',
        f'<p class="verdict {cls}"{role}>{e(r["headline"])}</p>',
        f"<p>{e(_integrity_line(r))}</p>",
        *([f"<p>{e(r['retention']['statement'])}</p>"] if "retention" in r else []),
        '<div class="cards">',
        *(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>' for v, k in _cards(r)),
        "</div>",
        "<h2>Charts</h2>",
        '<div class="charts">',
        *(
            f"<figure><figcaption>{e(caption)}</figcaption>{svg}</figure>"
            for caption, svg in all_charts(r)
        ),
        "</div>",
    ]
    for title, header, rows, damaged in _tables(r):
        out.append(f"<h2>{e(title)}</h2>")
        if not rows:
            out.append("<p>None in this period.</p>")
            continue
        out.append(
            "<table><thead><tr>"
            + "".join(f"<th>{e(h)}</th>" for h in header)
            + "</tr></thead><tbody>"
        )
        out += [
            ('<tr class="damaged">' if bad else "<tr>")
            + "".join(f"<td>{e(c)}</td>" for c in row)
            + "</tr>"
            for row, bad in zip(rows, damaged, strict=True)
        ]
        out.append("</tbody></table>")
    out.append("<h2>About this report</h2><dl>")
    out += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in _metadata(r)]
    out.append("</dl></main></body></html>")
    return "\n".join(out) + "\n"


RENDERERS = {"json": render_json, "markdown": render_markdown, "html": render_html}

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

from affidavit.audit.report import OUTCOMES

__all__ = ["RENDERERS", "render_html", "render_json", "render_markdown"]


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

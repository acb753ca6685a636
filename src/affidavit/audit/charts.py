"""Inline SVG charts for the HTML report: pictures an auditor can print, with no JavaScript.

The report page forbids scripts and external assets (its Content-Security-Policy), so each chart
is plain SVG markup computed here from the report document: stacked bars of decisions over time
by outcome, outcome by region and cluster, evidence coverage of admitted workloads, and the
AI-touched share with how those workloads were reviewed. Each chart carries a ``<title>`` and
``aria-label`` (screen readers, and the headless-browser test that checks the charts render),
and every label is escaped. Figures from a broken chain's damaged range are hatched.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

OUTCOME_COLOURS = {
    "allowed": "#2e7d32",
    "warned": "#f9a825",
    "audited": "#1565c0",
    "excepted": "#6a1b9a",
    "denied": "#c62828",
}
_OUTCOMES = tuple(OUTCOME_COLOURS)
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'
_HATCH = (
    '<defs><pattern id="damaged" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
    '<line x1="0" y1="0" x2="0" y2="6" stroke="#b71c1c" stroke-width="3"/></pattern></defs>'
)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _open(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_e(title)}" class="chart">'
        f"<title>{_e(title)}</title>{_HATCH}"
    )


def _legend(items: Sequence[tuple[str, str]], x: int, y: int, right: int = 750) -> str:
    out = []
    start = x
    for label, colour in items:
        if x + 24 + 7 * len(label) > right:
            x, y = start, y + 14
        out.append(
            f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{y + 9}" {_FONT}>{_e(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return "".join(out)


def _weeks(days: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, int], int]]:
    """Days, or ISO weeks when the period is long (a bar per day would be a hairline)."""
    if len(days) <= 62:
        return [(d["day"], {o: d[o] for o in _OUTCOMES}, d.get("damaged", 0)) for d in days]
    from datetime import date

    out: dict[str, tuple[dict[str, int], list[int]]] = {}
    for d in days:
        y, w, _ = date.fromisoformat(d["day"]).isocalendar()
        counts, damaged = out.setdefault(f"{y}-W{w:02d}", ({o: 0 for o in _OUTCOMES}, [0]))
        for o in _OUTCOMES:
            counts[o] += d[o]
        damaged[0] += d.get("damaged", 0)
    return [(k, c, dmg[0]) for k, (c, dmg) in sorted(out.items())]


def over_time(days: Sequence[Mapping[str, Any]]) -> str:
    """Stacked bars: decisions per day (or week) by outcome."""
    title = "Decisions over time by outcome"
    buckets = _weeks(days)
    width, height, left, top, bottom = 760, 260, 48, 28, 40
    svg = [_open(title, width, height)]
    svg.append(_legend([(o, c) for o, c in OUTCOME_COLOURS.items()], left, 8))
    if not buckets:
        svg.append(f'<text x="{left}" y="120" {_FONT}>No decisions in this period.</text></svg>')
        return "".join(svg)
    peak = max(sum(c.values()) for _, c, _ in buckets) or 1
    plot_h = height - top - bottom
    step = (width - left - 10) / len(buckets)
    bar = max(1.0, step * 0.8)
    svg.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" '
        'stroke="#555"/>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" {_FONT}>{peak:,}</text>'
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" {_FONT}>0</text>'
    )
    for i, (label, counts, damaged) in enumerate(buckets):
        x = left + i * step
        y: float = top + plot_h
        for outcome in _OUTCOMES:
            h = counts[outcome] / peak * plot_h
            if h <= 0:
                continue
            y -= h
            svg.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{OUTCOME_COLOURS[outcome]}"><title>{_e(label)}: {counts[outcome]} '
                f"{outcome}</title></rect>"
            )
        if damaged:
            svg.append(
                f'<rect x="{x:.1f}" y="{top}" width="{bar:.1f}" height="6" fill="url(#damaged)">'
                f"<title>{_e(label)}: {damaged} from the damaged range</title></rect>"
            )
    last = len(buckets) - 1
    for i in sorted({0, len(buckets) // 2, last}):
        anchor = "end" if i == last and i else "start"
        x_label = left + i * step + (bar if anchor == "end" else 0)
        svg.append(
            f'<text x="{x_label:.1f}" y="{height - bottom + 16}" text-anchor="{anchor}" '
            f"{_FONT}>{_e(buckets[i][0])}</text>"
        )
    svg.append("</svg>")
    return "".join(svg)


def _hbars(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, int, str]], int]],
    total: int,
    shares: bool = False,
) -> str:
    """Horizontal stacked bars: (label, [(part, value, colour)], damaged) per row; with
    ``shares`` every row spans the full width (its parts as shares of its own total)."""
    width, left, row_h = 760, 220, 22
    parts = {p: c for _, segs, _ in rows for p, _, c in segs}
    legend_rows = 1 + sum(24 + 7 * len(p) for p in parts) // (width - left)
    top = 16 + 14 * legend_rows
    height = top + row_h * max(1, len(rows)) + 8
    svg = [_open(title, width, height)]
    svg.append(_legend(list(parts.items()), left, 8))
    if not rows:
        svg.append(f'<text x="{left}" y="44" {_FONT}>No decisions in this period.</text></svg>')
        return "".join(svg)
    for i, (label, segs, damaged) in enumerate(rows):
        y = top + i * row_h
        n = sum(v for _, v, _ in segs)
        scale = (width - left - 110) / ((n if shares else total) or 1)
        svg.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" {_FONT}>{_e(label)}</text>'
        )
        x = float(left)
        for part, value, colour in segs:
            w = value * scale
            if w > 0:
                svg.append(
                    f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                    f'fill="{colour}"><title>{_e(label)}: {value} {_e(part)}</title></rect>'
                )
            x += w
        mark = f" ({damaged:,} damaged)" if damaged else ""
        figure = f"{segs[0][1] / n:.1%} of {n:,}" if shares and n else f"{n:,}"
        svg.append(f'<text x="{x + 4:.1f}" y="{y + 14}" {_FONT}>{figure}{_e(mark)}</text>')
        if damaged:
            svg.append(
                f'<rect x="{left}" y="{y + row_h - 4}" width="{damaged * scale:.1f}" height="3" '
                'fill="url(#damaged)"/>'
            )
    svg.append("</svg>")
    return "".join(svg)


def by_place(r: Mapping[str, Any]) -> str:
    rows = [
        (
            f"{c['region']} / {c['cluster']}",
            [(o, c[o], OUTCOME_COLOURS[o]) for o in _OUTCOMES],
            c.get("damaged", 0),
        )
        for c in r["byCluster"]
    ]
    peak = max((c["total"] for c in r["byCluster"]), default=0)
    return _hbars("Outcome by region and cluster", rows, peak)


def coverage(r: Mapping[str, Any]) -> str:
    ev = r["evidence"]
    n = ev["admitted"]
    rows = [
        (label, [("with the evidence", ev[key], "#2e7d32"), ("without", n - ev[key], "#e0e0e0")], 0)
        for label, key in (
            ("verified provenance", "withProvenance"),
            ("verified review", "withReview"),
            ("provenance and review", "withProvenanceAndReview"),
        )
    ]
    return _hbars("Evidence coverage of admitted requests", rows, n, shares=True)


def ai_share(r: Mapping[str, Any]) -> str:
    ai = r["aiTouched"]
    review = ai["reviewOfAdmitted"]
    admitted = sum(ai[c]["admitted"] for c in ("ai", "human", "undetermined"))
    rows = [
        (
            "admitted requests",
            [
                ("AI-touched", ai["ai"]["admitted"], "#6a1b9a"),
                ("human only", ai["human"]["admitted"], "#00838f"),
                ("undetermined", ai["undetermined"]["admitted"], "#9e9e9e"),
            ],
            0,
        ),
        (
            "AI-touched: review",
            [
                ("independent approval", review["independent"], "#2e7d32"),
                ("approved, not independent", review["approved"], "#f9a825"),
                ("no review evidence", review["none"], "#c62828"),
            ],
            0,
        ),
    ]
    return _hbars("AI-touched share and how it was reviewed", rows, admitted, shares=True)


def all_charts(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(caption, svg) of every chart, in reading order."""
    return [
        ("Decisions over time by outcome", over_time(r["byDay"])),
        ("Outcome by region and cluster", by_place(r)),
        ("Evidence coverage of admitted requests", coverage(r)),
        ("AI-touched share and how it was reviewed", ai_share(r)),
    ]

"""The HTML report in a real browser: Debian's headless Chromium renders the page from a real
ledger, and the DOM it builds holds the four inline SVG charts (each with its title), no script,
and the verdict; a screenshot is taken so a person can look at it (kept in the test's folder).

Chromium comes from Debian (scripts/install-debs); it runs with ``--no-sandbox`` because the
tests run as root, which is fine for a local file with no scripts and a CSP that loads nothing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_decisions import SINCE, UNTIL, fill

from affidavit.audit.render import render_html
from affidavit.audit.report import report_from_ledger
from affidavit.ledger import Ledger

CHARTS = (
    "Decisions over time by outcome",
    "Outcome by region and cluster",
    "Evidence coverage of admitted requests",
    "AI-touched share and how it was reviewed",
)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed: run scripts/install-debs")
    return path


def _headless(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_chromium_renders_the_charts(ledger: Ledger, tmp_path: Path) -> None:
    fill(ledger)
    page = tmp_path / "report.html"
    page.write_text(render_html(report_from_ledger(ledger, since=SINCE, until=UNTIL)))
    dom = _headless("--dump-dom", page.as_uri()).stdout
    assert dom.count("<svg") == len(CHARTS)
    titles = re.findall(r'<svg[^>]*aria-label="([^"]+)"[^>]*>\s*<title>([^<]+)</title>', dom)
    assert [t for t, _ in titles] == list(CHARTS)
    assert [t for _, t in titles] == list(CHARTS)
    # the stacked bars are there: one rect per outcome with decisions that day
    assert dom.count("<title>2026-03-01: 1 allowed</title>") == 1
    assert "<script" not in dom
    assert 'class="verdict intact"' in dom
    shot = tmp_path / "report.png"
    _headless(f"--screenshot={shot}", "--window-size=1100,2600", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one

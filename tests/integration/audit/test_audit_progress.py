"""``audit report`` and ``audit pack`` show how far the one pass over the ledger has got to a
person at a terminal (a million decisions take minutes), and nothing in a pipeline's log.

A real SQLite ledger filled with the audit tests' period; the CLI runs as its own process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from audit_decisions import PERIOD, fill

from affidavit.ledger import Ledger
from terminal import run_on_a_terminal

PERIOD_ARGS = ["--since", "2026-03-01", "--until", "2026-04-01"]


def _ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    fill(Ledger(url))
    return url


def _audit(*args: str) -> list[str]:
    return [sys.executable, "-m", "affidavit.cli", "audit", *args]


def test_report_and_pack_show_progress_at_a_terminal(tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    n = len(PERIOD)
    report = tmp_path / "report.json"
    code, terminal = run_on_a_terminal(
        _audit("report", "--ledger", url, *PERIOD_ARGS, "--format", "json", "-o", str(report))
    )
    assert code == 0, terminal
    assert "verifying the ledger" in terminal
    assert f"{n}/{n}" in terminal
    assert report.stat().st_size > 0
    pack = tmp_path / "pack.zip"
    code, terminal = run_on_a_terminal(
        _audit("pack", "--ledger", url, *PERIOD_ARGS, "-o", str(pack))
    )
    assert code == 0, terminal
    assert "packing the ledger" in terminal
    assert f"{n}/{n}" in terminal
    assert pack.stat().st_size > 0


def test_report_draws_nothing_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    report = tmp_path / "report.json"
    done = subprocess.run(
        _audit("report", "--ledger", url, *PERIOD_ARGS, "--format", "json", "-o", str(report)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"wrote json report to {report}\n"

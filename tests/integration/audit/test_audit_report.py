"""The coverage report over a real ledger (SQLite and PostgreSQL): exact figures for a period and
a region, exceptions with their details, top violated rules with the controls they serve, the
AI-touched split, the broken-chain refusal, and escaping of user text in Markdown and HTML."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_decisions import (
    AI_TOUCHED,
    EXCEPTION_OBJECT,
    SCRIPT_NAME,
    SINCE,
    UNTIL,
    fill,
    tamper,
)
from sqlalchemy import create_engine, text

from affidavit.audit.render import render_html, render_json, render_markdown
from affidavit.audit.report import exception_details, report_from_ledger
from affidavit.cli.main import main
from affidavit.ledger import Ledger

COUNTS = ("allowed", "warned", "audited", "excepted", "denied")


def _counts(**kw: int) -> dict[str, int]:
    return {o: kw.get(o, 0) for o in COUNTS}


def test_figures_for_the_period_are_exact(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(
        ledger,
        since=SINCE,
        until=UNTIL,
        exceptions=exception_details([EXCEPTION_OBJECT]),
        ai_touched=AI_TOUCHED,
    )
    assert r["verdict"] == "intact"
    assert r["integrity"] == {
        "ok": True,
        "checked": 8,
        "headSeq": 8,
        "headHash": ledger.head()[1],
        "firstBrokenSeq": None,
        "reason": None,
        "checkpointSize": None,
        "unreadableSeqs": [],
    }
    assert r["period"] == {
        "since": "2026-03-01T00:00:00Z",
        "until": "2026-04-01T00:00:00Z",
        "region": None,
    }
    assert r["totals"] == {
        "decisions": 6,
        "admitted": 5,
        **_counts(allowed=2, warned=1, audited=1, excepted=1, denied=1),
        "damaged": 0,
    }
    assert r["byRegion"] == [
        {"region": "eu-west-1", **_counts(allowed=2, denied=1), "total": 3, "damaged": 0},
        {
            "region": "us-east-1",
            **_counts(warned=1, audited=1, excepted=1),
            "total": 3,
            "damaged": 0,
        },
    ]
    assert r["byCluster"] == [
        {
            "region": "eu-west-1",
            "cluster": "prod-eu",
            **_counts(allowed=2, denied=1),
            "total": 3,
            "damaged": 0,
        },
        {
            "region": "us-east-1",
            "cluster": "prod-us",
            **_counts(warned=1, audited=1, excepted=1),
            "total": 3,
            "damaged": 0,
        },
    ]
    assert r["byNamespace"] == [
        {"cluster": "prod-eu", "namespace": "pay", **_counts(denied=1), "total": 1, "damaged": 0},
        {"cluster": "prod-eu", "namespace": "shop", **_counts(allowed=2), "total": 2, "damaged": 0},
        {"cluster": "prod-us", "namespace": "pay", **_counts(excepted=1), "total": 1, "damaged": 0},
        {
            "cluster": "prod-us",
            "namespace": "shop",
            **_counts(warned=1, audited=1),
            "total": 2,
            "damaged": 0,
        },
    ]
    assert r["evidence"] == {
        "admitted": 5,
        "withProvenance": 4,
        "withReview": 3,
        "withProvenanceAndReview": 3,
        "share": 0.6,
        "damaged": 0,
    }
    assert r["aiTouched"] == {
        "source": "ledger and verified attestations",
        "ai": {"admitted": 2, "denied": 1},
        "human": {"admitted": 1, "denied": 0},
        "undetermined": {"admitted": 2, "denied": 0},
        "reviewOfAdmitted": {"independent": 0, "approved": 2, "none": 0},
    }
    assert r["exceptions"] == [
        {
            "exception": "pay/inc-42",
            "uses": 1,
            "workloads": [f"prod-us/pay/Deployment/{SCRIPT_NAME}"],
            "firstUse": "2026-03-04T10:00:00Z",
            "lastUse": "2026-03-04T10:00:00Z",
            "owner": "bob@example.com",
            "approvers": ["carol@example.com"],
            "requestedBy": "oidc:bob@example.com",
            "reason": "payment outage hotfix",
            "incidentId": "INC-42",
            "expiresAt": "2026-03-10T00:00:00Z",
            "controls": ["PCI DSS 6.2.3.1"],
            "damaged": False,
        }
    ]
    assert r["topViolatedRules"] == [
        {
            "rule": "review.critical.independentApprovals",
            "controls": ["PCI DSS 6.2.3.1"],
            "policies": ["preset/pci-dss"],
            "violations": 2,
            "decisions": 2,
            "damaged": 0,
        },
        {
            "rule": "labels.owner",
            "controls": [],
            "policies": ["AccountabilityPolicy/baseline"],
            "violations": 1,
            "decisions": 1,
            "damaged": 0,
        },
        {
            "rule": "provenance.fresh",
            "controls": ["SOC 2 CC8.1"],
            "policies": ["preset/soc2"],
            "violations": 1,
            "decisions": 1,
            "damaged": 0,
        },
    ]
    assert r["headline"] == (
        "The ledger's hash chain is intact (8 decisions verified up to seq 8). In this period 6 "
        "admission requests about 6 workloads were decided: 2 admitted clean, 3 admitted with "
        "warnings or exceptions, 1 denied; 3 of 5 admitted (60.0%) had verified provenance and "
        "review evidence."
    )


def test_region_filter_and_ledger_only_ai_split(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL, region="us-east-1")
    assert r["period"]["region"] == "us-east-1"
    assert r["totals"] == {
        "decisions": 3,
        "admitted": 3,
        **_counts(warned=1, audited=1, excepted=1),
        "damaged": 0,
    }
    assert [row["region"] for row in r["byRegion"]] == ["us-east-1"]
    # without attestations only a per-tier review rule proves AI involvement
    assert r["aiTouched"] == {
        "source": "ledger",
        "ai": {"admitted": 1, "denied": 0},
        "human": {"admitted": 0, "denied": 0},
        "undetermined": {"admitted": 2, "denied": 0},
        "reviewOfAdmitted": {"independent": 0, "approved": 1, "none": 0},
    }
    # exception details were not given: the report says so rather than inventing them
    assert r["exceptions"][0]["owner"] is None
    assert "not recorded (pass --exceptions)" in render_markdown(r)


def test_broken_chain_is_named_and_refuses_a_clean_bill(ledger: Ledger, ledger_url: str) -> None:
    fill(ledger)
    tamper(ledger_url, 4)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert r["verdict"] == "chain-broken"
    assert r["integrity"]["ok"] is False
    assert r["integrity"]["firstBrokenSeq"] == 4
    did = ledger.after(3, 1)[0].id
    headline = (
        f"NOT A CLEAN BILL: the ledger's hash chain is broken at seq 4: row seq 4 (decision {did}): "
        "the stored decision JSON does not match its hash (the row was edited). Decisions from that seq on may have been "
        "edited, removed or inserted; the figures below cannot be relied on until the ledger is "
        "restored from a backup and verifies (4 of this period's decisions are in the damaged "
        "range, marked in every table)."
    )
    assert r["headline"] == headline
    md = render_markdown(r)
    assert md.splitlines()[2].startswith("> **WARNING: NOT A CLEAN BILL: the ledger's hash chain")
    assert "intact" not in md
    page = render_html(r)
    assert '<p class="verdict broken" role="alert">NOT A CLEAN BILL' in page
    assert "verdict intact" not in page
    assert json.loads(render_json(r))["verdict"] == "chain-broken"


def test_user_text_is_escaped_in_html_and_markdown(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    page = render_html(r)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # self-contained: no external assets, no scripts, a CSP that forbids loading anything
    assert not re.search(r"(src|href)\s*=", page)
    assert "default-src 'none'" in page
    md = render_markdown(r)
    assert "<script" not in md
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in md
    assert SCRIPT_NAME in render_json(r)


def test_empty_period(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(ledger, since=UNTIL.replace(year=2027), until=UNTIL.replace(year=2028))
    assert r["totals"]["decisions"] == 0
    assert r["evidence"]["share"] is None
    assert r["verdict"] == "intact"
    assert "None in this period." in render_markdown(r)
    assert "None in this period." in render_html(r)


def test_a_time_column_rewritten_in_another_text_counts_by_the_hashed_time(
    tmp_path: Path,
) -> None:
    """SQLite compares the period as text: '2026-03-03T10:00…' sorts after '2026-03-03 12:00…'.
    A time column rewritten with the same instant in another text (still the hashed time, so
    the chain holds) must not move a decision into or out of the period."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger(url)
    fill(ledger)
    engine = create_engine(url)
    with engine.begin() as conn:  # seq 4: 03-03 10:00 (before), seq 5: 03-04 10:00 (inside)
        conn.execute(
            text("UPDATE decisions SET time = replace(time, ' ', 'T') WHERE seq IN (4, 5)")
        )
    engine.dispose()
    since, until = datetime(2026, 3, 3, 12, tzinfo=UTC), datetime(2026, 3, 4, 12, tzinfo=UTC)
    r = report_from_ledger(ledger, since=since, until=until)
    assert r["verdict"] == "intact"
    assert r["totals"] == {"decisions": 1, "admitted": 1, **_counts(excepted=1), "damaged": 0}
    assert r["samples"]["excepted"] == ["d-005 (seq 5)"]
    assert ledger.verify_chain().ok


def test_a_row_edited_into_deeply_nested_json_is_a_broken_chain_not_a_crash(
    ledger: Ledger, ledger_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone with write access to the database replaces a decision with JSON nested 100,000
    levels deep: json.loads raised RecursionError, and report and pack ended in a stack trace
    instead of naming the edited row."""
    fill(ledger)
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE decisions SET decision = :d WHERE seq = 4"),
            {"d": "[" * 100_000 + "]" * 100_000},
        )
    engine.dispose()
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert (r["verdict"], r["integrity"]["firstBrokenSeq"]) == ("chain-broken", 4)
    assert r["headline"].startswith(
        "NOT A CLEAN BILL: the ledger's hash chain is broken at seq 4: row seq 4"
    )
    args = ["--ledger", ledger_url, "--since", "2026-03-01", "--until", "2026-04-01"]
    assert main(["audit", "report", *args]) == 6
    assert "> **WARNING: NOT A CLEAN BILL" in capsys.readouterr().out
    assert main(["audit", "pack", *args, "-o", str(tmp_path / "p.zip")]) == 6
    assert "verdict: chain-broken" in capsys.readouterr().out

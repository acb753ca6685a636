"""The report's views over a real ledger (SQLite and PostgreSQL): workloads counted as workloads
(a Deployment, its ReplicaSet and its Pods are one), the view by control, a region glob, every
figure from a broken chain's damaged range marked, and a row whose JSON the database cannot
parse (the fast scan falls back to the row-by-row one and names the row)."""

from __future__ import annotations

import dataclasses
import html
from datetime import UTC, datetime

from audit_decisions import CRITICAL, SINCE, UNTIL, decision, fill, tamper
from sqlalchemy import create_engine, text

from affidavit.audit.render import render_html, render_markdown
from affidavit.audit.report import report_from_ledger
from affidavit.audit.tally import workload_of
from affidavit.ledger import Ledger
from affidavit.ledger.checkpoint import Checkpoint


def test_a_deployment_its_replicaset_and_pods_are_one_workload(ledger: Ledger) -> None:
    deploy = decision(1, "2026-03-01T10:00:00Z", "allowed", name="web")
    rs = dataclasses.replace(
        decision(2, "2026-03-01T10:00:01Z", "allowed"), kind="ReplicaSet", name="web-7d4b9c8f6d"
    )
    pods = [
        dataclasses.replace(
            decision(3 + i, "2026-03-01T10:00:02Z", "allowed"),
            kind="Pod",
            name=f"web-7d4b9c8f6d-{suffix}",
        )
        for i, suffix in enumerate(("x2lqz", "9kfbw"))
    ]
    db = dataclasses.replace(
        decision(5, "2026-03-01T11:00:00Z", "warned"), kind="StatefulSet", name="db"
    )
    db_pod = dataclasses.replace(
        decision(6, "2026-03-01T11:00:01Z", "warned"), kind="Pod", name="db-0"
    )
    for d in (deploy, rs, *pods, db, db_pod):
        ledger.append(d)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert r["workloads"] == {
        "workloads": 2,
        "workloadsAdmittedClean": 1,
        "requests": 6,
        "requestsAdmittedClean": 4,
        "requestsAdmittedWithFindings": 2,
        "requestsDenied": 0,
        "requestsWithoutAuthenticatedCaller": 6,
    }
    assert r["headline"].endswith(
        "In this period 6 admission requests about 2 workloads were decided: 4 admitted clean, "
        "2 admitted with warnings or exceptions, 0 denied; 0 of 6 admitted (0.0%) had verified "
        "provenance and review evidence."
    )
    # a bare Pod whose name only looks generated keeps its name
    assert workload_of("Pod", "debug") == "debug"
    assert workload_of("ReplicaSet", "web-7d4b9c8f6d") == "web"


def test_the_view_by_control(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    controls = {c["control"]: c for c in r["controls"]}
    assert controls["PCI DSS 6.2.3.1"] == {
        "control": "PCI DSS 6.2.3.1",
        "presets": ["pci-dss"],
        "rules": [
            "independentReleaseApprover",
            "tiers.*.independentApprovals",
            "tiers.*.reviewerGroups",
        ],
        "violations": 2,
        "denied": 1,
        "admittedWithWarning": 0,
        "excepted": 1,
        "exceptions": ["pay/inc-42"],
        "damaged": 0,
        "checkedBy": "admission",
    }
    assert controls["SOC 2 CC8.1"]["violations"] == 1
    assert controls["SOC 2 CC8.1"]["denied"] == 1
    # every control a preset cites is listed, with or without a finding
    assert controls["NIST SP 800-53 SA-15"]["violations"] == 0
    assert controls["NIST SP 800-53 SA-15"]["presets"] == ["us-fedramp-moderate"]
    assert "| PCI DSS 6.2.3.1 | pci-dss | 2 | 1 | 0 | 1 | pay/inc-42 | admission |" in (
        render_markdown(r)
    )
    # retention is no rule admission judges: the row says who shows it, not "0 violations"
    assert controls["PCI DSS 10.5.1"]["checkedBy"] == "ledger retention"
    assert controls["NIST SP 800-53 AU-11"]["checkedBy"] == "ledger retention"
    assert controls["GDPR Chapter V"]["checkedBy"] == "admission"


def test_a_region_glob(ledger: Ledger) -> None:
    fill(ledger)
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL, region="us-*")
    assert r["period"]["region"] == "us-*"
    assert [row["region"] for row in r["byRegion"]] == ["us-east-1"]
    assert r["totals"]["decisions"] == 3


def test_figures_from_the_damaged_range_are_marked(ledger: Ledger, ledger_url: str) -> None:
    fill(ledger)
    tamper(ledger_url, 4)  # a denial in eu-west-1 rewritten as allowed: seqs 4..7 are damaged
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert r["totals"]["damaged"] == 4
    assert {row["region"]: row["damaged"] for row in r["byRegion"]} == {
        "eu-west-1": 1,
        "us-east-1": 3,
    }
    assert r["exceptions"][0]["damaged"] is True
    page = render_html(r)
    assert page.count('<tr class="damaged">') >= 3
    assert "<th>from the damaged range</th>" in page
    assert "from the damaged range" in render_markdown(r)


def test_a_row_the_database_cannot_parse_is_named(ledger: Ledger, ledger_url: str) -> None:
    fill(ledger)
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = '{not json' WHERE seq = 3"))
    engine.dispose()
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert r["verdict"] == "chain-broken"
    assert r["integrity"]["firstBrokenSeq"] == 3
    assert r["integrity"]["reason"] == (
        "row seq 3 (decision d-003): the stored decision JSON does not match its hash "
        "(the row was edited)"
    )
    assert r["totals"]["damaged"] == 5  # seq 3..7 of the period


def test_the_report_says_when_and_over_what_it_was_made(ledger: Ledger) -> None:
    fill(ledger)
    ledger.append(
        decision(9, "2026-03-07T10:00:00Z", "excepted", violations=(CRITICAL,), exception="a/b")
    )
    at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    r = report_from_ledger(
        ledger, since=SINCE, until=UNTIL, generated_at=at, ledger_url="sqlite:///x.db"
    )
    assert r["metadata"]["generatedAt"] == "2026-04-02T09:00:00Z"
    assert r["metadata"]["generator"].startswith("affidavit ")
    assert r["metadata"]["ledger"] == "sqlite:///x.db"
    assert r["metadata"]["headSeq"] == 9
    assert r["samples"] == {
        "denied": ["d-004 (seq 4)"],
        "excepted": ["d-005 (seq 5)", "d-009 (seq 9)"],
    }


def test_the_markdown_report_shows_terminal_controls_as_text(ledger: Ledger) -> None:
    # Printed to the terminal when no --output is given; its cells quote what predicates said.
    fill(ledger)
    r = dict(report_from_ledger(ledger, since=SINCE, until=UNTIL))
    r["headline"] = "all \x1b[32mclean\x1b[0m\u202e"
    text = render_markdown(r)
    assert all(line.isprintable() for line in text.split("\n"))
    assert "all \\\\x1b\\[32mclean\\\\x1b\\[0m\\\\u202e" in text


RETENTION_ASKED = (
    "EU AI Act Art. 18 (eu-ai-act-high-risk): 3650 days, PCI DSS 10.5.1 (pci-dss): 365 days, EU "
    "AI Act Art. 19 (eu): 183 days, NIST SP 800-53 AU-11 (us-fedramp-moderate): 90 days"
)


def test_the_report_says_how_long_the_ledger_has_kept_everything(ledger: Ledger) -> None:
    fill(ledger)
    at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    signed = [Checkpoint("test", *ledger.head())]  # as load_checkpoints gives it, verified
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL, generated_at=at, checkpoints=signed)
    first = ledger.after(0, limit=1)[0]
    kept = (at - datetime.fromisoformat(first.decision["time"].replace("Z", "+00:00"))).days
    assert r["retention"]["nothingRemoved"] is True
    assert r["retention"]["oldestSeq"] == 1
    assert r["retention"]["keptDays"] == kept
    statement = (
        f"Retention: no decision has been removed since the ledger's first (seq 1, "
        f"{first.decision['time']}), {kept} days before this report; the periods asked "
        f"({RETENTION_ASKED}) are met for the ledger's whole life."
    )
    assert r["retention"]["statement"] == statement
    assert html.escape(statement) in render_html(r)
    assert "Retention: no decision has been removed" in render_markdown(r)
    # Without checkpoints a ledger rewritten whole, or started again, chains from seq 1 too.
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL, generated_at=at)
    assert r["retention"]["nothingRemoved"] is False
    assert r["retention"]["statement"] == (
        f"Retention not shown: the chain is whole from the ledger's first decision (seq 1, "
        f"{first.decision['time']}), {kept} days before this report, but without signed "
        "checkpoints a ledger rewritten, cut short or started again would be as whole; pass "
        f"--ledger-public-key and --checkpoints to show that nothing was removed "
        f"(asked: {RETENTION_ASKED})."
    )


def test_a_ledger_whose_oldest_decisions_were_deleted_cannot_show_retention(
    ledger: Ledger, ledger_url: str
) -> None:
    """An operator short of disk deletes the oldest rows behind Affidavit's back."""
    fill(ledger)
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq <= 2"))
        conn.execute(text("DELETE FROM decisions WHERE seq <= 2"))
    engine.dispose()
    r = report_from_ledger(ledger, since=SINCE, until=UNTIL)
    assert r["retention"]["nothingRemoved"] is False
    assert r["retention"]["oldestSeq"] == 3
    assert r["retention"]["statement"].startswith("Retention cannot be shown: ")
    assert "so decisions may have been removed" in r["retention"]["statement"]


def test_an_empty_ledger_has_nothing_to_keep(ledger: Ledger) -> None:
    r = report_from_ledger(ledger)
    assert r["retention"]["statement"] == "Retention: the ledger holds no decision yet."
    assert r["retention"]["nothingRemoved"] is False

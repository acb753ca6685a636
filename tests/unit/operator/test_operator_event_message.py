"""Tests the Event text of a denial: a short reason (rule and what was found) and the command
that shows the full record, never a sentence cut in the middle."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from affidavit.ledger import LedgerRecord
from affidavit.operator.events import short_message
from affidavit.policy.decision import Decision, Violation


def _record(violations: list[Violation]) -> LedgerRecord:
    decision = Decision(
        id="d-7", time="2026-03-01T00:00:00Z", cluster="c", region="r", namespace="shop",
        kind="Deployment", name="checkout", operation="CREATE", user="u", outcome="denied",
        mode="Enforce", violations=tuple(violations),
    )  # fmt: skip
    return LedgerRecord(
        seq=7, id="d-7", time=datetime(2026, 3, 1, tzinfo=UTC), outcome="denied",
        namespace="shop", kind="Deployment", name="checkout", decision=dataclasses.asdict(decision),
        canonical="{}", prev_hash="0" * 64, hash="1" * 64,
    )  # fmt: skip


def _violation(rule: str, found: str) -> Violation:
    return Violation(rule, "AccountabilityPolicy/p", found, "e", "f",
                     "registry.example/shop/checkout:1")  # fmt: skip


WHY = "; run `kubectl affidavit why deployment/checkout -n shop` for the full record"


def test_the_first_rule_and_its_finding_then_the_why_command() -> None:
    message = short_message(_record([_violation("provenance.present", "no attestation"),
                                     _violation("review.present", "no review")]))  # fmt: skip
    assert message == (
        "Affidavit denied Deployment/checkout (decision d-7): provenance.present: found no "
        f"attestation (+1 more){WHY}"
    )


def test_a_finding_too_long_for_an_event_is_replaced_by_the_rules_not_cut() -> None:
    long = _violation("review.critical.independentApprovals", "x " * 800)
    message = short_message(_record([long, _violation("provenance.present", "y")]))
    assert message == (
        "Affidavit denied Deployment/checkout (decision d-7): violated "
        f"review.critical.independentApprovals, provenance.present{WHY}"
    )
    assert len(message) <= 1000


def test_a_finding_with_terminal_controls_is_shown_escaped() -> None:
    # kubectl describe prints an Event's message to a terminal: an escape sequence in a file
    # name or author name must show as text, not act.
    found = "1 approval by \x1b[2K\rbob\nWarning: none\u202e"
    message = short_message(_record([_violation("review.present", found)]))
    assert message.isprintable()
    assert "found 1 approval by \\x1b[2K\\rbob\\nWarning: none\\u202e" in message

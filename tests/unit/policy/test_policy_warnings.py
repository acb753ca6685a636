"""Tests a Warn-mode decision's admission warnings: each whole, within the kube-apiserver's budget.

The apiserver keeps warnings whole up to 4,096 characters in all; past that it cuts each to 256
and drops the rest (k8s.io/apiserver's warning recorder), so a workload with many images got
every warning cut in the middle, its fix lost. Now as many as fit are given whole, then one line
says how many more and where the full record is.
"""

from __future__ import annotations

from affidavit.policy import evaluate
from affidavit.policy.decision import Decision
from affidavit.policy.messages import WARNINGS_BUDGET, admission_warnings
from policy_builders import NOW, REPO, approval, ctx, evidence, index, policy, provenance, review


def _warned(images: int) -> Decision:
    c = ctx(images=tuple(f"{REPO}:v{i}" for i in range(images)))
    unreviewed = evidence(provenance(), review(approval("alice", independent=False)))
    decision = evaluate(
        c,
        dict.fromkeys(c.images, unreviewed),
        index([policy(mode="Warn")]),
        now=NOW,
        decision_id="d-9",
    )
    assert decision.outcome == "warned"
    return decision


def test_a_few_violations_are_each_a_whole_warning() -> None:
    decision = _warned(2)
    assert admission_warnings(decision) == [v.message for v in decision.violations]


def test_many_violations_fit_the_apiservers_budget_whole_and_say_how_many_more() -> None:
    decision = _warned(12)
    warnings = admission_warnings(decision)
    messages = [v.message for v in decision.violations]
    assert sum(map(len, messages)) > 4096  # past it, the apiserver would cut every one
    assert sum(map(len, warnings)) <= WARNINGS_BUDGET < 4096 - 200
    *whole, last = warnings
    assert whole == messages[: len(whole)]  # whole, in order
    assert last == (
        f"and {len(messages) - len(whole)} more violations: run `affidavit explain --decision "
        "d-9` for the full record"
    )


def test_a_dry_run_says_it_was_not_recorded() -> None:
    warnings = admission_warnings(_warned(12), recorded=False)
    assert warnings[-1].endswith(
        "more violations: dry run: judged like the real request, but not recorded"
    )

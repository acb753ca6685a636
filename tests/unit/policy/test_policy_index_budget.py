"""A flood of exceptions cannot stop the policy index from being published.

The index goes to the webhook as one ConfigMap (at most 1 MiB). Before, enough exceptions (anyone
who may create them in some namespace can) made every publish fail and froze the webhook on its
last index: no later policy or revocation reached it. ``policy.budget`` keeps the policies and
the oldest exceptions that fit, and says why each newer one was left out.
"""

from __future__ import annotations

from typing import Any

from affidavit.policy.budget import size, within_budget
from policy_builders import exception, index, policy

BUDGET = 40_000


def _exceptions(n: int, *, valid: bool = True) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        e = exception(f"flood-{i:03d}", reason="r" * 2000, incidentId=f"INC-{i}")
        e["metadata"]["creationTimestamp"] = f"2026-11-29T00:{i // 60:02d}:{i % 60:02d}Z"
        if not valid:
            e["spec"]["images"] = ["*"]  # refused: its error names it
        out.append(e)
    return out


def test_an_index_that_fits_is_published_as_it_is() -> None:
    ix = index([policy()], exceptions=_exceptions(3))
    assert within_budget(ix, BUDGET) == (ix, {})


def test_the_newest_exceptions_give_way_and_every_policy_stays() -> None:
    ix = index([policy(), policy("strict")], exceptions=_exceptions(60))
    assert size(ix) > BUDGET
    published, left_out = within_budget(ix, BUDGET)
    assert size(published) <= BUDGET
    assert [p.name for p in published.policies] == ["baseline", "strict"]
    kept = [e.name for e in published.exceptions]
    assert kept == [f"flood-{i:03d}" for i in range(len(kept))]  # the oldest, in order
    assert 0 < len(kept) < 60
    assert sorted(left_out) == [
        f"AccountabilityException/shop/flood-{i:03d}" for i in range(len(kept), 60)
    ]
    (why,) = set(left_out.values())
    assert why.startswith(
        f"left out of the published policy index: with every exception it would take "
        f"{size(ix):,} bytes, past the {BUDGET:,} its ConfigMap can carry"
    )
    assert "ResourceQuota on count/accountabilityexceptions.affidavit.dev" in why
    # one more would not have fitted
    one_more = within_budget(
        index([policy(), policy("strict")], exceptions=_exceptions(60)[: len(kept) + 1]), BUDGET
    )
    assert len(one_more[0].exceptions) == len(kept)


def test_errors_about_invalid_exceptions_are_summed_up_when_they_do_not_fit() -> None:
    ix = index([policy()], exceptions=_exceptions(200, valid=False))
    assert not ix.exceptions and size(ix) > BUDGET
    published, left_out = within_budget(ix, BUDGET)
    assert left_out == {}
    assert size(published) <= BUDGET
    assert published.errors == {
        "AccountabilityException/*": "200 invalid exceptions are not listed in the published "
        "index (it would not fit its ConfigMap); each one's status says why"
    }
    assert [p.name for p in published.policies] == ["baseline"]

"""The report's facts are cached by the exact JSON of the values they come from: decisions that
differ in any of those values never share an answer, and equal ones share one tuple (which the
tally then finds by identity)."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest

from affidavit.audit.facts import CachedFacts, decision_facts
from affidavit.audit.tally import ScanFacts, Tally
from affidavit.ledger.decode import decoder

BASE: dict[str, Any] = {
    "id": "d-1",
    "region": "eu-west-1",
    "cluster": "prod-eu",
    "exception": None,
    "images": [{"ref": "r/a:1", "digest": "sha256:" + "a" * 64}],
    "violations": [{"rule": "labels.owner", "policy": "p", "control": None}],
    "evidence": [{"image": "r/a:1", "predicate_type": "https://x/ai-provenance/v1"}],
    "snapshot": {
        "caller": {"authenticated": True},
        "images": [{"image": "r/a:1", "provenance": "k", "assisted": 1, "generated": 0}],
        "exceptions": [{"namespace": "n", "name": "e", "approvers": ["c@x"]}],
    },
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    target: Any = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


def test_equal_facts_share_one_tuple_and_differing_ones_never_do() -> None:
    facts = CachedFacts()
    first = facts(copy.deepcopy(BASE))
    assert first == decision_facts(copy.deepcopy(BASE))
    assert facts({**copy.deepcopy(BASE), "id": "d-2", "time": "t"}) is first
    changes = [
        (("region",), "us-east-1"),
        (("cluster",), "prod-us"),
        (("exception",), "n/e"),
        (("images", 0, "digest"), "sha256:" + "b" * 64),
        (("violations", 0, "control"), "SOC 2 CC8.1"),
        (("evidence", 0, "predicate_type"), "https://x/code-review/v1"),
        (("snapshot", "caller", "authenticated"), False),
        (("snapshot", "images", 0, "generated"), 1),
        (("snapshot", "exceptions", 0, "approvers"), ["d@x"]),
        (("violations", 0, "control"), 1),  # counted as the text "1"
        (("violations", 0, "control"), "1"),
    ]
    for path, value in changes:
        data = _with(path, value)
        got = facts(data)
        assert got == decision_facts(_with(path, value)), path
        assert got != first, path
    # a control that is not text is counted as its JSON text (the report sorts and shows it)
    number, text = _with(("violations", 0, "control"), 1), _with(("violations", 0, "control"), "1")
    assert facts(number) == facts(text) == decision_facts(number)
    assert facts(number)[2][0][2] == "1"


def test_the_tally_counts_shared_and_unshared_facts_alike() -> None:
    cached, plain = Tally(), Tally()
    facts = CachedFacts()
    for n in range(6):
        data = _with(("region",), "eu-west-1" if n % 2 else "us-east-1")
        row = (n + 1, f"d-{n}", "2026-03-01T00:00:00Z", "denied", "ns", "Pod", "p", True, False)
        cached.add((*row, "{}", "0" * 64, "f" * 64, facts(data)))
        plain.add((*row, "{}", "0" * 64, "f" * 64, decision_facts(data)))
    assert sorted(cached.rows(), key=repr) == sorted(plain.rows(), key=repr)
    assert len(cached.kinds) == len(plain.kinds) == 2


def _variants() -> list[dict[str, Any]]:
    """BASE and every single change above, plus shapes a tally meets rarely."""
    changes: list[tuple[tuple[Any, ...], Any]] = [
        (("region",), "us-east-1"),
        (("region",), ["eu-west-1"]),  # a list where text is expected: counted frozen
        (("cluster",), None),
        (("exception",), "n/e"),
        (("images", 0, "digest"), "sha256:" + "b" * 64),
        (("images",), []),
        (("violations", 0, "control"), "SOC 2 CC8.1"),
        (("violations", 0, "rule"), "review.critical.independentApprovals"),
        (("violations", 0, "control"), 1),
        (("violations", 0, "control"), "1"),
        (("evidence", 0, "predicate_type"), "https://x/code-review/v1"),
        (("snapshot", "caller", "authenticated"), False),
        (("snapshot", "images", 0, "generated"), 1),
        (("snapshot", "images", 0, "review"), {"approvals": 2, "independent_approvals": 1}),
        (("snapshot", "exceptions", 0, "approvers"), ["d@x"]),
        (("snapshot",), None),
    ]
    out = [copy.deepcopy(BASE)] + [_with(path, value) for path, value in changes]
    out.append({k: v for k, v in BASE.items() if k != "snapshot"})
    return out


@pytest.mark.parametrize("ai_touched", [{}, {"sha256:" + "a" * 64: False}])
def test_facts_from_raw_values_count_exactly_as_facts_from_the_parse(
    ai_touched: dict[str, bool],
) -> None:
    """The scan's fast path (values kept raw, looked up by their bytes) against the parse: a
    tally of each, over every variant many times in a shuffled order, counts the same."""
    decode = decoder(("images", *ScanFacts.keys))
    fast, parsed = Tally(ai_touched=ai_touched), Tally(ai_touched=ai_touched)
    reader = ScanFacts(fast, limit=7)  # small: its caches are cleared on the way
    variants = _variants()
    for n in range(40 * len(variants)):
        data = variants[(n * 7) % len(variants)]
        outcome = ("allowed", "denied", "excepted", "warned")[n % 4]
        columns = {
            "id": f"d-{n}",
            "time": f"2026-03-{1 + n % 28:02d}T00:00:00Z",
            "outcome": outcome,
            "namespace": "ns",
            "kind": "Pod",
            "name": f"p-{n}",
        }
        text = orjson.dumps({**data, **columns}, option=orjson.OPT_SORT_KEYS)
        row = (n + 1, f"d-{n}", columns["time"], outcome, "ns", "Pod", f"p-{n}", True, False)
        fast.add((*row, "{}", "0" * 64, "f" * 64, reader.raw(decode(text))))
        parsed.add((*row, "{}", "0" * 64, "f" * 64, decision_facts(json.loads(text))))
    assert sorted(fast.rows(), key=repr) == sorted(parsed.rows(), key=repr)
    assert fast.days == parsed.days
    assert fast.workloads == parsed.workloads
    assert fast.exception_uses == parsed.exception_uses
    assert fast.samples == parsed.samples
    assert len({k for k, *_ in fast.rows()}) == len({k for k, *_ in parsed.rows()}) > 10

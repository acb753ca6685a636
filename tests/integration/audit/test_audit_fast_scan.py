"""The report's fast path counts a ledger of rare shapes exactly as the parse of every row does.

The scan decodes each decision's indexed fields and keeps the values the report counts as raw
bytes, looked up by those bytes (``affidavit.ledger.decode``, ``affidavit.audit.tally.ScanFacts``).
Rows it does not decode (here: a NaN) are parsed whole. This ledger mixes many repeated shapes
with rare ones (a region that is a list, a rule cited with and without a control, an
unauthenticated caller, an AI-touched image reviewed
independently, two images, none, a NaN) and checks the figures exactly, and that the single
pass, the split pass and a tally of every row parsed whole agree on every counter.
On SQLite and on the real PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from affidavit.attestations.predicates import AI_PROVENANCE_V1, CODE_REVIEW_V1
from affidavit.audit.facts import CachedFacts
from affidavit.audit.parallel import SINGLE_PASS
from affidavit.audit.render import render_json
from affidavit.audit.report import report_from_ledger
from affidavit.audit.tally import ScanFacts, Tally
from affidavit.ledger import Ledger
from affidavit.ledger.scan import ChainScan

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
DIGEST = "sha256:" + "a" * 64


def _decision(n: int, **changes: Any) -> dict[str, Any]:
    ref = f"registry.example/shop/app-{n % 3}:1.0"
    data: dict[str, Any] = {
        "id": f"d-{n:03d}",
        "time": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "cluster": "prod-eu",
        "region": "eu-west-1",
        "namespace": ("shop", "pay")[n % 2],
        "kind": ("Deployment", "Pod")[n % 2],
        "name": f"app-{n % 3}" if n % 2 == 0 else f"app-{n % 3}-7c9f8d6b5c-x2k9p",
        "operation": "CREATE",
        "user": "alice",
        "outcome": ("allowed", "denied", "warned")[n % 3],
        "mode": "Enforce",
        "images": [{"ref": ref, "digest": DIGEST}],
        "violations": [],
        "evidence": [{"image": ref, "predicate_type": AI_PROVENANCE_V1}],
        "policies": [],
        "exception": None,
    }
    if data["outcome"] != "allowed":
        data["violations"] = [{"rule": "labels.owner", "policy": "p", "control": "SOC 2 CC8.1"}]
    return data | changes


RARE: list[dict[str, Any]] = [
    _decision(100, region=["eu-west-1"]),  # counted in a region of its own
    _decision(
        101,
        outcome="denied",
        violations=[{"rule": "provenance.required", "policy": "p", "control": None}],
    ),
    _decision(
        102,
        outcome="denied",
        violations=[{"rule": "provenance.required", "policy": "p", "control": "1"}],
    ),
    _decision(
        103,
        outcome="allowed",
        violations=[],
        snapshot={
            "caller": {"authenticated": False},
            "images": [
                {
                    "image": "registry.example/shop/app-1:1.0",
                    "provenance": "k",
                    "assisted": 2,
                    "generated": 0,
                    "review": {"approvals": 2, "independent_approvals": 1},
                }
            ],
        },
        evidence=[
            {"image": "registry.example/shop/app-1:1.0", "predicate_type": AI_PROVENANCE_V1},
            {"image": "registry.example/shop/app-1:1.0", "predicate_type": CODE_REVIEW_V1},
        ],
    ),
    _decision(
        104,
        images=[
            {"ref": "registry.example/shop/app-1:1.0", "digest": DIGEST},
            {"ref": "registry.example/shop/app-2:1.0", "digest": None},
        ],
    ),
    _decision(105, images=[], evidence=[]),
    _decision(106, score=float("nan")),  # stored as NaN: parsed whole, not decoded
    _decision(
        107,
        outcome="excepted",
        exception="pay/inc-1",
        snapshot={
            "caller": {"authenticated": True},
            "exceptions": [{"namespace": "pay", "name": "inc-1", "approvers": ["c@x"]}],
        },
    ),
]


def _fill(ledger: Ledger) -> None:
    for n in range(60):
        ledger.append(_decision(n))
        if n % 8 == 0:
            ledger.append(RARE[n // 8])
    # a common shape but for its authenticated caller (the snapshot is where as well as what)
    ledger.append(_decision(60, snapshot={"caller": {"authenticated": True}}))


def _tally(ledger: Ledger, fast: bool) -> Tally:
    t = Tally()
    reader = ScanFacts(t) if fast else CachedFacts()  # no raw values: every row parsed whole
    for row in ChainScan(ledger, (), SINCE, UNTIL, reader):
        t.add(row)
    return t


def test_rare_shapes_are_counted_exactly(ledger: Ledger) -> None:
    _fill(ledger)
    fast, parsed = _tally(ledger, True), _tally(ledger, False)
    assert sorted(fast.rows(), key=repr) == sorted(parsed.rows(), key=repr)
    assert (fast.days, fast.workloads, fast.clean_workloads) == (
        parsed.days,
        parsed.workloads,
        parsed.clean_workloads,
    )
    assert (fast.exception_uses, fast.samples) == (parsed.exception_uses, parsed.samples)

    single = report_from_ledger(
        ledger, since=SINCE, until=UNTIL, parallel_from=SINGLE_PASS, generated_at=UNTIL
    )
    split = report_from_ledger(
        ledger, since=SINCE, until=UNTIL, parallel_from=2, generated_at=UNTIL
    )
    assert render_json(single) == render_json(split)
    assert single["integrity"]["ok"] is True
    assert single["totals"]["decisions"] == 69
    by_region = {r["region"]: r["total"] for r in single["byRegion"]}
    assert by_region == {"eu-west-1": 68, "('eu-west-1',)": 1}  # frozen, as before
    assert single["workloads"]["requestsWithoutAuthenticatedCaller"] == 67
    assert single["aiTouched"]["ai"] == {"admitted": 1, "denied": 0}
    assert single["aiTouched"]["reviewOfAdmitted"]["independent"] == 1
    rules = {r["rule"]: (r["violations"], r["controls"]) for r in single["topViolatedRules"]}
    assert rules["provenance.required"] == (2, ["1"])
    assert rules["labels.owner"][0] == 40 + 4  # decisions 100, 104, 106 and 107 too
    assert [e["exception"] for e in single["exceptions"]] == ["pay/inc-1"]
    assert single["evidence"]["withProvenanceAndReview"] == 1


def test_columns_that_join_to_the_hashed_text_but_split_differently_are_caught(
    ledger: Ledger,
) -> None:
    """The indexed columns are fetched and compared as one text joined by a separator; a
    value may hold that separator, so columns that join to the same text as the hashed
    decision's fields while each differs must still be named, exactly as before."""
    for n in range(5):
        ledger.append(_decision(n, id=f"a{n}\x1fb" if n == 3 else f"d-{n}", outcome="allowed"))
    engine = create_engine(ledger.url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE decisions SET id = :id, outcome = :outcome WHERE seq = 4"),
            {"id": "a3", "outcome": "b\x1fallowed"},
        )
    engine.dispose()
    doc = report_from_ledger(ledger, since=SINCE, until=UNTIL, parallel_from=SINGLE_PASS)
    assert doc["integrity"]["firstBrokenSeq"] == 4
    assert doc["integrity"]["reason"] == (
        "row seq 4 (decision a3): column id='a3' disagrees with the hashed decision"
    )


def test_a_row_the_database_places_outside_the_period_but_the_exact_check_inside_is_counted(
    ledger: Ledger,
) -> None:
    """Rows outside the period are decoded without the counted values; a row the database's
    text comparison puts outside but whose time (checked exactly) is inside is still counted,
    with its facts, as the single parse counted it."""
    for n in range(4):  # the last at the first instant of the period
        at = {"time": "2026-03-01T00:00:00Z"} if n == 3 else {}
        ledger.append(_decision(n, outcome="denied", region="ap-south-1", **at))
    if not ledger.is_postgres:  # SQLite's time column is text, compared with the period as text
        engine = create_engine(ledger.url)
        with engine.begin() as conn:  # the same instant, without the fraction: before the
            # period's first instant as text ('2026-03-01 00:00:00.000000'), at it as a time
            conn.execute(text("UPDATE decisions SET time = '2026-03-01 00:00:00' WHERE seq = 4"))
        engine.dispose()
    doc = report_from_ledger(ledger, since=SINCE, until=UNTIL, parallel_from=SINGLE_PASS)
    assert doc["integrity"]["ok"] is True
    assert [(r["region"], r["denied"]) for r in doc["byRegion"]] == [("ap-south-1", 4)]


def test_a_violation_whose_names_are_not_text_is_reported_not_a_crash(ledger: Ledger) -> None:
    """Affidavit writes a violation's rule, policy and control as text, but a hashed decision
    may hold a number or a list there (another writer, a later version); the report shows such
    a value as its JSON text and sorts it with the rest instead of failing on ``sorted``."""
    odd = [
        {"rule": 7, "policy": ["p", "q"], "control": 5},
        {"rule": "labels.owner", "policy": "p", "control": "SOC 2 CC8.1"},
    ]
    for n in range(4):
        ledger.append(_decision(n, outcome="denied", violations=odd if n % 2 else None))
    for parallel_from in (SINGLE_PASS, 2):
        doc = report_from_ledger(
            ledger, since=SINCE, until=UNTIL, parallel_from=parallel_from, generated_at=UNTIL
        )
        assert doc["integrity"]["ok"] is True
        rules = {
            r["rule"]: (r["violations"], r["controls"], r["policies"])
            for r in doc["topViolatedRules"]
        }
        assert rules == {
            "7": (2, ["5"], ['["p","q"]']),
            "labels.owner": (2, ["SOC 2 CC8.1"], ["p"]),
        }


class _CountingScan(ChainScan):
    """The scan, counting the rows its exact check reads again (each a fast-path miss)."""

    rechecked = 0

    def _exact(self, conn: Any, seq: int, expected_seq: int, prev: str) -> Any:
        self.rechecked += 1
        return super()._exact(conn, seq, expected_seq, prev)


def test_an_intact_ledger_is_verified_without_reading_a_row_again(ledger: Ledger) -> None:
    # The fast path hashes the stored text as it decodes it (non-ASCII text included): on an
    # intact chain no row may fall to the exact check, which would mean its hash or its
    # comparison is not over the stored bytes. A tampered row still does (and is named).
    _fill(ledger)
    ledger.append(_decision(61, user="zoë", policies=[{"name": "règle ✓", "kind": "preset"}]))
    scan = _CountingScan(ledger, (), SINCE, UNTIL, ScanFacts(Tally()))
    assert sum(1 for _ in scan) == 70
    assert scan.report is not None and scan.report.first_broken_seq is None
    assert scan.rechecked == 0
    engine = create_engine(ledger.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE decisions SET decision = replace(decision, 'zoë', 'zoe')"))
    engine.dispose()
    scan = _CountingScan(ledger, (), SINCE, UNTIL, ScanFacts(Tally()))
    assert sum(1 for _ in scan) == 70
    assert scan.report is not None and scan.report.first_broken_seq == 70
    assert scan.rechecked == 1

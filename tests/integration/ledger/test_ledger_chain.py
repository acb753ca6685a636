"""The decision ledger on SQLite and real PostgreSQL: append, hash chain, tamper detection,
concurrent appends from many threads and processes, and the queries the audit side uses."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime

import pytest
from ledger_decisions import make_decision
from sqlalchemy import create_engine, text

from affidavit.errors import LedgerError
from affidavit.ledger import GENESIS_HASH, Ledger, canonical_json, chain_hash


def test_append_links_each_row_to_the_previous(ledger: Ledger) -> None:
    first = ledger.append(make_decision())
    second = ledger.append(make_decision(outcome="denied"))
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert first.hash == chain_hash(GENESIS_HASH, first.canonical)
    assert ledger.head() == (2, second.hash)
    assert ledger.verify_chain().ok
    stored = ledger.get(second.id)
    assert stored is not None
    assert stored.decision["violations"][0]["rule"] == "provenance.present"
    assert stored.canonical == canonical_json(stored.decision)


def test_repeated_identical_append_is_idempotent_but_a_conflicting_one_is_refused(
    ledger: Ledger,
) -> None:
    d = make_decision(did="same-id")
    assert ledger.append(d).seq == ledger.append(d).seq == 1
    with pytest.raises(LedgerError) as e:
        ledger.append(make_decision(did="same-id", outcome="denied"))
    assert e.value.message == (
        "decision id same-id is already in the ledger (seq 1) with different content"
    )


def test_editing_a_rows_json_is_reported_at_that_seq(ledger: Ledger, ledger_url: str) -> None:
    for _ in range(5):
        ledger.append(make_decision(outcome="denied"))
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE decisions SET decision = replace(decision, 'denied', 'allowed') "
                "WHERE seq = 3"
            )
        )
    engine.dispose()
    report = ledger.verify_chain()
    assert not report.ok
    assert report.first_broken_seq == 3
    assert report.checked == 2
    assert report.reason == (
        f"row seq 3 (decision {ledger.after(2, 1)[0].id}): the stored decision JSON does not "
        "match its hash (the row was edited)"
    )


def test_rewriting_a_rows_hash_too_breaks_the_next_link(ledger: Ledger, ledger_url: str) -> None:
    records = [ledger.append(make_decision()) for _ in range(4)]
    forged = records[1].canonical.replace('"alice"', '"mallory"')
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE decisions SET decision = :d, hash = :h WHERE seq = 2"),
            {"d": forged, "h": chain_hash(records[1].prev_hash, forged)},
        )
    engine.dispose()
    report = ledger.verify_chain()
    assert report.first_broken_seq == 3
    assert report.reason is not None and report.reason.startswith("row seq 3 (decision ")


def test_deleting_a_row_or_the_tail_is_detected(ledger: Ledger, ledger_url: str) -> None:
    for _ in range(4):
        ledger.append(make_decision())
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq = 4"))
        conn.execute(text("DELETE FROM decisions WHERE seq = 4"))
    report = ledger.verify_chain()
    assert report.first_broken_seq == 4
    assert report.reason == (
        "the head records seq 4 but the chain ends at seq 3: "
        "rows were removed from the end or the head was edited"
    )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq = 2"))
        conn.execute(text("DELETE FROM decisions WHERE seq = 2"))
    engine.dispose()
    report = ledger.verify_chain()
    assert report.first_broken_seq == 3
    assert report.reason == "seq 2 is missing: the chain jumps to seq 3"


def test_concurrent_threads_keep_one_chain(ledger: Ledger) -> None:
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(15):
                ledger.append(make_decision())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = ledger.verify_chain()
    assert report.ok, report
    assert report.checked == 90
    assert ledger.count() == 90


def _process_writer(url: str, prefix: str) -> None:
    led = Ledger(url)
    for i in range(20):
        led.append(make_decision(did=f"{prefix}-{i}"))
    led.close()


def test_concurrent_processes_keep_one_chain(ledger: Ledger, ledger_url: str) -> None:
    ledger.append(make_decision())  # schema exists before the writers race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(ledger_url, f"p{i}")) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    report = ledger.verify_chain()
    assert report.ok, report
    assert report.checked == 61


def test_queries_by_time_namespace_outcome_and_image(ledger: Ledger) -> None:
    ledger.append(make_decision(time="2026-03-01T09:00:00Z", namespace="a"))
    ledger.append(
        make_decision(
            time="2026-03-02T09:00:00Z",
            namespace="b",
            outcome="denied",
            image="reg.example/pay/api:2",
            digest="sha256:" + "b" * 64,
        )
    )
    ledger.append(make_decision(time="2026-03-03T09:00:00+01:00", namespace="a"))
    day2 = datetime(2026, 3, 2, tzinfo=UTC)
    assert [r.seq for r in ledger.query(since=day2)] == [2, 3]
    assert [r.seq for r in ledger.query(until=day2)] == [1]
    assert [r.seq for r in ledger.query(namespace="a")] == [1, 3]
    assert [r.seq for r in ledger.query(outcome="denied")] == [2]
    assert [r.seq for r in ledger.query(image="reg.example/pay/api")] == [2]
    assert [r.seq for r in ledger.query(image="reg.example/pay/api:2")] == [2]
    assert [r.seq for r in ledger.query(image="sha256:" + "b" * 64)] == [2]
    assert [r.seq for r in ledger.query(image="reg.example/pay")] == []
    assert [r.seq for r in ledger.query(namespace="a", limit=1)] == [1]
    assert [r.seq for r in ledger.after(1, limit=5)] == [2, 3]
    assert ledger.query(since=day2)[1].time == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)

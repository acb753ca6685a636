"""Decision snapshots in the ledger, on SQLite and real PostgreSQL: rows written before snapshots
existed still verify and read (``snapshot`` None), a snapshot is inside the hashed JSON so editing
it (an exception's owner, an image's AI counts) breaks the chain at that row, and a snapshot
newer than this version reads is refused by name rather than misread; a decision buffered
during an outage keeps its snapshot through the buffer file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_decisions import make_decision
from sqlalchemy import Engine, create_engine, text

from affidavit.ledger import BufferedLedger, Ledger
from affidavit.policy.decision import (
    SNAPSHOT_VERSION,
    AiInvolvement,
    Caller,
    Decision,
    ExceptionUsed,
    Snapshot,
    ToolUse,
)

DIGEST = "sha256:" + "a" * 64
SNAPSHOT = Snapshot(
    policy_index="sha256:" + "b" * 64,
    caller=Caller(authenticated=True, identity="CN=kube-apiserver-webhook-client"),
    images=(
        AiInvolvement(
            image="registry.example/shop/web:1.0",
            digest=DIGEST,
            provenance="sha256:" + "c" * 64,
            commits=3,
            assisted=2,
            tools=(ToolUse("Claude Code", "Claude Opus 4.6", 2),),
            tiers=("critical",),
        ),
    ),
    exceptions=(
        ExceptionUsed(
            namespace="shop",
            name="hotfix",
            owner="olga",
            incident_id="INC-2041",
            approvers=("victor",),
            expires_at="2026-03-02T00:00:00Z",
            reason="login outage hotfix",
        ),
    ),
)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = create_engine(ledger_url)
    yield eng
    eng.dispose()


def _old_form(decision: Decision) -> dict[str, object]:
    """The JSON a webhook wrote before snapshots existed: no ``snapshot`` key at all."""
    data = dataclasses.asdict(decision)
    del data["snapshot"]
    return data


def test_rows_recorded_before_snapshots_still_verify_and_read(ledger: Ledger) -> None:
    old = ledger.append(_old_form(make_decision()))
    new_decision = dataclasses.replace(make_decision(outcome="excepted"), snapshot=SNAPSHOT)
    new = ledger.append(new_decision)
    assert '"snapshot"' not in old.canonical
    report = ledger.verify_chain()
    assert (report.ok, report.checked) == (True, 2)
    stored_old, stored_new = ledger.get(old.id), ledger.get(new.id)
    assert stored_old is not None and stored_new is not None
    assert Decision.from_dict(stored_old.decision).snapshot is None
    assert Decision.from_dict(stored_new.decision) == new_decision


def test_editing_a_snapshot_breaks_the_chain_at_that_row(ledger: Ledger, engine: Engine) -> None:
    ledger.append(make_decision())
    rec = ledger.append(dataclasses.replace(make_decision(outcome="excepted"), snapshot=SNAPSHOT))
    ledger.append(make_decision())
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE decisions SET decision = replace(decision, :a, :b) WHERE seq = :seq"),
            {"a": '"owner":"olga"', "b": '"owner":"mallory"', "seq": rec.seq},
        )
    report = ledger.verify_chain()
    assert (report.first_broken_seq, report.reason) == (
        rec.seq,
        f"row seq {rec.seq} (decision {rec.id}): the stored decision JSON does not match its "
        "hash (the row was edited)",
    )


def test_a_snapshot_newer_than_this_version_is_refused_by_name(ledger: Ledger) -> None:
    data = dataclasses.asdict(dataclasses.replace(make_decision(), snapshot=SNAPSHOT))
    data["snapshot"]["version"] = SNAPSHOT_VERSION + 1
    rec = ledger.append(data)
    assert ledger.verify_chain().ok  # the chain is sound; only this reader is too old
    stored = ledger.get(rec.id)
    assert stored is not None
    with pytest.raises(ValueError) as raised:
        Decision.from_dict(stored.decision)
    assert str(raised.value) == (
        f"decision snapshot version {SNAPSHOT_VERSION + 1} is not one this Affidavit reads "
        f"(1..{SNAPSHOT_VERSION}); upgrade Affidavit to read it"
    )


def test_a_version_1_snapshot_reads_with_no_requester(ledger: Ledger) -> None:
    """Decisions recorded before exceptions were stamped (snapshot version 1) read as before:
    their exceptions name no requester."""
    data = dataclasses.asdict(dataclasses.replace(make_decision(), snapshot=SNAPSHOT))
    data["snapshot"]["version"] = 1
    for used in data["snapshot"]["exceptions"]:
        del used["requested_by"]
    rec = ledger.append(data)
    stored = ledger.get(rec.id)
    assert stored is not None
    snapshot = Decision.from_dict(stored.decision).snapshot
    assert snapshot is not None and snapshot.version == 1
    assert [e.requested_by for e in snapshot.exceptions] == [None] * len(SNAPSHOT.exceptions)


def test_a_snapshot_survives_the_buffer_file_and_a_restart(tmp_path: Path) -> None:
    """Recorded during an outage (the database's directory is missing), then replayed from the
    buffer file by another process: the stored decision is the one judged, snapshot and all."""
    home = tmp_path / "db-away"
    path = tmp_path / "buffer.jsonl"
    led = Ledger(f"sqlite:///{home / 'ledger.db'}")
    judged = dataclasses.replace(make_decision(outcome="excepted"), snapshot=SNAPSHOT)
    first = BufferedLedger(led, capacity=10, path=path)
    assert first.record(judged).status == "buffered"
    first.close()
    home.mkdir()
    second = BufferedLedger(led, capacity=10, path=path)
    assert second.flush() == 0
    second.close()
    stored = led.get(judged.id)
    assert stored is not None
    assert Decision.from_dict(stored.decision) == judged
    assert led.verify_chain().ok

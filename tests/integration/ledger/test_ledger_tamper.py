"""Tamper evidence on SQLite and real PostgreSQL: one test per way an attacker with write access
to the database can rewrite history, each detected with a message naming what and where.

Rewriting a row and re-chaining every later hash, or cutting the tail and moving the head back,
leaves a self-consistent database: those are caught by the signed checkpoints published outside
it, which the tests sign with a real Ed25519 ledger key before the database is tampered with.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledger_decisions import make_decision
from sqlalchemy import Engine, inspect, text

from affidavit.errors import LedgerError
from affidavit.ledger import Ledger, LedgerRecord, canonical_json, chain_hash
from affidavit.ledger.checkpoint import Checkpointer, CheckpointTrail

DIGEST = "sha256:" + "a" * 64


def _fill(ledger: Ledger, n: int = 5) -> list[LedgerRecord]:
    return [ledger.append(make_decision(outcome="denied")) for _ in range(n)]


def _sql(engine: Engine, *statements: str, **params: object) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), params)


def _broken(ledger: Ledger, seq: int) -> str:
    report = ledger.verify_chain()
    assert not report.ok
    assert report.first_broken_seq == seq
    assert report.reason is not None
    return report.reason


def test_editing_the_json_is_named_by_row_and_decision(ledger: Ledger, engine: Engine) -> None:
    recs = _fill(ledger)
    _sql(
        engine,
        "UPDATE decisions SET decision = replace(decision, 'denied', 'allowed') WHERE seq = 3",
    )
    assert _broken(ledger, 3) == (
        f"row seq 3 (decision {recs[2].id}): the stored decision JSON does not match its hash "
        "(the row was edited)"
    )


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("outcome", "allowed"),
        ("namespace", "elsewhere"),
        ("kind", "Pod"),
        ("name", "forged"),
        ("id", "forged-id"),
    ],
)
def test_editing_an_indexed_column_is_detected(
    ledger: Ledger, engine: Engine, column: str, value: str
) -> None:
    recs = _fill(ledger)
    _sql(engine, f"UPDATE decisions SET {column} = :v WHERE seq = 2", v=value)
    did = value if column == "id" else recs[1].id
    assert _broken(ledger, 2) == (
        f"row seq 2 (decision {did}): column {column}={value!r} disagrees with the hashed decision"
    )


def test_editing_the_time_column_is_detected(ledger: Ledger, engine: Engine) -> None:
    recs = _fill(ledger)
    _sql(engine, "UPDATE decisions SET time = :t WHERE seq = 4", t=datetime(2020, 1, 1, 8, 30))
    assert _broken(ledger, 4) == (
        f"row seq 4 (decision {recs[3].id}): column time=2020-01-01T08:30:00+00:00 disagrees "
        "with the hashed decision (2026-03-01T10:00:00Z)"
    )


def test_editing_the_hash_or_prev_hash_column_is_detected(ledger: Ledger, engine: Engine) -> None:
    recs = _fill(ledger)
    _sql(engine, "UPDATE decisions SET hash = :h WHERE seq = 2", h="f" * 64)
    assert _broken(ledger, 2) == (
        f"row seq 2 (decision {recs[1].id}): the stored decision JSON does not match its hash "
        "(the row was edited)"
    )
    _sql(
        engine,
        "UPDATE decisions SET hash = :h, prev_hash = :p WHERE seq = 2",
        h=recs[1].hash,
        p="e" * 64,
    )
    assert _broken(ledger, 2) == (
        f"row seq 2 (decision {recs[1].id}): prev_hash eeeeeeeeeeee… does not match the hash of "
        f"seq 1 ({recs[0].hash[:12]}…): rows were reordered, removed or rehashed"
    )


def test_moving_a_character_between_prev_hash_and_decision_is_detected(
    ledger: Ledger, engine: Engine
) -> None:
    # The scan hashes prev_hash + decision as one run of bytes: this edit leaves those bytes,
    # and so the hash, exactly as they were; only where one column ends moved.
    recs = _fill(ledger)
    _sql(
        engine,
        "UPDATE decisions SET decision = substr(prev_hash, 64) || decision, "
        "prev_hash = substr(prev_hash, 1, 63) WHERE seq = 3",
    )
    assert _broken(ledger, 3) == (
        f"row seq 3 (decision {recs[2].id}): prev_hash {recs[1].hash[:12]}… does not match the "
        f"hash of seq 2 ({recs[1].hash[:12]}…): rows were reordered, removed or rehashed"
    )


def _not_utf8(ledger: Ledger, engine: Engine, recs: list[LedgerRecord], as_blob: bool) -> None:
    """Seq 5 (the last) rewritten as bytes that are not UTF-8 where the scan's decode skips
    them (a value no column repeats), its hash and the head recomputed over those bytes."""
    last = recs[-1]
    stored = last.canonical.encode()
    assert b'"user":"alice"' in stored
    forged = stored.replace(b'"user":"alice"', b'"user":"al\xffice"')
    forged_hash = hashlib.sha256(last.prev_hash.encode() + forged).hexdigest()
    value = "CAST(:d AS BLOB)" if as_blob else "CAST(:d AS TEXT)"
    _sql(
        engine,
        f"UPDATE decisions SET decision = {value}, hash = :h WHERE seq = 5",
        "UPDATE ledger_head SET hash = :h",
        d=forged,
        h=forged_hash,
    )


def test_text_that_is_not_utf8_is_named_even_with_its_hash_recomputed(
    ledger: Ledger, engine: Engine
) -> None:
    # SQLite stores whatever bytes it is given as TEXT (PostgreSQL refuses them). The hash
    # over those exact bytes matches: the scan must still refuse them as text, not pass them.
    if ledger.is_postgres:
        pytest.skip("PostgreSQL refuses text that is not UTF-8 when it is written")
    recs = _fill(ledger)
    _not_utf8(ledger, engine, recs, as_blob=False)
    with pytest.raises(LedgerError, match="holds a value that is not UTF-8 text"):
        ledger.verify_chain()


def test_a_blob_that_is_not_utf8_is_an_edited_row_even_with_its_hash_recomputed(
    ledger: Ledger, engine: Engine
) -> None:
    # A BLOB is read as its UTF-8 text (U+FFFD where it is not): that text is not what the hash
    # covers, so the row is named as edited, however its hash was recomputed.
    if ledger.is_postgres:
        pytest.skip("a SQLite column keeps a BLOB; PostgreSQL's text column does not")
    recs = _fill(ledger)
    _not_utf8(ledger, engine, recs, as_blob=True)
    assert _broken(ledger, 5) == (
        f"row seq 5 (decision {recs[4].id}): the stored decision JSON does not match its hash "
        "(the row was edited)"
    )


def test_deleting_or_editing_image_rows_is_detected(ledger: Ledger, engine: Engine) -> None:
    recs = _fill(ledger)
    _sql(engine, "DELETE FROM decision_images WHERE seq = 3")
    assert _broken(ledger, 3) == (
        f"row seq 3 (decision {recs[2].id}): its decision_images rows [] disagree with the "
        f"hashed decision's images [registry.example/shop/web:1.0@{DIGEST}]"
    )
    _sql(
        engine,
        "INSERT INTO decision_images (seq, ref, digest) VALUES (3, :r, :d)",
        r="registry.example/shop/other:1.0",
        d=DIGEST,
    )
    assert _broken(ledger, 3) == (
        f"row seq 3 (decision {recs[2].id}): its decision_images rows "
        f"[registry.example/shop/other:1.0@{DIGEST}] disagree with the hashed decision's "
        f"images [registry.example/shop/web:1.0@{DIGEST}]"
    )


def test_editing_an_image_rows_digest_alone_is_detected(ledger: Ledger, engine: Engine) -> None:
    # The ref stays: only the digest (the image actually admitted) is swapped, or cleared.
    recs = _fill(ledger)
    other = "sha256:" + "b" * 64
    for digest, shown in ((other, f"@{other}"), (None, "")):
        _sql(engine, "UPDATE decision_images SET digest = :d WHERE seq = 3", d=digest)
        assert _broken(ledger, 3) == (
            f"row seq 3 (decision {recs[2].id}): its decision_images rows "
            f"[registry.example/shop/web:1.0{shown}] disagree with the hashed decision's "
            f"images [registry.example/shop/web:1.0@{DIGEST}]"
        )


@pytest.mark.parametrize(
    ("date", "clock"),
    [("2026-13-01", "10:00:00"), ("2026-02-30", "10:00:00"), ("2026-02-28", "24:00:00")],
)
def test_a_time_that_is_no_time_is_named_even_with_its_hash_recomputed(
    ledger: Ledger, engine: Engine, date: str, clock: str
) -> None:
    # SQLite keeps any text in the time column. Digits in the right places that are no time,
    # in the JSON and the column alike, with the hash and the head recomputed: the fast check
    # compared the two texts and passed the row; the exact check could not read it at all.
    if ledger.is_postgres:
        pytest.skip("PostgreSQL's timestamp column refuses a time that does not exist")
    recs = _fill(ledger)
    last = recs[-1]
    stamp = last.time.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'"time":"{stamp}"' in last.canonical
    forged = last.canonical.replace(f'"time":"{stamp}"', f'"time":"{date}T{clock}Z"')
    forged_hash = chain_hash(last.prev_hash, forged)
    _sql(
        engine,
        "UPDATE decisions SET decision = :d, time = :t, hash = :h WHERE seq = 5",
        "UPDATE ledger_head SET hash = :h",
        d=forged,
        t=f"{date} {clock}.000000",
        h=forged_hash,
    )
    assert _broken(ledger, 5) == (
        f"row seq 5 (decision {last.id}): the time column holds "
        f"'{date} {clock}.000000', which is not a time (the row was edited)"
    )
    with pytest.raises(LedgerError, match="holds a decision time that is not a time"):
        ledger.after(0)


def test_reordering_rows_is_detected(ledger: Ledger, engine: Engine) -> None:
    recs = _fill(ledger)
    _sql(
        engine,
        "DELETE FROM decision_images WHERE seq IN (2, 3)",
        "UPDATE decisions SET seq = 1000 WHERE seq = 2",
        "UPDATE decisions SET seq = 2 WHERE seq = 3",
        "UPDATE decisions SET seq = 3 WHERE seq = 1000",
        "INSERT INTO decision_images (seq, ref, digest) VALUES (2, :r, :d), (3, :r, :d)",
        r="registry.example/shop/web:1.0",
        d=DIGEST,
    )
    assert _broken(ledger, 2) == (
        f"row seq 2 (decision {recs[2].id}): prev_hash {recs[1].hash[:12]}… does not match the "
        f"hash of seq 1 ({recs[0].hash[:12]}…): rows were reordered, removed or rehashed"
    )


def _rechain(engine: Engine, recs: list[LedgerRecord], seq: int) -> None:
    """What a careful attacker does: edit one decision and recompute every later hash."""
    prev = recs[seq - 2].hash
    for rec in recs[seq - 1 :]:
        data = dict(rec.decision)
        if rec.seq == seq:
            data["outcome"], data["violations"] = "allowed", []
        canonical = canonical_json(data)
        digest = chain_hash(prev, canonical)
        _sql(
            engine,
            "UPDATE decisions SET decision = :d, outcome = :o, prev_hash = :p, hash = :h "
            "WHERE seq = :s",
            d=canonical,
            o=data["outcome"],
            p=prev,
            h=digest,
            s=rec.seq,
        )
        prev = digest
    _sql(engine, "UPDATE ledger_head SET hash = :h", h=prev)


def test_a_rechained_edit_passes_the_chain_but_not_the_signed_checkpoint(
    ledger: Ledger, engine: Engine, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    trail = CheckpointTrail(tmp_path / "checkpoints")
    signer = Checkpointer(key, trail, origin="test/ledger", every=4, interval=3600)
    recs = _fill(ledger)
    signer.checkpoint(recs[3].seq, recs[3].hash)  # what the writer signed at size 4
    _rechain(engine, recs, 2)
    assert ledger.verify_chain().ok  # self-consistent: the chain alone cannot tell
    report = ledger.verify_chain(trail.read(key.public_key()))
    new4 = ledger.after(3, 1)[0]
    assert (report.first_broken_seq, report.checkpoint_size) == (4, 4)
    assert report.reason == (
        f"checkpoint {trail.directory}/checkpoint.0000000000000004 signs size 4 with head hash "
        f"{recs[3].hash[:12]}… but row seq 4 (decision {recs[3].id}) hashes to "
        f"{new4.hash[:12]}…: history up to seq 4 was rewritten and re-chained after it was "
        "checkpointed"
    )


def test_truncating_the_tail_and_rewinding_the_head_is_detected(
    ledger: Ledger, engine: Engine, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    trail = CheckpointTrail(tmp_path / "checkpoints")
    signer = Checkpointer(key, trail, origin="test/ledger", every=2, interval=3600)
    ledger.checkpointer = signer  # the writer signs every 2 decisions
    recs = _fill(ledger)
    assert sorted(p.name for p in trail.directory.iterdir()) == [
        "checkpoint.0000000000000002",
        "checkpoint.0000000000000004",
    ]
    _sql(
        engine,
        "DELETE FROM decision_images WHERE seq >= 3",
        "DELETE FROM decisions WHERE seq >= 3",
        "UPDATE ledger_head SET seq = 2, hash = :h",
        h=recs[1].hash,
    )
    assert ledger.verify_chain().ok  # a shorter, self-consistent ledger
    report = ledger.verify_chain(trail.read(key.public_key()))
    assert report.first_broken_seq == 3
    assert report.reason == (
        f"checkpoint {trail.directory}/checkpoint.0000000000000004 signs size 4 but the ledger "
        "ends at seq 2: decisions 3..4 were removed and the head rewound (truncation)"
    )


def test_dropping_the_head_table_is_reported_and_never_repaired(
    ledger: Ledger, engine: Engine, ledger_url: str
) -> None:
    _fill(ledger, 2)
    _sql(engine, "DROP TABLE ledger_head")
    for led in (Ledger(ledger_url, read_only=True), Ledger(ledger_url)):
        with pytest.raises(LedgerError) as e:
            led.verify_chain()
        assert e.value.message == (
            f"ledger database {led.url} has a damaged schema: table ledger_head is missing"
        )
        led.close()
    with pytest.raises(LedgerError):
        Ledger(ledger_url).append(make_decision())  # a writer does not fork a new chain
    with engine.connect() as conn:
        assert "ledger_head" not in inspect(conn).get_table_names()


def test_deleting_the_head_row_is_reported(ledger: Ledger, engine: Engine, ledger_url: str) -> None:
    _fill(ledger, 2)
    _sql(engine, "DELETE FROM ledger_head")
    reader = Ledger(ledger_url, read_only=True)
    with pytest.raises(LedgerError) as e:
        reader.verify_chain()
    assert e.value.message == (
        f"ledger database {reader.url} has a damaged schema: the ledger_head table has no head row"
    )


def test_a_forged_or_altered_checkpoint_is_refused(
    ledger: Ledger, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    recs = _fill(ledger, 3)
    trail = CheckpointTrail(tmp_path / "cp")
    other = Checkpointer(ed25519.Ed25519PrivateKey.generate(), trail, origin="test/ledger")
    path = other.checkpoint(3, recs[2].hash)
    assert path is not None
    with pytest.raises(LedgerError) as e:
        trail.read(key.public_key())
    assert e.value.message == (
        f"checkpoint {path} (size 3) carries no signature by the ledger public key"
    )
    Checkpointer(key, trail, origin="test/ledger").checkpoint(3, recs[2].hash)
    path.write_text(path.read_text().replace("\n3\n", "\n30\n", 1))
    with pytest.raises(LedgerError) as e:
        trail.read(key.public_key())
    assert e.value.message == (
        f"checkpoint {path} (size 30): its signature does not verify with the ledger public key "
        "(the checkpoint was forged or altered)"
    )


def test_a_missing_postgres_database_is_named_not_created(postgres_url: str) -> None:
    url = postgres_url.rsplit("/", 1)[0] + "/no_such_ledger"
    reader = Ledger(url, read_only=True)
    with pytest.raises(LedgerError) as e:
        reader.verify_chain()
    assert e.value.message.startswith(f"ledger database {reader.url} is unreachable: ")
    assert 'database "no_such_ledger" does not exist' in e.value.message
    assert e.value.hint == "check that the database is running and the --ledger URL is right"


def test_the_checkpointer_also_signs_the_head_on_its_timer(
    ledger: Ledger, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    recs = _fill(ledger, 3)
    trail = CheckpointTrail(tmp_path / "cp")
    signer = Checkpointer(key, trail, origin="test/ledger", every=1000, interval=0.05)
    signer.start(ledger.head)
    try:
        deadline = time.monotonic() + 30
        while not (trail.directory / "checkpoint.0000000000000003").exists():
            assert time.monotonic() < deadline, "no checkpoint was signed"
            time.sleep(0.05)
    finally:
        signer.stop()
    (checkpoint,) = trail.read(key.public_key())
    assert (checkpoint.origin, checkpoint.size, checkpoint.head_hash) == (
        "test/ledger",
        3,
        recs[2].hash,
    )
    assert ledger.verify_chain([checkpoint]).checkpoint_size == 3

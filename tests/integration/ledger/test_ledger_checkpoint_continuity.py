"""The webhook's signer signs only a head that continues what it signed last, on SQLite and real
PostgreSQL: a database rewritten, cut short or restored to an earlier point before a restart (or
re-chained under a running webhook) does not get its new history signed, which would overwrite
the checkpoint that caught it or push it out of the ConfigMap's newest. And publishing to a
mirror that cannot be reached never fails a decision or stops the timer."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledger_decisions import make_decision
from sqlalchemy import Engine, text

from affidavit.admission.checkpoint_trail import ConfigMapTrail
from affidavit.envtest import free_port
from affidavit.ledger import Ledger, LedgerRecord
from affidavit.ledger.checkpoint import Checkpointer, CheckpointTrail, checkpoint_key


def signer(key: ed25519.Ed25519PrivateKey, trail: Path, *mirrors: Path) -> Checkpointer:
    """A Checkpointer as the webhook starts one: the trail and its mirrors read afresh."""
    return Checkpointer(key, CheckpointTrail(trail), origin="test", every=2,
                        mirrors=[CheckpointTrail(m) for m in mirrors])  # fmt: skip


def fill(ledger: Ledger, n: int) -> list[LedgerRecord]:
    return [ledger.append(make_decision(outcome="denied")) for _ in range(n)]


def cut_to(engine: Engine, records: list[LedgerRecord], seq: int) -> None:
    """Remove the decisions after ``seq`` and move the head back, as one who writes the
    database (or a restore to an earlier point) would."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_images WHERE seq > :s"), {"s": seq})
        conn.execute(text("DELETE FROM decisions WHERE seq > :s"), {"s": seq})
        head = records[seq - 1].hash
        conn.execute(text("UPDATE ledger_head SET seq = :s, hash = :h"), {"s": seq, "h": head})


def test_a_restarted_signer_does_not_sign_a_history_that_replaced_the_signed_one(
    ledger_url: str, engine: Engine, key: ed25519.Ed25519PrivateKey, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    trail = tmp_path / "trail"
    first = Ledger(ledger_url, checkpointer=signer(key, trail))
    records = fill(first, 4)  # signed at 2 and 4
    first.close()
    signed = (trail / checkpoint_key(4)).read_text()
    cut_to(engine, records, 2)  # a denied decision 3 and 4 gone

    again = signer(key, trail)  # the webhook restarted: it reads what it signed last
    assert again.signed is not None and again.signed.size == 4
    ledger = Ledger(ledger_url, checkpointer=again)
    with caplog.at_level(logging.ERROR, logger="affidavit.ledger"):
        fill(ledger, 1)  # head 3: below the signed 4
        assert again.problem is not None and "below the signed checkpoint at 4" in again.problem
        fill(ledger, 1)  # head 4 again, another hash: not signed over the old checkpoint
    assert again.problem is not None
    assert "decision 4 of the ledger no longer has the hash" in again.problem
    assert (trail / checkpoint_key(4)).read_text() == signed
    fill(ledger, 2)  # nor anything after it
    assert sorted(p.name for p in trail.iterdir()) == [checkpoint_key(2), checkpoint_key(4)]
    assert "ledger checkpoints stopped" in caplog.text
    report = ledger.verify_chain(CheckpointTrail(trail).read(key.public_key()))
    assert not report.ok and report.first_broken_seq == 4
    ledger.close()


def test_a_history_rechained_under_a_running_signer_is_not_signed(
    ledger_url: str, engine: Engine, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    trail, mirror = tmp_path / "trail", tmp_path / "configmap"
    running = signer(key, trail, mirror)
    ledger = Ledger(ledger_url, checkpointer=running)
    fill(ledger, 4)
    running.wait_for_mirrors()
    with engine.begin() as conn:  # decision 4's hash rewritten (as a re-chain leaves it)
        conn.execute(text("UPDATE decisions SET hash = :h WHERE seq = 4"), {"h": "0" * 64})
        conn.execute(text("UPDATE ledger_head SET hash = :h"), {"h": "0" * 64})
    fill(ledger, 2)
    running.wait_for_mirrors()
    assert running.problem is not None and "decision 4" in running.problem
    assert sorted(p.name for p in mirror.iterdir()) == [checkpoint_key(2), checkpoint_key(4)]
    ledger.close()


def test_a_restarted_signer_continues_from_its_mirror_when_its_directory_is_gone(
    ledger_url: str, engine: Engine, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    """With PostgreSQL the directory trail is on an emptyDir, lost with the Pod: the ConfigMap
    (here a second trail) still says what was signed."""
    trail, mirror = tmp_path / "trail", tmp_path / "configmap"
    first_signer = signer(key, trail, mirror)
    first = Ledger(ledger_url, checkpointer=first_signer)
    records = fill(first, 4)
    first_signer.wait_for_mirrors()
    first.close()
    cut_to(engine, records, 2)
    for p in trail.iterdir():
        p.unlink()
    again = signer(key, trail, mirror)
    assert again.signed is not None and again.signed.size == 4
    ledger = Ledger(ledger_url, checkpointer=again)
    fill(ledger, 4)
    assert list(trail.iterdir()) == []
    assert again.problem is not None
    ledger.close()


def test_an_untouched_ledger_goes_on_being_signed_after_a_restart(
    ledger_url: str, key: ed25519.Ed25519PrivateKey, tmp_path: Path
) -> None:
    trail = tmp_path / "trail"
    first = Ledger(ledger_url, checkpointer=signer(key, trail))
    fill(first, 3)  # signed at 2; 3 is the unsigned tail
    first.close()
    again = signer(key, trail)
    ledger = Ledger(ledger_url, checkpointer=again)
    fill(ledger, 3)
    assert again.problem is None
    assert sorted(p.name for p in trail.iterdir()) == [
        checkpoint_key(2), checkpoint_key(4), checkpoint_key(6)
    ]  # fmt: skip
    assert ledger.verify_chain(CheckpointTrail(trail).read(key.public_key())).ok
    ledger.close()


def test_a_mirror_that_cannot_be_reached_fails_no_decision_and_stops_no_timer(
    ledger_url: str, key: ed25519.Ed25519PrivateKey, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """The ConfigMap mirror's API server is gone (urllib3 raises, not the Kubernetes client):
    each decision is stored, the directory trail is signed, the timer goes on."""
    from kubernetes import client

    config = client.Configuration()
    config.host = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    config.verify_ssl = False
    config.retries = 0
    unreachable = ConfigMapTrail(client.ApiClient(config), "affidavit", "checkpoints", timeout=1)
    trail = tmp_path / "trail"
    checkpoints = Checkpointer(key, CheckpointTrail(trail), origin="test", every=1,
                               interval=0.05, mirrors=[unreachable])  # fmt: skip
    ledger = Ledger(ledger_url, checkpointer=checkpoints)
    with caplog.at_level(logging.WARNING, logger="affidavit.ledger"):
        assert [r.seq for r in fill(ledger, 2)] == [1, 2]
        checkpoints.wait_for_mirrors()
    assert "cannot publish checkpoint 1 to the ConfigMap" in caplog.text
    assert sorted(p.name for p in trail.iterdir()) == [checkpoint_key(1), checkpoint_key(2)]

    ticks: list[int] = []

    def head() -> tuple[int, str]:
        ticks.append(1)
        if len(ticks) == 1:
            raise RuntimeError("the database went away")
        return ledger.head()

    timer = checkpoints.start(head)
    seen = threading.Event()
    for _ in range(200):  # bounded, not timed: the timer ticks past its failure
        if len(ticks) >= 3:
            seen.set()
            break
        threading.Event().wait(0.05)
    alive = timer.is_alive()
    checkpoints.stop()
    assert seen.is_set() and alive  # ticked twice after the failure, and still running
    ledger.close()

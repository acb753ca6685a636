"""Ledger faults on a real `affidavit webhook serve`: another process holding the SQLite write lock
does not stall admission (the decision is buffered within the ledger's short wait, the answer
says so, and the background flusher records it once the lock is released); and a webhook
SIGKILLed while PostgreSQL is down loses none of the decisions it answered: they are in its
buffer file, replayed into the chain when it starts again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from admission_support import Images, Tls, WebhookProcess, review, start_ledgered_webhook

from affidavit.envtest import wait_for
from affidavit.ledger import BUFFERED_NOTE, Ledger
from ledger_databases import PostgresServer


def test_a_held_write_lock_buffers_the_decision_and_says_so(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path
) -> None:
    db = tmp_path / "ledger.db"
    hook = start_ledgered_webhook(
        tmp_path,
        tls,
        ledger=f"sqlite:///{db}",
        policies=workdir / "policies",
        registry_host=images.host,
    )
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(20)  # past the webhook's 1 s wait, inside its old 30 s one
        conn.execute("ROLLBACK")
        conn.close()

    try:
        first = hook.validate(review(images.good, uid="u-before")).json()["response"]
        assert "warnings" not in first  # stored: the ledger exists and answers
        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            response = hook.validate(review(images.good, uid="u-locked")).json()["response"]
        finally:
            release.set()
            holder.join()
        assert response["allowed"] is True
        decision_id = response["auditAnnotations"]["decision"]
        assert response["warnings"] == [f"{BUFFERED_NOTE} (decision {decision_id})"]
        ledger = Ledger(f"sqlite:///{db}")
        wait_for(lambda: ledger.get(decision_id) is not None, "the flusher to record it")
        assert ledger.count() == 2
        assert ledger.verify_chain().ok
    finally:
        hook.stop()


def test_a_webhook_killed_during_a_database_outage_loses_no_answered_decision(
    tmp_path: Path, tls: Tls, images: Images, workdir: Path, postgres_server: PostgresServer
) -> None:
    postgres = postgres_server
    buffer = tmp_path / "buffer.jsonl"

    def start() -> WebhookProcess:
        return start_ledgered_webhook(
            tmp_path,
            tls,
            ledger=postgres.url,
            policies=workdir / "policies",
            registry_host=images.host,
            extra=["--ledger-buffer-file", str(buffer)],
        )

    hook = start()
    answered: list[str] = []
    try:
        stored = hook.validate(review(images.good, uid="u-up")).json()["response"]
        assert "warnings" not in stored
        answered.append(stored["auditAnnotations"]["decision"])
        postgres.stop()
        for i in range(5):
            image = images.good if i % 2 else images.bare
            response = hook.validate(review(image, uid=f"u-down-{i}")).json()["response"]
            decision_id = response["auditAnnotations"]["decision"]
            assert response["allowed"] is (i % 2 == 1)
            assert response["warnings"][-1] == f"{BUFFERED_NOTE} (decision {decision_id})"
            answered.append(decision_id)
    finally:
        hook.proc.kill()  # SIGKILL: no shutdown, no flush
        hook.proc.wait()
        hook.client.close()
    assert len(buffer.read_bytes().splitlines()) == 5
    postgres.start()
    hook = start()
    try:
        ledger = Ledger(postgres.url)
        wait_for(lambda: ledger.count() == len(answered), "the replayed backlog")
        assert [r.id for r in ledger.after(0)] == answered
        assert ledger.verify_chain().ok
        wait_for(lambda: buffer.read_bytes() == b"", "the buffer file to be truncated")
        ledger.close()
    finally:
        hook.stop()
